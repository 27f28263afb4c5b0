"""``LocalStack``: a Chalice app with its AWS surroundings, in one process, on loopback.

Start order matters: moto first (everything else talks to it), then the
environment the app reads (so ``chalicelib.settings`` and the boto3 clients see
moto and the local management API), then the resources, then the three ways
events reach the app (WebSocket gateway, SQS/schedule pump, REST server).
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from chalice import Chalice

from chalicelib import settings
from chalicelib.auth import generate_dev_key
from chalicelib.local.management import ManagementApiServer
from chalicelib.local.moto_server import LOCAL_CREDENTIALS, MotoServer
from chalicelib.local.pump import DEFAULT_RETRY_DELAY_SECONDS, EventPump
from chalicelib.local.rest import RestApiServer
from chalicelib.local.websocket import IDLE_TIMEOUT_SECONDS, MAX_CONNECTION_SECONDS, WebSocketGateway
from chalicelib.store import aws, queue, resources

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

HOST = "127.0.0.1"
# `make local` ports: 8000 is `chalice local`'s default; moto avoids 5000,
# which macOS's AirPlay receiver holds.
DEFAULT_API_PORT = 8000
DEFAULT_WS_PORT = 8001
DEFAULT_MANAGEMENT_PORT = 8002
DEFAULT_MOTO_PORT = 8003
# Chalice deploys WebSocket APIs (and REST APIs) to the API Gateway stage "api".
WEBSOCKET_STAGE = "api"
# Where `PUT /admin/routing` publishes locally (in moto's SSM), named as the deployed stack names it
# (<ssm prefix>/routing-config); the first publish creates it, until then routing.yaml is in force.
LOCAL_ROUTING_CONFIG_PARAMETER = "/switchboard/local/routing-config"
# Variables that would send boto3 to a real account instead of moto.
# What the app's handlers import where they use it (app.py and the channel registry keep cold starts lean). Lambda
# runs one invocation per container at a time; this stack runs handlers on many threads at once, and two threads
# importing a package with internal cycles for the first time can hand one of them a partially initialized module
# (an ImportError). So the stack imports them, and every channel adapter, before it serves.
LAZY_IMPORTS = (
    "aws_lambda_powertools.utilities.batch",
    "aws_lambda_powertools.utilities.data_classes",
    "aws_lambda_powertools.utilities.data_classes.sqs_event",
    "chalicelib.console.pages",
    "chalicelib.console.visitors",
    "chalicelib.conversations.customers",
    "chalicelib.conversations.inbox",
    "chalicelib.outbound.outbox",
    "chalicelib.sim.lab",
    "chalicelib.voice.tokens",
)


def import_lazy_modules() -> None:
    from chalicelib.channels import registry

    for name in LAZY_IMPORTS:
        importlib.import_module(name)
    for endpoint in registry.ENDPOINTS:
        endpoint.adapter()


_REAL_AWS_VARIABLES = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


class LocalStack:
    """Runs ``app`` the way AWS runs it: REST, WebSocket, SQS and schedule events, against moto.

    Use as a context manager; every port may be 0 to pick a free one (tests do).
    ``retry_delay_seconds`` and ``schedule_interval_seconds`` shorten AWS's waits
    for demos and tests (see ``EventPump``); ``report_batch_item_failures=False``
    mimics an event source mapping without ``ReportBatchItemFailures``; ``setup``
    runs once the environment points at moto and ``create_all()`` has run.
    ``ws_idle_timeout_seconds`` and ``ws_max_connection_seconds`` are API Gateway's
    10-minute idle timeout and 2-hour connection limit (``None``: never closed).
    """

    def __init__(
        self,
        app: Chalice,
        *,
        api_port: int = DEFAULT_API_PORT,
        ws_port: int = DEFAULT_WS_PORT,
        management_port: int = DEFAULT_MANAGEMENT_PORT,
        moto_port: int = DEFAULT_MOTO_PORT,
        retry_delay_seconds: int | None = DEFAULT_RETRY_DELAY_SECONDS,
        schedule_interval_seconds: float | None = None,
        report_batch_item_failures: bool = True,
        region: str = "us-east-1",
        stage: str = "dev",
        create_resources: bool = True,
        setup: Callable[[], object] | None = None,
        ws_idle_timeout_seconds: float | None = IDLE_TIMEOUT_SECONDS,
        ws_max_connection_seconds: float | None = MAX_CONNECTION_SECONDS,
    ) -> None:
        self.app = app
        self._ports = {"api": api_port, "ws": ws_port, "management": management_port, "moto": moto_port}
        self._retry_delay_seconds = retry_delay_seconds
        self._schedule_interval_seconds = schedule_interval_seconds
        self._report_batch_item_failures = report_batch_item_failures
        self.region = region
        self.stage = stage
        self._create_resources = create_resources
        self._setup = setup
        self._ws_idle_timeout_seconds = ws_idle_timeout_seconds
        self._ws_max_connection_seconds = ws_max_connection_seconds
        self._moto: MotoServer | None = None
        self._gateway: WebSocketGateway | None = None
        self._management: ManagementApiServer | None = None
        self._pump: EventPump | None = None
        self._rest: RestApiServer | None = None
        self._saved_env: dict[str, str | None] | None = None
        self._saved_ws_endpoint: tuple[Any, Any] | None = None
        self.queue_urls: dict[str, str] = {}

    # -- what callers use ----------------------------------------------------

    @property
    def api_url(self) -> str:
        """Base URL of the REST API."""
        return self._require(self._rest).url

    @property
    def ws_url(self) -> str:
        """URL WebSocket clients connect to."""
        return self._require(self._gateway).url

    @property
    def management_url(self) -> str:
        """API Gateway management endpoint (also in ``WEBSOCKET_MANAGEMENT_ENDPOINT``)."""
        return self._require(self._management).url

    @property
    def moto_url(self) -> str:
        """moto's endpoint (also in ``AWS_ENDPOINT_URL``)."""
        return self._require(self._moto).url

    @property
    def pump(self) -> EventPump:
        """The SQS/schedule pump (``drain``, ``wait_idle``, ``fire_schedules``)."""
        return self._require(self._pump)

    @property
    def gateway(self) -> WebSocketGateway:
        """The WebSocket gateway (``connection_ids``)."""
        return self._require(self._gateway)

    def urls(self) -> dict[str, str]:
        """Every URL by component name."""
        return {"api": self.api_url, "ws": self.ws_url, "management": self.management_url, "moto": self.moto_url}

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        """Start every component; on failure, stop whatever already started and re-raise."""
        if self._moto is not None:
            raise RuntimeError("LocalStack is already running")
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        import_lazy_modules()
        self._moto = MotoServer(host=HOST, port=self._ports["moto"])
        self._moto.start()
        self._gateway = WebSocketGateway(
            self.app,
            host=HOST,
            port=self._ports["ws"],
            stage=WEBSOCKET_STAGE,
            region=self.region,
            lambda_stage=self.stage,
            idle_timeout_seconds=self._ws_idle_timeout_seconds,
            max_connection_seconds=self._ws_max_connection_seconds,
        )
        # Bound now so its URL can go into the environment before settings load.
        self._management = ManagementApiServer(self._gateway, host=HOST, port=self._ports["management"])
        self._point_environment_at_local()
        if self._create_resources:
            self.queue_urls = resources.create_all()
        if self._setup is not None:
            self._setup()
        self._point_chalice_websocket_api_at_local()
        self._gateway.start()
        # Known once the gateway is bound: the URL /auth/options gives the console (and its CSP allows).
        os.environ["WEBSOCKET_URL"] = self._gateway.url
        settings.reload_settings()
        self._management.start()
        self._pump = EventPump(
            self.app,
            region=self.region,
            endpoint_url=self._moto.url,
            lambda_stage=self.stage,
            retry_delay_seconds=self._retry_delay_seconds,
            schedule_interval_seconds=self._schedule_interval_seconds,
            report_batch_item_failures=self._report_batch_item_failures,
        )
        self._pump.start()
        self._rest = RestApiServer(self.app, host=HOST, port=self._ports["api"], stage=self.stage)
        self._rest.start()
        logger.info("local stack up: %s", self.urls())

    def stop(self) -> None:
        """Stop in reverse order (handlers still reach moto while draining), then restore the environment."""
        if self._rest is not None:
            self._rest.stop()
            self._rest = None
        if self._pump is not None:
            self._pump.stop()
            self._pump = None
        if self._gateway is not None:
            self._gateway.stop()
            self._gateway = None
        if self._management is not None:
            self._management.stop()
            self._management = None
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        self._restore_chalice_websocket_api()
        self._restore_environment()

    # -- environment ---------------------------------------------------------------

    def _point_environment_at_local(self) -> None:
        assert self._moto is not None and self._management is not None
        values = {
            "AWS_ENDPOINT_URL": self._moto.url,
            **LOCAL_CREDENTIALS,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "WEBSOCKET_MANAGEMENT_ENDPOINT": self._management.url,
            # AWS_ENDPOINT_URL would send management calls to moto; this wins for that one service.
            "AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI": self._management.url,
            # Sign-in: development tokens with Cognito's claims, signed by a key made for this run.
            "SWITCHBOARD_DEV_AUTH": "1",
            "DEV_SIGNING_KEY": os.environ.get("DEV_SIGNING_KEY") or generate_dev_key(),
            "SWITCHBOARD_ROUTING_CONFIG_PARAMETER": (
                os.environ.get("SWITCHBOARD_ROUTING_CONFIG_PARAMETER") or LOCAL_ROUTING_CONFIG_PARAMETER
            ),
        }
        self._saved_env = {name: os.environ.get(name) for name in (*values, *_REAL_AWS_VARIABLES, "WEBSOCKET_URL")}
        for name in _REAL_AWS_VARIABLES:
            os.environ.pop(name, None)
        os.environ.update(values)
        _forget_cached_aws_state()

    def _restore_environment(self) -> None:
        if self._saved_env is None:
            return
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env = None
        _forget_cached_aws_state()

    def _point_chalice_websocket_api_at_local(self) -> None:
        # Chalice's own app.websocket_api helper derives an https://{apiId}.execute-api...
        # endpoint from each event unless one is already set; setting it keeps apps
        # that use the helper (instead of WEBSOCKET_MANAGEMENT_ENDPOINT) local too.
        helper = getattr(self.app, "websocket_api", None)
        if helper is None or not hasattr(helper, "_endpoint"):
            return
        assert self._management is not None
        self._saved_ws_endpoint = (helper._endpoint, getattr(helper, "_client", None))
        helper._endpoint = self._management.url
        helper._client = None

    def _restore_chalice_websocket_api(self) -> None:
        if self._saved_ws_endpoint is None:
            return
        helper = self.app.websocket_api
        helper._endpoint, helper._client = self._saved_ws_endpoint
        self._saved_ws_endpoint = None

    @staticmethod
    def _require(component: _T | None) -> _T:
        if component is None:
            raise RuntimeError("LocalStack is not running")
        return component


def _forget_cached_aws_state() -> None:
    """Make the app re-read settings and rebuild clients and queue URLs from the current environment."""
    settings.reload_settings()
    aws.reset()
    queue.forget_queue_urls()
