"""The app's REST routes over HTTP, served by Chalice's own local API Gateway emulation."""

from __future__ import annotations

import logging
import re
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from chalice import Chalice
from chalice.app import Request
from chalice.config import Config
from chalice.local import ChaliceRequestHandler, LambdaEventConverter, LocalDevServer, LocalGateway

from chalicelib.local.lambda_context import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_SECONDS

logger = logging.getLogger(__name__)
# A query string in a request line, up to the protocol or the quote that ends it (it may hold spaces when
# the request line is malformed). Query strings carry secrets: Meta's hub.verify_token, ?token= sign-ins,
# the widget's visitor_id.
_QUERY_STRING = re.compile(r"\?[^\"']*?(?=\s+HTTP/|[\"']|$)")


class _ThreadLocalRequest(Chalice):
    """Makes ``app.current_request`` (and ``app.lambda_context``) per thread, as ``chalice local`` does.

    The dev server answers requests on concurrent threads; with Chalice's plain
    attribute one request would read another's ``current_request``. Unlike
    chalice's ``LocalChalice`` it reads ``None`` (not AttributeError) on threads
    that never served a request, such as the pump's.
    """

    _local = threading.local()

    @property
    def current_request(self) -> Request | None:
        return getattr(self._local, "current_request", None)

    @current_request.setter
    def current_request(self, value: Request | None) -> None:
        self._local.current_request = value

    @property
    def lambda_context(self) -> Any:
        return getattr(self._local, "lambda_context", None)

    @lambda_context.setter
    def lambda_context(self, value: Any) -> None:
        self._local.lambda_context = value


class _RawQueryEvents(LambdaEventConverter):
    """Chalice local's events, plus ``rawQueryString``: the query exactly as the client sent it.

    API Gateway's REST API passes the query only parsed; this server has the request line, so it hands the
    raw query on too (as API Gateway's HTTP APIs do), and Twilio's signature is checked against the URL as called.
    """

    def create_lambda_event(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None = None
    ) -> dict[str, Any]:
        event = super().create_lambda_event(method, path, headers, body)
        event["rawQueryString"] = urlsplit(path).query
        return event


class _RawQueryRequestHandler(ChaliceRequestHandler):
    """Chalice local's request handler with ``_RawQueryEvents``."""

    def __init__(self, request: Any, client_address: Any, server: Any, app_object: Chalice, config: Config) -> None:
        # As ChaliceRequestHandler.__init__, whose BaseHTTPRequestHandler.__init__ serves the request at once.
        self.local_gateway = LocalGateway(app_object, config)
        converter = self.local_gateway.event_converter
        self.local_gateway.event_converter = _RawQueryEvents(converter._route_matcher, converter._binary_types)
        BaseHTTPRequestHandler.__init__(self, request, client_address, server)


class _LoggedRequestHandler(_RawQueryRequestHandler):
    """Access lines go to ``logging`` (INFO) instead of stderr, so ``make local`` shows them and the demo does not.

    Like the deployed access log (infra ``SECRET_FREE_ACCESS_LOG``: method and path, never the query string),
    every line has its query strings cut, error lines that quote a malformed request line included.
    """

    def log_message(self, format: str, *args: Any) -> None:
        logger.info("%s %s", self.address_string(), _without_query_strings(format % args))


def _without_query_strings(line: str) -> str:
    return _QUERY_STRING.sub("", line)


class RestApiServer:
    """``chalice.local.LocalDevServer`` in a daemon thread, bound to loopback."""

    def __init__(self, app: Chalice, *, host: str = "127.0.0.1", port: int = 0, stage: str = "dev") -> None:
        self._app = app
        self._host = host
        self._original_class: type[Chalice] | None = None
        if not isinstance(app, _ThreadLocalRequest):
            self._original_class = type(app)
            app.__class__ = type(f"Local{type(app).__name__}", (_ThreadLocalRequest, type(app)), {})
        config = Config.create(
            chalice_stage=stage,
            app_name=app.app_name,
            lambda_timeout=DEFAULT_TIMEOUT_SECONDS,
            lambda_memory_size=DEFAULT_MEMORY_MB,
        )
        # LocalDevServer binds in its constructor, so the port is known from here on.
        self._server = LocalDevServer(app, config, host, port, handler_cls=_LoggedRequestHandler)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._server.server.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (routes hang directly off it, as with ``chalice local``)."""
        return f"http://{self._host}:{self.port}"

    def start(self) -> None:
        """Serve in a daemon thread."""
        # LocalDevServer.serve_forever() prints a banner; the stack logs its URLs itself.
        server: Any = self._server.server
        self._thread = threading.Thread(target=server.serve_forever, name="rest-api", daemon=True)
        self._thread.start()
        logger.info("REST API listening on %s", self.url)

    def stop(self) -> None:
        """Stop serving (``shutdown`` must come from another thread), close the socket, undo the class swap."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server.server_close()
        if self._original_class is not None:
            app: Any = self._app
            app.__class__ = self._original_class
            self._original_class = None
