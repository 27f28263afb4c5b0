"""Lambda's SQS event source mapping and EventBridge schedule rules, for a Chalice app on the local stack.

One poller thread per ``@app.on_sqs_message`` long-polls its queue on moto and
invokes the handler with the event Lambda would build; a scheduler thread fires
each ``@app.schedule`` handler with EventBridge's "Scheduled Event" payload.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from chalice import Chalice
from chalice.app import DynamoDBEventConfig, ScheduledEventConfig, ScheduleExpression, SQSEventConfig

from chalicelib.local.lambda_context import ACCOUNT_ID, function_name, invoke_handler
from chalicelib.local.streams import StreamPoller

logger = logging.getLogger(__name__)

# Lambda's default retry for a failed record is the queue's visibility timeout
# (30 s for the routing queue); locally that makes every demo of a failure slow.
DEFAULT_RETRY_DELAY_SECONDS = 2
DEFAULT_WAIT_TIME_SECONDS = 1
# A receive returns at most 10 messages; Lambda only goes beyond that with a batching window.
_MAX_RECEIVE = 10
_RATE = re.compile(r"rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
# Cron schedules are not evaluated locally; they fire at this interval unless overridden.
CRON_INTERVAL_SECONDS = 60.0
_MISSING_QUEUE_CODES = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}


def schedule_interval(expression: str | ScheduleExpression) -> float:
    """Seconds between firings of a schedule: a rate's period, ``CRON_INTERVAL_SECONDS`` for a cron."""
    text = expression.to_string() if isinstance(expression, ScheduleExpression) else str(expression)
    match = _RATE.fullmatch(text.strip())
    if match is None:
        return CRON_INTERVAL_SECONDS
    return float(int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")])


@dataclass
class _QueueSource:
    config: SQSEventConfig
    queue_name: str
    url: str | None = None
    arn: str | None = None
    fifo: bool = False
    empty_polls: int = 0


@dataclass
class _Schedule:
    config: ScheduledEventConfig
    expression: str
    interval: float
    next_at: float


class EventPump:
    """Delivers SQS messages and schedule ticks to a Chalice app's handlers, as Lambda would.

    * SQS: long-polls each queue (``MaxNumberOfMessages=batch_size``), invokes the
      handler with a Lambda SQS event, deletes what succeeded, honours
      ``{"batchItemFailures": [...]}`` and redelivers everything when the handler
      raises. Failed records become visible again after ``retry_delay_seconds``
      (``None`` keeps the queue's own visibility timeout, as in AWS). moto itself
      moves a message to the DLQ once ``maxReceiveCount`` is exceeded.
    * DynamoDB streams: ``chalicelib.local.streams`` feeds each ``@app.on_dynamodb_record`` handler.
    * Schedules: fires each handler every ``schedule_interval_seconds`` (or the
      rate's own period when that is ``None``), first one interval after start.
    """

    def __init__(
        self,
        app: Chalice,
        *,
        region: str = "us-east-1",
        endpoint_url: str | None = None,
        lambda_stage: str = "dev",
        retry_delay_seconds: int | None = DEFAULT_RETRY_DELAY_SECONDS,
        schedule_interval_seconds: float | None = None,
        wait_time_seconds: int = DEFAULT_WAIT_TIME_SECONDS,
        report_batch_item_failures: bool = True,
    ) -> None:
        self._app = app
        self._region = region
        self._endpoint_url = endpoint_url
        self._lambda_stage = lambda_stage
        self.retry_delay_seconds = retry_delay_seconds
        self.wait_time_seconds = wait_time_seconds
        self.report_batch_item_failures = report_batch_item_failures
        self._sources = [
            _QueueSource(config, _queue_name(config))
            for config in app.event_sources
            if isinstance(config, SQSEventConfig)
        ]
        self._stream_sources = [c for c in app.event_sources if isinstance(c, DynamoDBEventConfig)]
        now = time.monotonic()
        self._schedules: list[_Schedule] = []
        for config in app.event_sources:
            if isinstance(config, ScheduledEventConfig):
                expression = config.schedule_expression
                text = expression.to_string() if isinstance(expression, ScheduleExpression) else str(expression)
                if schedule_interval_seconds is not None and schedule_interval_seconds <= 0:
                    raise ValueError("schedule_interval_seconds must be positive")
                interval = schedule_interval_seconds or schedule_interval(expression)
                self._schedules.append(_Schedule(config, text, interval, now + interval))
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._cond = threading.Condition()
        self._busy = 0
        self._completed = 0
        self._retries_due = 0.0  # monotonic time by which every retry we scheduled can have come back
        self._invocations: dict[str, int] = {}
        self._sequence_numbers: OrderedDict[str, str] = OrderedDict()
        self._next_sequence = 10**19
        self._paused = False
        self._polling = 0

    # -- lifecycle -----------------------------------------------------------

    @property
    def queue_names(self) -> list[str]:
        """Names of the queues the pump delivers from."""
        return [source.queue_name for source in self._sources]

    @property
    def schedule_intervals(self) -> dict[str, float]:
        """Seconds between firings, by handler name."""
        return {schedule.config.name: schedule.interval for schedule in self._schedules}

    @property
    def invocations(self) -> dict[str, int]:
        """How many times each handler was invoked so far (SQS and schedule handlers)."""
        with self._cond:
            return dict(self._invocations)

    def start(self) -> None:
        """Start one poller thread per SQS event source and one scheduler thread."""
        self._stop.clear()
        for source in self._sources:
            thread = threading.Thread(
                target=self._poll_forever, args=(source,), name=f"sqs-pump-{source.queue_name}", daemon=True
            )
            self._threads.append(thread)
        if self._schedules:
            self._threads.append(threading.Thread(target=self._schedule_forever, name="scheduler", daemon=True))
        for config in self._stream_sources:
            poller = StreamPoller(
                config, self._deliver_stream, self._stop, region=self._region, endpoint_url=self._endpoint_url
            )
            self._threads.append(threading.Thread(target=poller.run, name=f"stream-{config.name}", daemon=True))
        for thread in self._threads:
            thread.start()
        for schedule in self._schedules:
            logger.info(
                "schedule %s (%s) fires every %.1f s", schedule.config.name, schedule.expression, schedule.interval
            )

    def stop(self, timeout: float = 30.0) -> None:
        """Stop polling and firing; waits for the handler invocations in progress."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                logger.warning("%s did not stop within %.0f s", thread.name, timeout)
        self._threads = []

    def pause(self, timeout: float = 30.0) -> None:
        """Stop taking messages from the queues, like disabling the event source mapping.

        Returns once no receive or SQS handler invocation is in progress, so
        messages sent afterwards stay queued until ``resume`` (tests use this to
        make several messages arrive in one batch). Schedules keep firing.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            self._paused = True
            while self._polling:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("a poll or SQS handler is still running")
                self._cond.wait(remaining)

    def resume(self) -> None:
        """Take messages from the queues again."""
        with self._cond:
            self._paused = False
            self._cond.notify_all()

    # -- waiting helpers for tests and demos -----------------------------------

    def drain(self, timeout: float = 30.0) -> None:
        """Block until every pumped queue is empty (nothing visible, in flight or delayed) and no handler runs.

        Failed messages count as in flight until they succeed or moto moves them
        to the DLQ, so this also waits out retries. Raises ``TimeoutError``.
        """
        sqs = self._client()
        deadline = time.monotonic() + timeout
        left: dict[str, int] = {}
        while True:
            with self._cond:
                busy, completed = self._busy, self._completed
            if busy == 0:
                left = self._messages_left(sqs)
                with self._cond:
                    settled = self._busy == 0 and self._completed == completed
                    retries_pending = time.monotonic() < self._retries_due
                if settled and not retries_pending and not any(left.values()):
                    return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"queues not drained after {timeout} s: messages left {left}, busy {busy}")
            time.sleep(0.05)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every queue has been polled empty after this call and no handler runs.

        Unlike ``drain`` this does not wait for failed messages to come back.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            baseline = {id(source): source.empty_polls for source in self._sources}
            while True:
                # Two empty polls: the first may have been answered just before this call.
                polled = all(source.empty_polls > baseline[id(source)] + 1 for source in self._sources)
                if polled and self._busy == 0:
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.2))

    def fire_schedules(self, name: str | None = None) -> int:
        """Invoke scheduled handlers now, in this thread (all of them, or the one called ``name``)."""
        fired = 0
        for schedule in self._schedules:
            if name is None or schedule.config.name == name:
                self._fire(schedule)
                fired += 1
        return fired

    # -- SQS ----------------------------------------------------------------

    def _client(self) -> Any:
        # Long polls must outlive WaitTimeSeconds; the app's shared client would time out.
        config = Config(read_timeout=self.wait_time_seconds + 10, retries={"max_attempts": 2, "mode": "standard"})
        return boto3.session.Session().client(
            "sqs", region_name=self._region, endpoint_url=self._endpoint_url, config=config
        )

    def _resolve(self, sqs: Any, source: _QueueSource) -> bool:
        if source.url is not None:
            return True
        try:
            url = sqs.get_queue_url(QueueName=source.queue_name)["QueueUrl"]
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn", "FifoQueue"])
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _MISSING_QUEUE_CODES:
                return False
            raise
        source.arn = attributes["Attributes"]["QueueArn"]
        source.fifo = attributes["Attributes"].get("FifoQueue") == "true"
        source.url = url
        logger.info("delivering %s to handler %s", source.queue_name, source.config.name)
        return True

    def _poll_forever(self, source: _QueueSource) -> None:
        sqs = self._client()
        waiting_logged = False
        while not self._stop.is_set():
            try:
                if not self._resolve(sqs, source):
                    if not waiting_logged:
                        logger.info("queue %s does not exist yet; waiting for it", source.queue_name)
                        waiting_logged = True
                    self._stop.wait(0.5)
                    continue
                if not self._enter_poll():
                    continue
                try:
                    self._poll_once(sqs, source)
                finally:
                    self._leave_poll()
            except (ClientError, BotoCoreError):
                if self._stop.is_set():
                    return
                logger.exception("polling %s failed; retrying", source.queue_name)
                source.url = None
                self._stop.wait(1.0)

    def _enter_poll(self) -> bool:
        with self._cond:
            if self._paused:
                self._cond.wait(0.2)
                return False
            self._polling += 1
            return True

    def _leave_poll(self) -> None:
        with self._cond:
            self._polling -= 1
            self._cond.notify_all()

    def _poll_once(self, sqs: Any, source: _QueueSource) -> None:
        response = sqs.receive_message(
            QueueUrl=source.url,
            MaxNumberOfMessages=max(1, min(source.config.batch_size, _MAX_RECEIVE)),
            WaitTimeSeconds=self.wait_time_seconds,
            AttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if not messages:
            with self._cond:
                source.empty_polls += 1
                self._cond.notify_all()
            return
        with self._running(source.config.name):
            self._deliver(sqs, source, messages)

    def _deliver(self, sqs: Any, source: _QueueSource, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [self._record(source, message) for message in messages]}
        ids = [message["MessageId"] for message in messages]
        try:
            result = invoke_handler(self._app, source.config.name, event, stage=self._lambda_stage, region=self._region)
        except Exception:
            logger.exception("SQS handler %s raised; all %d records will be retried", source.config.name, len(ids))
            failed = set(ids)
        else:
            failed = self._failed_ids(source, result, ids)
        succeeded = [m for m in messages if m["MessageId"] not in failed]
        retried = [m for m in messages if m["MessageId"] in failed]
        for chunk in _chunks(succeeded):
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)]
            outcome = sqs.delete_message_batch(QueueUrl=source.url, Entries=entries)
            for failure in outcome.get("Failed", []):
                logger.warning("deleting a record from %s failed: %s", source.queue_name, failure.get("Code"))
        if retried:
            logger.info("%d of %d records from %s will be retried", len(retried), len(ids), source.queue_name)
        if retried and self.retry_delay_seconds is not None:
            # moto does not always count a FIFO record whose visibility we just changed as in flight, so
            # drain() also waits until every retry we scheduled has had its chance to be received again.
            due = time.monotonic() + self.retry_delay_seconds + self.wait_time_seconds + 1.0
            with self._cond:
                self._retries_due = max(self._retries_due, due)
            for chunk in _chunks(retried):
                entries = [
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": self.retry_delay_seconds}
                    for i, m in enumerate(chunk)
                ]
                sqs.change_message_visibility_batch(QueueUrl=source.url, Entries=entries)

    def _failed_ids(self, source: _QueueSource, result: Any, ids: list[str]) -> set[str]:
        """Records to retry, by Lambda's rules for ``ReportBatchItemFailures``."""
        if not self.report_batch_item_failures or not isinstance(result, dict):
            return set()
        failures = result.get("batchItemFailures")
        if not failures:
            return set()
        failed: set[str] = set()
        for item in failures if isinstance(failures, list) else [failures]:
            identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
            if not isinstance(identifier, str) or identifier not in ids:
                # Lambda treats a malformed or unknown itemIdentifier as a failure of the whole batch.
                logger.warning(
                    "handler %s returned an invalid batchItemFailures entry; retrying the whole batch",
                    source.config.name,
                )
                return set(ids)
            failed.add(identifier)
        return failed

    def _record(self, source: _QueueSource, message: dict[str, Any]) -> dict[str, Any]:
        attributes = dict(message.get("Attributes", {}))
        if source.fifo and "SequenceNumber" not in attributes:
            # moto only assigns one when the sender set MessageDeduplicationId.
            attributes["SequenceNumber"] = self._sequence_number(message["MessageId"])
        record: dict[str, Any] = {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": attributes,
            "messageAttributes": _lambda_message_attributes(message.get("MessageAttributes", {})),
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": source.arn,
            "awsRegion": self._region,
        }
        if "MD5OfMessageAttributes" in message:
            record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
        return record

    def _sequence_number(self, message_id: str) -> str:
        with self._cond:
            if message_id not in self._sequence_numbers:
                self._next_sequence += 1
                self._sequence_numbers[message_id] = str(self._next_sequence)
                if len(self._sequence_numbers) > 10_000:
                    self._sequence_numbers.popitem(last=False)
            return self._sequence_numbers[message_id]

    def _messages_left(self, sqs: Any) -> dict[str, int]:
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        left: dict[str, int] = {}
        for source in self._sources:
            try:
                if not self._resolve(sqs, source):
                    continue
                attributes = sqs.get_queue_attributes(QueueUrl=source.url, AttributeNames=names)["Attributes"]
            except ClientError:
                source.url = None
                continue
            left[source.queue_name] = sum(int(attributes.get(name, 0)) for name in names)
        return left

    def _deliver_stream(self, name: str, event: dict[str, Any]) -> None:
        with self._running(name):
            invoke_handler(self._app, name, event, stage=self._lambda_stage, region=self._region)

    # -- schedules ----------------------------------------------------------

    def _schedule_forever(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            for schedule in self._schedules:
                if schedule.next_at <= now:
                    self._fire(schedule)
                    schedule.next_at = time.monotonic() + schedule.interval
            next_at = min(schedule.next_at for schedule in self._schedules)
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _fire(self, schedule: _Schedule) -> None:
        rule = function_name(self._app, self._lambda_stage, schedule.config.name)
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": ACCOUNT_ID,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self._region,
            "resources": [f"arn:aws:events:{self._region}:{ACCOUNT_ID}:rule/{rule}"],
            "detail": {},
        }
        with self._running(schedule.config.name):
            try:
                invoke_handler(self._app, schedule.config.name, event, stage=self._lambda_stage, region=self._region)
            except Exception:
                logger.exception("scheduled handler %s raised", schedule.config.name)

    # -- bookkeeping ----------------------------------------------------------

    @contextmanager
    def _running(self, handler_name: str) -> Iterator[None]:
        with self._cond:
            self._busy += 1
            self._invocations[handler_name] = self._invocations.get(handler_name, 0) + 1
        try:
            yield
        finally:
            with self._cond:
                self._busy -= 1
                self._completed += 1
                self._cond.notify_all()


def _queue_name(config: SQSEventConfig) -> str:
    if config.queue:
        return config.queue
    if config.queue_arn:
        return config.queue_arn.rsplit(":", 1)[-1]
    raise ValueError(f"SQS handler {config.name} names neither a queue nor a queue ARN")


def _lambda_message_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """SQS ``MessageAttributes`` in the camelCase shape Lambda's SQS event uses."""
    converted: dict[str, Any] = {}
    for name, value in attributes.items():
        item: dict[str, Any] = {"stringListValues": [], "binaryListValues": [], "dataType": value["DataType"]}
        if "StringValue" in value:
            item["stringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            raw = value["BinaryValue"]
            item["binaryValue"] = base64.b64encode(raw if isinstance(raw, bytes) else str(raw).encode()).decode()
        converted[name] = item
    return converted


def _chunks(messages: list[dict[str, Any]], size: int = _MAX_RECEIVE) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(messages), size):
        yield messages[start : start + size]
