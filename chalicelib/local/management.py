"""The API Gateway Management API (``@connections``) for the local WebSocket gateway.

It speaks the same REST-JSON protocol as
``https://{api-id}.execute-api.{region}.amazonaws.com/{stage}``, so an unchanged
``boto3.client("apigatewaymanagementapi", endpoint_url=...)`` works against it,
including ``client.exceptions.GoneException`` for connections that are gone.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from chalicelib.local.websocket import WebSocketGateway

logger = logging.getLogger(__name__)

# The Data blob's documented maximum (botocore's model says the same).
MAX_POST_BYTES = 128 * 1024


class ManagementApiServer:
    """A loopback HTTP server answering ``POST``/``GET``/``DELETE /[stage/]@connections/{id}``.

    The socket is bound in ``__init__`` so the URL (and its port) is known before
    the app's settings are loaded; ``start`` begins serving.
    """

    def __init__(self, gateway: WebSocketGateway, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._gateway = gateway
        self._server = _Server((host, port), _Handler)
        self._server.gateway = gateway
        self._host = host
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The endpoint URL for boto3, including the stage like API Gateway's callback URL."""
        return f"http://{self._host}:{self.port}/{self._gateway.stage}"

    def start(self) -> None:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(target=self._server.serve_forever, name="ws-management", daemon=True)
        self._thread.start()
        logger.info("WebSocket management API listening on %s", self.url)

    def stop(self) -> None:
        """Stop serving, join the thread and close the socket."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    gateway: WebSocketGateway


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        connection_id = self._connection_id()
        if connection_id is None:
            return
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        if len(data) > MAX_POST_BYTES:
            self._error(413, "PayloadTooLargeException", "Message too long")
            return
        if not self.server.gateway.post_to_connection(connection_id, data):
            self._gone()
            return
        self._send(200, None)

    def do_GET(self) -> None:
        connection_id = self._connection_id()
        if connection_id is None:
            return
        described = self.server.gateway.get_connection(connection_id)
        if described is None:
            self._gone()
            return
        self._send(200, described)

    def do_DELETE(self) -> None:
        connection_id = self._connection_id()
        if connection_id is None:
            return
        if not self.server.gateway.delete_connection(connection_id):
            self._gone()
            return
        self._send(204, None)

    def _connection_id(self) -> str | None:
        """The id from ``/[stage/]@connections/{id}``; answers 403 itself for any other path."""
        parts = [part for part in urlsplit(self.path).path.split("/") if part]
        if len(parts) == 3 and parts[0] == self.server.gateway.stage:
            parts = parts[1:]
        if len(parts) != 2 or parts[0] != "@connections":
            # What API Gateway answers for a path it has no route for.
            self._drain_body()
            self._error(403, "ForbiddenException", "Forbidden")
            return None
        return unquote(parts[1])

    def _drain_body(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)

    def _gone(self) -> None:
        self._error(410, "GoneException", "The connection with the provided id no longer exists.")

    def _error(self, status: int, error_type: str, message: str) -> None:
        self._send(status, {"message": message}, error_type=error_type)

    def _send(self, status: int, body: dict[str, Any] | None, *, error_type: str | None = None) -> None:
        payload = b"" if body is None else json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        if error_type is not None:
            self.send_header("x-amzn-ErrorType", error_type)
        # No keep-alive: an idle pooled client connection would otherwise pin a
        # handler thread past stop(). Reconnecting on loopback costs nothing.
        self.send_header("Connection", "close")
        self.close_connection = True
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        # Request lines carry connection ids only, never bodies; keep them at debug.
        logger.debug("%s - %s", self.address_string(), format % args)
