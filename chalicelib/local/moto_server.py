"""moto's server mode on loopback: DynamoDB, SQS and the rest of AWS for the local stack.

DynamoDB's requests are atomic, moto's are not: a moto transaction deep-copies
the table and restores the copy when a condition fails, erasing whatever other
requests wrote meanwhile (under 20 concurrent posters messages were lost or
doubled and customer profiles vanished). So every request to this server holds
one lock from start to finish, as if AWS were a single serial machine.

One request may not hold the lock for long: an SQS long poll
(``WaitTimeSeconds`` > 0) would stall every other caller for up to 20 s. The
server plays long polls itself instead: it asks moto with ``WaitTimeSeconds=0``
under the lock and, while nothing came back, waits outside the lock for the next
write (or a short tick, for delayed and invisible messages coming due) and asks again.

Serial requests make moto's rollback of a failed transaction cheaper to do
right: instead of a deep copy of every table the transaction names (one copy per
item, so a transaction on a large table took seconds), the server remembers the
items the transaction touches and puts those back. Nothing else can have
changed meanwhile.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode

from moto.dynamodb import models as dynamodb_models
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
}
# How often a long poll looks again when no write woke it: delayed messages and expired
# visibility timeouts become receivable without any request.
LONG_POLL_TICK_SECONDS = 0.5
_SQS_JSON_PREFIX = "AmazonSQS."
# Query-protocol SQS actions that name their queue in the path rather than a QueueUrl parameter.
_SQS_QUERY_ACTIONS = frozenset({"ReceiveMessage", "SendMessage", "SendMessageBatch", "DeleteMessage"})
_PROTOCOL = "\0protocol"

logger = logging.getLogger(__name__)
StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class SerialisedApp:
    """A WSGI app that runs one request at a time, whole (the response body is read under the lock too)."""

    def __init__(self, app: WsgiApp, *, long_poll_tick_seconds: float = LONG_POLL_TICK_SECONDS) -> None:
        self._app = app
        self._tick = long_poll_tick_seconds
        self._lock = threading.Lock()
        # Per queue name, how many requests may have changed what it can deliver (sends, deletes,
        # visibility changes); long polls wake when their queue's count moves, not on every request.
        self._queue_changes: dict[str, int] = {}
        self._changed = threading.Condition(self._lock)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        body = _read_body(environ)
        action, queue_name, fields = _sqs_request(environ, body)
        long_poll = _long_poll(environ, fields) if action == "ReceiveMessage" else None
        if long_poll is None:
            with self._lock:
                status, headers, chunks = self._call(environ, body)
                if queue_name is not None and action != "ReceiveMessage":
                    self._queue_changes[queue_name] = self._queue_changes.get(queue_name, 0) + 1
                    self._changed.notify_all()
            start_response(status, headers)
            return chunks
        wait_seconds, immediate_body = long_poll
        deadline = time.monotonic() + wait_seconds
        while True:
            with self._lock:
                seen = self._queue_changes.get(str(queue_name), 0)
                status, headers, chunks = self._call(environ, immediate_body)
                if deadline <= time.monotonic() or not status.startswith("200") or _received_something(chunks):
                    break
                # Wait outside the lock for a change to the queue, or a tick (delays and visibility expire alone).
                tick_end = min(deadline, time.monotonic() + self._tick)
                while self._queue_changes.get(str(queue_name), 0) == seen and (left := tick_end - time.monotonic()) > 0:
                    self._changed.wait(timeout=left)
        start_response(status, headers)
        return chunks

    def _call(self, environ: dict[str, Any], body: bytes) -> tuple[str, list[tuple[str, str]], list[bytes]]:
        """Run moto on ``environ`` with ``body``; status, headers and the whole body (under the caller's lock)."""
        started: list[Any] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            started[:] = [status, headers]
            return lambda _chunk: None

        request = dict(environ, **{"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))})
        result = self._app(request, capture)
        try:
            chunks = [b"".join(result)]
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return started[0], started[1], chunks


def _read_body(environ: dict[str, Any]) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return bytes(environ["wsgi.input"].read(length)) if length else b""


def _sqs_request(environ: dict[str, Any], body: bytes) -> tuple[str | None, str | None, dict[str, Any]]:
    """An SQS request's action, queue name and parameters (JSON or query protocol); Nones for anything else."""
    if environ.get("REQUEST_METHOD") != "POST":
        return None, None, {}
    target = str(environ.get("HTTP_X_AMZ_TARGET") or "")
    fields: dict[str, Any]
    if target.startswith(_SQS_JSON_PREFIX):
        try:
            fields = json.loads(body or b"{}")
        except ValueError:
            return None, None, {}
        if not isinstance(fields, dict):
            return None, None, {}
        action = target.removeprefix(_SQS_JSON_PREFIX)
        fields = {**fields, _PROTOCOL: "json"}
    elif "x-www-form-urlencoded" in str(environ.get("CONTENT_TYPE", "")) and not target:
        fields = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        action = fields.get("Action", "")
        if "QueueUrl" not in fields and action not in _SQS_QUERY_ACTIONS:
            return None, None, {}
    else:
        return None, None, {}
    queue_url = str(fields.get("QueueUrl") or environ.get("PATH_INFO") or "")
    return action, queue_url.rstrip("/").rsplit("/", 1)[-1] or None, fields


def _long_poll(environ: dict[str, Any], fields: dict[str, Any]) -> tuple[int, bytes] | None:
    """For a valid ReceiveMessage: its wait and the same request body with no wait.

    The wait is always made explicit, so a queue's own ``ReceiveMessageWaitTimeSeconds`` never makes
    moto wait under the lock (a receive without ``WaitTimeSeconds`` answers at once here).
    """
    wait = _seconds(fields.get("WaitTimeSeconds"))
    if wait is None:
        return None
    if fields.get(_PROTOCOL) == "json":
        document = {k: v for k, v in fields.items() if k != _PROTOCOL}
        return wait, json.dumps({**document, "WaitTimeSeconds": 0}).encode()
    return wait, urlencode({**fields, "WaitTimeSeconds": "0"}).encode()


def _seconds(value: Any) -> int | None:
    """A valid wait (0..20 s, absent is 0); None for anything else, which moto itself refuses without waiting."""
    try:
        seconds = int(value or 0)
    except (TypeError, ValueError):
        return None
    return seconds if 0 <= seconds <= 20 else None


def _received_something(chunks: list[bytes]) -> bool:
    body = b"".join(chunks)
    if body.lstrip().startswith(b"{"):
        try:
            return bool(json.loads(body).get("Messages"))
        except ValueError:
            return True
    return b"<Message>" in body


class _TablesUncopied:
    """Stands in for the ``copy`` module inside moto's DynamoDB backend: Tables are not copied (see below)."""

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        if isinstance(value, dynamodb_models.Table):
            return value
        return copy.deepcopy(value, memo)


_original_transact_write_items = dynamodb_models.DynamoDBBackend.transact_write_items


def _transact_write_items_rolling_back_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    """moto's ``transact_write_items``, rolled back item by item (valid only while requests are serial)."""
    touched: list[tuple[Any, Any, Any, Any]] = []
    for entry in transact_items[:100]:
        try:
            (op,) = entry.values()
            table = self.get_table(op["TableName"])
            key = op.get("Key") or {
                name: op["Item"][name] for name in (table.hash_key_attr, table.range_key_attr) if name
            }
            hash_key, range_key = self.get_keys_value(table, key)
            touched.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
        except Exception:
            continue  # a malformed entry: moto answers it with its own error, touching nothing
    dynamodb_models.copy = _TablesUncopied  # type: ignore[assignment]
    try:
        _original_transact_write_items(self, transact_items)
    except BaseException:
        for table, hash_key, range_key, before in reversed(touched):
            if before is None:
                table.delete_item(hash_key, range_key)
            elif range_key is not None:
                table.items[hash_key][range_key] = before
            else:
                table.items[hash_key] = before
        raise
    finally:
        dynamodb_models.copy = copy


class MotoServer:
    """moto's WSGI app bound to 127.0.0.1, serialised (see the module doc), starting from empty state."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``; only valid once started."""
        if self._url is None:
            raise RuntimeError("moto server is not running")
        return self._url

    def start(self) -> None:
        """Start serving and forget any state an earlier server in this process left behind."""
        # werkzeug logs every request at INFO; the app's own logs matter more locally.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        app = SerialisedApp(DomainDispatcherApplication(create_backend_app))
        # Process-wide (moto's backends are); undone in stop() so in-process moto tests see moto as it is.
        dynamodb_models.DynamoDBBackend.transact_write_items = _transact_write_items_rolling_back_items  # type: ignore[method-assign]
        # Threaded, so long polls wait side by side; the lock inside makes the requests themselves serial.
        self._server = make_server(self._host, self._port, app, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)
        self._thread.start()
        self._url = f"http://{self._host}:{self._server.server_port}"
        # moto keeps its backends in module globals, so a second stack in the same
        # process (tests) would otherwise see the first one's tables and queues.
        request = urllib.request.Request(f"{self._url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
        logger.info("moto server listening on %s", self._url)

    def stop(self) -> None:
        """Stop serving, join the thread and free the port."""
        if self._server is None:
            return
        self._server.shutdown()
        if self._thread is not None:
            self._thread.join()
        self._server.server_close()
        dynamodb_models.DynamoDBBackend.transact_write_items = _original_transact_write_items  # type: ignore[method-assign]
        self._server = None
        self._thread = None
        self._url = None
