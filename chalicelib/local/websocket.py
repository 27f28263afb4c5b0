"""A local API Gateway WebSocket API in front of a Chalice app's ``$connect``/``$default``/``$disconnect`` handlers.

The gateway owns the client sockets, exactly as API Gateway does: handlers never
see a socket, only proxy-integration events, and they talk back through the
management API (``management.py``), which calls ``post_to_connection`` and
friends here.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import functools
import http
import json
import logging
import secrets
import threading
import time
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from chalice import Chalice
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.http11 import Request, Response

from chalicelib.local.lambda_context import invoke_handler

logger = logging.getLogger(__name__)

CONNECT = "$connect"
DEFAULT = "$default"
DISCONNECT = "$disconnect"
# API Gateway quota: 128 KB per message; larger ones close the socket with 1009.
MAX_MESSAGE_BYTES = 128 * 1024
# API Gateway waits up to 29 s for an integration; the handshake must outlive that.
INTEGRATION_TIMEOUT_SECONDS = 29
# API Gateway closes a connection without data either way for 10 minutes, and every connection after 2 hours.
IDLE_TIMEOUT_SECONDS = 600.0
MAX_CONNECTION_SECONDS = 7200.0
# How it closes them: a $disconnect API Gateway sent for an idle connection carried disconnectStatusCode
# 1001 and disconnectReason "Going away", and the client gets that close frame.
GATEWAY_CLOSE_REASON = "Going away"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# API Gateway consumes the upgrade itself; the integration never sees these.
_HOP_BY_HOP = frozenset({"connection", "upgrade"})


def new_connection_id() -> str:
    """An id shaped like API Gateway's (16 URL-safe base64 characters ending in ``=``)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(11)).decode("ascii")


def _request_time(epoch_ms: int) -> str:
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return f"{moment:%d}/{_MONTHS[moment.month - 1]}/{moment:%Y:%H:%M:%S} +0000"


def _iso(epoch_ms: int) -> str:
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Connection:
    """One open client connection, as the gateway tracks it."""

    connection_id: str
    connected_at_ms: int
    last_active_at_ms: int
    source_ip: str
    user_agent: str
    websocket: ServerConnection | None = None
    # Set when the gateway itself closed the connection (idle or too old): what $disconnect reports.
    closed_by_gateway: tuple[int, str] | None = None

    def touch(self) -> None:
        """Record activity (GetConnection reports it as LastActiveAt)."""
        self.last_active_at_ms = _now_ms()

    def describe(self) -> dict[str, Any]:
        """The GetConnection response body, in the wire casing botocore parses."""
        return {
            "connectedAt": _iso(self.connected_at_ms),
            "lastActiveAt": _iso(self.last_active_at_ms),
            "identity": {"sourceIp": self.source_ip, "userAgent": self.user_agent},
        }


class WebSocketGateway:
    """Accepts WebSocket clients on loopback and turns their lifecycle into Lambda proxy events.

    Runs its own asyncio loop in a thread; handlers run on a thread pool so a slow
    handler never blocks other connections (or the management API's sends).
    Like API Gateway it closes a connection idle for ``idle_timeout_seconds`` and any
    connection open for ``max_connection_seconds`` (10 minutes and 2 hours by default;
    tests shorten them), with close code 1001, and runs ``$disconnect``.
    """

    def __init__(
        self,
        app: Chalice,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        stage: str = "api",
        region: str = "us-east-1",
        lambda_stage: str = "dev",
        api_id: str = "localwsapi",
        max_workers: int = 16,
        idle_timeout_seconds: float | None = IDLE_TIMEOUT_SECONDS,
        max_connection_seconds: float | None = MAX_CONNECTION_SECONDS,
    ) -> None:
        self._app = app
        # None: never (a test of something else may want a socket to stay open however long it idles).
        self.idle_timeout_seconds = idle_timeout_seconds
        self.max_connection_seconds = max_connection_seconds
        self._host = host
        self._requested_port = port
        self._port: int | None = None
        self.stage = stage
        self._region = region
        self._lambda_stage = lambda_stage
        self.api_id = api_id
        self._max_workers = max_workers
        self._connections: dict[str, Connection] = {}
        self._lock = threading.Lock()
        # Connections whose $connect succeeded but whose handshake hasn't finished.
        self._opening: weakref.WeakKeyDictionary[ServerConnection, tuple[Connection, str | None]] = (
            weakref.WeakKeyDictionary()
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    # -- lifecycle -------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port; only valid once started."""
        if self._port is None:
            raise RuntimeError("WebSocket gateway is not running")
        return self._port

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:PORT``, what clients connect to."""
        return f"ws://{self._host}:{self.port}"

    @property
    def domain_name(self) -> str:
        """What ``requestContext.domainName`` carries (the host clients connected to)."""
        return f"{self._host}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        """Bind and start serving; returns once the port accepts connections."""
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=self._max_workers, thread_name_prefix="ws-lambda"
        )
        self._thread = threading.Thread(target=self._run, name="ws-gateway", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("WebSocket gateway did not start in time")
        if self._startup_error is not None:
            raise RuntimeError("WebSocket gateway failed to start") from self._startup_error

    def stop(self, timeout: float = 15.0) -> None:
        """Close every connection (each gets its ``$disconnect``), stop the loop and join the thread."""
        if self._thread is None:
            return
        if self._loop is not None and self._stop_event is not None and not self._loop.is_closed():
            # The loop may close between the check and the call.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop_event.set)
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning("WebSocket gateway thread did not stop within %.0f s", timeout)
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self._thread = None
        self._port = None

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # surfaced to start(); after startup it is only logged
            if not self._ready.is_set():
                self._startup_error = exc
                self._ready.set()
            else:
                logger.exception("WebSocket gateway loop crashed")

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        async with serve(
            self._handle_connection,
            self._host,
            self._requested_port,
            process_request=self._process_request,
            process_response=self._process_response,
            max_size=MAX_MESSAGE_BYTES,
            # API Gateway answers pings but never sends its own.
            ping_interval=None,
            open_timeout=INTEGRATION_TIMEOUT_SECONDS + 1,
            close_timeout=2,
        ) as server:
            self._port = next(iter(server.sockets)).getsockname()[1]
            self._ready.set()
            logger.info("WebSocket gateway listening on %s", self.url)
            await self._stop_event.wait()
        # Leaving the block closed every socket (1001) and waited for the
        # connection tasks, so their $disconnect handlers have run.

    # -- what the management API calls (from other threads) --------------

    def connection_ids(self) -> list[str]:
        """Ids of the connections open right now."""
        with self._lock:
            return list(self._connections)

    def get_connection(self, connection_id: str) -> dict[str, Any] | None:
        """GetConnection's body for an open connection, else ``None`` (410 Gone)."""
        with self._lock:
            connection = self._connections.get(connection_id)
            return None if connection is None else connection.describe()

    def post_to_connection(self, connection_id: str, data: bytes, timeout: float = 10.0) -> bool:
        """Send ``data`` to a client (text frame when it is UTF-8); ``False`` if it is gone."""
        connection = self._open_connection(connection_id)
        if connection is None or connection.websocket is None:
            return False
        try:
            payload: str | bytes = data.decode("utf-8")
        except UnicodeDecodeError:
            payload = data
        if not self._run_on_loop(connection.websocket.send(payload), timeout):
            return False
        connection.touch()
        return True

    def delete_connection(self, connection_id: str, timeout: float = 5.0) -> bool:
        """Close a client's socket (its ``$disconnect`` follows); ``False`` if it is gone."""
        connection = self._open_connection(connection_id)
        if connection is None or connection.websocket is None:
            return False
        self._run_on_loop(connection.websocket.close(CloseCode.NORMAL_CLOSURE, "Connection deleted"), timeout)
        return True

    def _open_connection(self, connection_id: str) -> Connection | None:
        with self._lock:
            return self._connections.get(connection_id)

    def _run_on_loop(self, coroutine: Any, timeout: float) -> bool:
        loop = self._loop
        if loop is None or loop.is_closed():
            coroutine.close()
            return False
        if threading.current_thread() is self._thread:
            coroutine.close()
            raise RuntimeError("the gateway's own loop thread must not block on itself")
        try:
            future = asyncio.run_coroutine_threadsafe(coroutine, loop)
        except RuntimeError:  # loop stopped meanwhile
            coroutine.close()
            return False
        try:
            future.result(timeout)
        except ConnectionClosed:
            return False
        except concurrent.futures.TimeoutError:
            future.cancel()
            return False
        return True

    # -- handshake ($connect) ---------------------------------------------

    async def _process_request(self, websocket: ServerConnection, request: Request) -> Response | None:
        connection_id = new_connection_id()
        now = _now_ms()
        source_ip = str(websocket.remote_address[0])
        user_agent = request.headers.get("User-Agent", "")
        connection = Connection(connection_id, now, now, source_ip, user_agent)
        handler = self._app.websocket_handlers.get(CONNECT)
        if handler is None:
            # No $connect route: API Gateway accepts every upgrade.
            self._opening[websocket] = (connection, None)
            return None
        event = self._connect_event(connection, request)
        try:
            result = await self._invoke(handler.name, event)
        except Exception:
            logger.exception("$connect handler raised (connection %s)", connection_id)
            return websocket.respond(http.HTTPStatus.INTERNAL_SERVER_ERROR, "Internal server error\n")
        status, body, headers = _integration_response(result)
        if not 200 <= status < 300:
            logger.info("$connect rejected connection %s with %d", connection_id, status)
            try:
                http_status = http.HTTPStatus(status)
            except ValueError:
                http_status = http.HTTPStatus.INTERNAL_SERVER_ERROR
            return websocket.respond(http_status, body or f"{http_status.phrase}\n")
        subprotocol = next((v for k, v in headers.items() if k.lower() == "sec-websocket-protocol"), None)
        self._opening[websocket] = (connection, subprotocol)
        return None

    def _process_response(self, websocket: ServerConnection, request: Request, response: Response) -> Response | None:
        # API Gateway echoes the subprotocol the $connect integration chose.
        opening = self._opening.get(websocket)
        if opening is not None and opening[1] and response.status_code == http.HTTPStatus.SWITCHING_PROTOCOLS:
            response.headers["Sec-WebSocket-Protocol"] = opening[1]
        return None

    def _connect_event(self, connection: Connection, request: Request) -> dict[str, Any]:
        multi: dict[str, list[str]] = {}
        for name, value in request.headers.raw_items():
            if name.lower() not in _HOP_BY_HOP:
                multi.setdefault(name, []).append(value)
        multi["X-Amzn-Trace-Id"] = [f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)}"]
        multi["X-Forwarded-For"] = [connection.source_ip]
        multi["X-Forwarded-Port"] = [str(self.port)]
        multi["X-Forwarded-Proto"] = ["http"]
        event: dict[str, Any] = {
            "headers": {name: values[-1] for name, values in multi.items()},
            "multiValueHeaders": multi,
            "requestContext": self._request_context(connection, CONNECT, "CONNECT"),
            "isBase64Encoded": False,
        }
        query = parse_qs(urlsplit(request.path).query, keep_blank_values=True)
        if query:
            event["queryStringParameters"] = {key: values[-1] for key, values in query.items()}
            event["multiValueQueryStringParameters"] = query
        return event

    # -- open connection ($default, $disconnect) --------------------------

    async def _handle_connection(self, websocket: ServerConnection) -> None:
        opening = self._opening.pop(websocket, None)
        if opening is None:  # cannot happen: _process_request ran for every accepted socket
            await websocket.close(CloseCode.INTERNAL_ERROR)
            return
        connection = opening[0]
        connection.websocket = websocket
        with self._lock:
            self._connections[connection.connection_id] = connection
        limits = asyncio.create_task(self._enforce_limits(connection, websocket))
        try:
            async for message in websocket:
                if isinstance(message, bytes):
                    # API Gateway rejects binary frames and closes with 1003.
                    await websocket.close(CloseCode.UNSUPPORTED_DATA, "Binary frames are not supported")
                    break
                connection.touch()
                await self._deliver_message(connection, message)
        except ConnectionClosed:
            pass
        finally:
            limits.cancel()
            # Gone before $disconnect runs, as in AWS: posting to it now is a 410.
            with self._lock:
                self._connections.pop(connection.connection_id, None)
            # A no-op when the socket is already closed; otherwise (an unexpected
            # error above) close it rather than wait forever for the client.
            await websocket.close(CloseCode.INTERNAL_ERROR)
            await websocket.wait_closed()
            if connection.closed_by_gateway is not None:
                code, reason = connection.closed_by_gateway
                await self._deliver_disconnect(connection, code, reason, by_gateway=True)
            else:
                await self._deliver_disconnect(connection, websocket.close_code, websocket.close_reason)

    async def _enforce_limits(self, connection: Connection, websocket: ServerConnection) -> None:
        """Close the connection once it has been idle too long, or open too long, as API Gateway does."""
        while True:
            deadlines = []
            if self.idle_timeout_seconds is not None:
                deadlines.append(connection.last_active_at_ms + self.idle_timeout_seconds * 1000)
            if self.max_connection_seconds is not None:
                deadlines.append(connection.connected_at_ms + self.max_connection_seconds * 1000)
            if not deadlines:
                return
            left_ms = min(deadlines) - _now_ms()
            if left_ms <= 0:
                connection.closed_by_gateway = (int(CloseCode.GOING_AWAY), GATEWAY_CLOSE_REASON)
                await websocket.close(CloseCode.GOING_AWAY, GATEWAY_CLOSE_REASON)
                return
            # Activity meanwhile moves the idle deadline: look again when this one would have passed.
            await asyncio.sleep(left_ms / 1000)

    async def _deliver_message(self, connection: Connection, body: str) -> None:
        handler = self._app.websocket_handlers.get(DEFAULT)
        context = self._request_context(connection, DEFAULT, "MESSAGE")
        context["messageId"] = new_connection_id()
        if handler is None:
            await self._send_error(connection, "Forbidden", context["requestId"])
            return
        event = {"requestContext": context, "body": body, "isBase64Encoded": False}
        try:
            await self._invoke(handler.name, event)
        except Exception:
            logger.exception("$default handler raised (connection %s)", connection.connection_id)
            # What API Gateway tells the client when the integration fails.
            await self._send_error(connection, "Internal server error", context["requestId"])

    async def _deliver_disconnect(
        self, connection: Connection, code: int | None, reason: str | None, by_gateway: bool = False
    ) -> None:
        handler = self._app.websocket_handlers.get(DISCONNECT)
        if handler is None:
            return
        status = code if code is not None else CloseCode.ABNORMAL_CLOSURE
        context = self._request_context(connection, DISCONNECT, "DISCONNECT")
        context["disconnectStatusCode"] = int(status)
        # The gateway's own reason verbatim; a client's close is described as API Gateway describes it.
        context["disconnectReason"] = reason if by_gateway and reason else _disconnect_reason(int(status), reason)
        host = self.domain_name
        headers = {"Host": host, "x-api-key": "", "X-Forwarded-For": "", "x-restapi": ""}
        event = {
            "headers": headers,
            "multiValueHeaders": {name: [value] for name, value in headers.items()},
            "requestContext": context,
            "isBase64Encoded": False,
        }
        try:
            await self._invoke(handler.name, event)
        except Exception:
            logger.exception("$disconnect handler raised (connection %s)", connection.connection_id)

    async def _send_error(self, connection: Connection, message: str, request_id: str) -> None:
        if connection.websocket is None:
            return
        payload = {"message": message, "connectionId": connection.connection_id, "requestId": request_id}
        with contextlib.suppress(ConnectionClosed):
            await connection.websocket.send(json.dumps(payload))

    # -- helpers ------------------------------------------------------------

    def _request_context(self, connection: Connection, route_key: str, event_type: str) -> dict[str, Any]:
        now = _now_ms()
        request_id = new_connection_id()
        identity = {"sourceIp": connection.source_ip}
        if connection.user_agent:
            identity["userAgent"] = connection.user_agent
        return {
            "routeKey": route_key,
            "eventType": event_type,
            "extendedRequestId": request_id,
            "requestTime": _request_time(now),
            "messageDirection": "IN",
            "stage": self.stage,
            "connectedAt": connection.connected_at_ms,
            "requestTimeEpoch": now,
            "identity": identity,
            "requestId": request_id,
            "domainName": self.domain_name,
            "connectionId": connection.connection_id,
            "apiId": self.api_id,
        }

    async def _invoke(self, handler_name: str, event: dict[str, Any]) -> Any:
        loop = asyncio.get_running_loop()
        call = functools.partial(
            invoke_handler, self._app, handler_name, event, stage=self._lambda_stage, region=self._region
        )
        return await loop.run_in_executor(self._executor, call)


def _integration_response(result: Any) -> tuple[int, str, dict[str, str]]:
    """Status, body and headers of a handler's return value (Chalice always returns a dict here)."""
    if not isinstance(result, dict):
        return 200, "", {}
    try:
        status = int(result.get("statusCode", 200))
    except (TypeError, ValueError):
        status = 500
    body = result.get("body")
    headers = result.get("headers") or {}
    return status, body if isinstance(body, str) else "", {str(k): str(v) for k, v in headers.items()}


def _disconnect_reason(code: int, reason: str | None) -> str:
    if code == CloseCode.NO_STATUS_RCVD:
        return "Client-side close frame status not set"
    if code == CloseCode.ABNORMAL_CLOSURE:
        return "Connection lost without a close frame"
    return f"Client-side close frame status code {code}" + (f": {reason}" if reason else "")
