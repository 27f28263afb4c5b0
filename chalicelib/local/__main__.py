"""``python -m chalicelib.local``: Switchboard's app on the local stack until Ctrl-C (what ``make local`` runs).

Run it from the project root: the app is imported as ``app:app`` from the
current directory, like ``chalice local`` does.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import threading
from types import FrameType

from chalice import Chalice

from chalicelib.local.pump import DEFAULT_RETRY_DELAY_SECONDS
from chalicelib.local.stack import (
    DEFAULT_API_PORT,
    DEFAULT_MANAGEMENT_PORT,
    DEFAULT_MOTO_PORT,
    DEFAULT_WS_PORT,
    LocalStack,
)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m chalicelib.local", description=__doc__)
    parser.add_argument("--app", default="app:app", help="module:attribute of the Chalice app (default app:app)")
    parser.add_argument("--api-port", type=int, default=DEFAULT_API_PORT)
    parser.add_argument("--ws-port", type=int, default=DEFAULT_WS_PORT)
    parser.add_argument("--management-port", type=int, default=DEFAULT_MANAGEMENT_PORT)
    parser.add_argument("--moto-port", type=int, default=DEFAULT_MOTO_PORT)
    parser.add_argument(
        "--retry-delay",
        type=int,
        default=DEFAULT_RETRY_DELAY_SECONDS,
        help="seconds before a failed SQS record is redelivered (AWS: the queue's visibility timeout)",
    )
    parser.add_argument(
        "--schedule-interval",
        type=float,
        default=None,
        help="fire scheduled handlers every N seconds instead of at their rate",
    )
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def _load_app(spec: str) -> Chalice:
    module_name, _, attribute = spec.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    app = getattr(importlib.import_module(module_name), attribute or "app")
    if not isinstance(app, Chalice):
        raise SystemExit(f"{spec} is not a Chalice app")
    return app


def main(argv: list[str] | None = None) -> int:
    """Start the stack, print its URLs, serve until Ctrl-C or SIGTERM."""
    args = _parse(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Library chatter (credential lookups, socket lifecycle) would drown the app's own logs.
    for noisy in ("botocore", "boto3", "urllib3", "websockets"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    app = _load_app(args.app)
    stopping = threading.Event()

    def _on_sigterm(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, _on_sigterm)
    with LocalStack(
        app,
        api_port=args.api_port,
        ws_port=args.ws_port,
        management_port=args.management_port,
        moto_port=args.moto_port,
        retry_delay_seconds=args.retry_delay,
        schedule_interval_seconds=args.schedule_interval,
    ) as stack:
        print(f"Switchboard local stack ({app.app_name})", flush=True)
        print(f"  REST API         {stack.api_url}", flush=True)
        print(f"  WebSocket        {stack.ws_url}", flush=True)
        print(f"  Console          {stack.api_url}/console", flush=True)
        print(f"  Management API   {stack.management_url}", flush=True)
        print(f"  moto (AWS)       {stack.moto_url}", flush=True)
        print('  Sign in          POST /dev/tokens {"agent_id": "ada", "roles": ["admin"]} -> a token;', flush=True)
        print("                   send it as Authorization: Bearer <token>, or ?token= on the WebSocket", flush=True)
        print("Ctrl-C to stop.", flush=True)
        try:
            # A timed wait keeps the main thread responsive to Ctrl-C.
            while not stopping.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        print("stopping...", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
