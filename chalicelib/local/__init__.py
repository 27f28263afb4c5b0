"""Run a Chalice app locally the way AWS runs it: moto, a WebSocket gateway, an SQS/schedule pump, REST.

``chalice local`` only serves REST routes; ``LocalStack`` adds the rest so the
same app code runs unchanged here and in Lambda. ``python -m chalicelib.local``
runs Switchboard's app on the default ports (``make local``).
"""

from chalicelib.local.lambda_context import LambdaContext
from chalicelib.local.pump import EventPump
from chalicelib.local.stack import LocalStack
from chalicelib.local.websocket import WebSocketGateway

__all__ = ["EventPump", "LambdaContext", "LocalStack", "WebSocketGateway"]
