"""Faults at the AWS boundary, call by call: record every AWS call the app makes, or fail one of them.

Hooks go on botocore's ``before-call`` and ``after-call`` events of the app's own clients
(``chalicelib/store/aws.py``), never on our code. A fault *before* a call means the request never
happened (the network was gone, the Lambda died just before); a fault *after* it means the request
took effect and its answer was lost (a read timeout, the Lambda died just after). Either way the
caller sees ``EndpointConnectionError``, as a real outage looks.

A call site is where in our code a call is made: the handler it runs under (an ``app.py`` function),
the functions of ``chalicelib`` it went through (``store/dynamo.py``'s thin helpers, the logging
middleware and the sign-in wrapper are skipped) and the operation, e.g.
``on_routing_event > engine.handle > engine.on_conversation_message > engine.acknowledge >
engine._mark_acknowledged > routing.save > dynamodb.TransactWriteItems``: the path through our functions,
so one store function reached on two paths is two sites.
One site may be called more than once in a flow; ``Call.occurrence`` counts them.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import EndpointConnectionError

from chalicelib.store import aws

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
CHALICELIB = str(ROOT / "chalicelib") + "/"
_HELPERS = {str(ROOT / "chalicelib" / "store" / name) for name in ("dynamo.py", "aws.py")}
# Every AWS service the app calls (``aws.client``); hooked before the flow so clients made later are covered.
_OBSERVABILITY = CHALICELIB + "observability.py"  # the middleware every handler runs through
_WRAPPERS = {"guarded"}  # auth/views.py's sign-in check around every REST view
SERVICES = ("dynamodb", "sqs", "apigatewaymanagementapi", "sesv2", "ssm")
BEFORE, AFTER = "before", "after"


@dataclass(frozen=True)
class Call:
    handler: str
    site: str
    operation: str
    occurrence: int  # 1 for the site's first call in the flow, 2 for its second...

    @property
    def label(self) -> str:
        return f"{self.handler} > {self.site} > {self.operation}"

    @property
    def key(self) -> str:
        return f"{self.label} #{self.occurrence}"


def _where() -> tuple[str, str] | None:
    """The app.py handler and the path through chalicelib the current AWS call comes from; None for the test's.

    The path names each function of ours on the way, outermost first (``store/dynamo.py``'s thin helpers,
    decorators' wrappers and comprehensions left out), so one store function called on two paths (an
    offer made when a customer writes, or when an agent is freed) is two sites.
    """
    handler, path = "", []
    frame = sys._getframe(1)
    while frame is not None:
        filename, function = frame.f_code.co_filename, frame.f_code.co_name
        if filename == APP and function != "guarded":  # the outermost one is the Lambda handler or REST view
            handler = f"webhook_{frame.f_locals['adapter'].name}" if function == "view" else function
        elif _ours(filename, function):
            path.append(f"{Path(filename).stem}.{function}")
        frame = frame.f_back  # type: ignore[assignment]
    if not path:
        return None
    return handler, " > ".join(reversed(path))


def _ours(filename: str, function: str) -> bool:
    """A step of the path: our code, not a thin helper, the logging middleware, a wrapper or a comprehension."""
    skipped = filename in _HELPERS or filename.startswith(_OBSERVABILITY) or function in _WRAPPERS
    return filename.startswith(CHALICELIB) and not skipped and not function.startswith("<")


class Faults:
    """Records the app's AWS calls in order; with ``fail`` set, raises at that call, before or after it."""

    def __init__(self, fail: str | Callable[[Call], bool] | None = None, when: str = BEFORE) -> None:
        """``fail``: the ``Call.key`` to fail (its first match only), or a test of the call."""
        self.fail, self.when = fail, when
        self.calls: list[Call] = []
        self.fired: list[Call] = []
        self._seen: Counter[str] = Counter()
        self._current: Call | None = None
        self._acting_as = ""

    @contextmanager
    def acting_as(self, handler: str) -> Iterator[None]:
        """Calls made outside app.py's handlers (a test driving a handler's function) count as ``handler``'s."""
        self._acting_as = handler
        try:
            yield
        finally:
            self._acting_as = ""

    def _before(self, event_name: str, **_: Any) -> None:
        self._current = None
        where = _where()
        if where is None:
            return  # the test reading moto's state through the app's client
        service, operation = event_name.split(".")[1:3]
        handler, site = where
        handler = handler or self._acting_as or "test"
        label = f"{handler} > {site} > {service}.{operation}"
        self._seen[label] += 1
        call = Call(handler, site, f"{service}.{operation}", self._seen[label])
        self.calls.append(call)
        self._current = call
        if self.when == BEFORE and self._chosen(call):
            self._explode(call, service)

    def _after(self, event_name: str, **_: Any) -> None:
        call = self._current
        if call is not None and self.when == AFTER and self._chosen(call):
            self._explode(call, event_name.split(".")[1])

    def _chosen(self, call: Call) -> bool:
        if self.fired or self.fail is None:
            return False
        return self.fail(call) if callable(self.fail) else call.key == self.fail

    def _explode(self, call: Call, service: str) -> None:
        self.fired.append(call)
        raise EndpointConnectionError(endpoint_url=f"https://{service}.us-east-1.amazonaws.com")

    @contextmanager
    def installed(self) -> Iterator[Faults]:
        clients = [aws.client(service) for service in SERVICES]
        for client in clients:
            client.meta.events.register_first("before-call", self._before, unique_id=f"faults-before-{id(self)}")
            client.meta.events.register_first("after-call", self._after, unique_id=f"faults-after-{id(self)}")
        try:
            yield self
        finally:
            for client in clients:
                client.meta.events.unregister("before-call", unique_id=f"faults-before-{id(self)}")
                client.meta.events.unregister("after-call", unique_id=f"faults-after-{id(self)}")
