"""A Lambda context object, and the one way the local stack calls a Chalice handler.

Every local component (WebSocket gateway, SQS pump, scheduler) invokes the app
through ``invoke_handler`` so handlers receive the same ``(event, context)``
pair the Lambda runtime passes them in AWS.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

from chalice import Chalice

# Moto's default account; ARNs built here then match the ones moto returns.
ACCOUNT_ID = "123456789012"
# Chalice's defaults for lambda_timeout and lambda_memory_size.
DEFAULT_TIMEOUT_SECONDS = 60
DEFAULT_MEMORY_MB = 128


class LambdaContext:
    """The attributes and method of the Python runtime's context object.

    The real runtime fills these from ``AWS_LAMBDA_*`` variables, which is why
    ``memory_limit_in_mb`` is a string there and here.
    """

    def __init__(
        self,
        function_name: str,
        *,
        region: str,
        timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS,
        memory_limit_in_mb: int = DEFAULT_MEMORY_MB,
    ) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{function_name}"
        self.memory_limit_in_mb = str(memory_limit_in_mb)
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        today = datetime.now(UTC).strftime("%Y/%m/%d")
        self.log_stream_name = f"{today}/[$LATEST]{uuid.uuid4().hex}"
        self.identity: Any = None
        self.client_context: Any = None
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before Lambda would time this invocation out (not enforced locally)."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def function_name(app: Chalice, stage: str, handler_name: str) -> str:
    """The Lambda function name Chalice deploys a handler as: ``{app}-{stage}-{handler}``."""
    return f"{app.app_name}-{stage}-{handler_name}"


def invoke_handler(app: Chalice, handler_name: str, event: dict[str, Any], *, stage: str, region: str) -> Any:
    """Call a registered handler exactly as the Lambda runtime calls ``app.<handler_name>``."""
    handler = app.handler_map[handler_name]
    context = LambdaContext(function_name(app, stage, handler_name), region=region)
    return handler(event, context)
