"""Lambda's DynamoDB stream event source mapping, for the local stack: ``@app.on_dynamodb_record`` handlers get
the table's changes from moto's stream, as Lambda would hand them over.

One thread per handler polls every shard of the stream of the table its ``stream_arn`` names (the ARN's own
label is ignored: the local table's stream is whatever moto made), from the newest record on
(``starting_position`` LATEST) or from the oldest (TRIM_HORIZON), collects up to ``batch_size`` records over the
handler's batching window, and invokes it with ``{"Records": [...]}``, each record as Lambda shapes it. A
handler that raises is logged and its batch dropped (Lambda would retry it a few times and then skip it, as the
stack's mapping says).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from chalice.app import DynamoDBEventConfig

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.2


def table_of(stream_arn: str) -> str:
    """The table a stream ARN (``arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>``) belongs to."""
    return stream_arn.split(":table/", 1)[1].split("/stream/", 1)[0]


def streams_client(region: str, endpoint_url: str | None) -> Any:
    """A DynamoDB Streams client that moto answers: botocore's account-based endpoints
    (``<account>.streams-ddb.<region>...``) are not among moto's URLs, so they are turned off."""
    config = Config(account_id_endpoint_mode="disabled", retries={"max_attempts": 2, "mode": "standard"})
    return boto3.session.Session().client(
        "dynamodbstreams", region_name=region, endpoint_url=endpoint_url, config=config
    )


class StreamPoller:
    """Feeds one handler from its table's stream until ``stop`` is set."""

    def __init__(
        self,
        config: DynamoDBEventConfig,
        deliver: Callable[[str, dict[str, Any]], None],
        stop: threading.Event,
        *,
        region: str,
        endpoint_url: str | None,
    ) -> None:
        self.config = config
        self._deliver = deliver
        self._stop = stop
        self._region = region
        self._endpoint_url = endpoint_url
        self._iterators: dict[str, str | None] = {}
        self.stream_arn: str | None = None

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.stream_arn is None and not self._resolve():
                    self._stop.wait(0.5)
                    continue
                self._poll_once()
            except (ClientError, BotoCoreError):
                if self._stop.is_set():
                    return
                logger.exception("reading the stream of %s failed; retrying", table_of(self.config.stream_arn))
                self.stream_arn = None
                self._iterators = {}
                self._stop.wait(1.0)

    def _resolve(self) -> bool:
        dynamodb = boto3.session.Session().client("dynamodb", region_name=self._region, endpoint_url=self._endpoint_url)
        try:
            table = dynamodb.describe_table(TableName=table_of(self.config.stream_arn))["Table"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return False
            raise
        arn = table.get("LatestStreamArn")
        if not arn:
            return False
        self.stream_arn = arn
        self._refresh_shards(streams_client(self._region, self._endpoint_url))
        logger.info("delivering the stream of %s to handler %s", table["TableName"], self.config.name)
        return True

    def _refresh_shards(self, streams: Any) -> None:
        shards = streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
        kind = "TRIM_HORIZON" if self.config.starting_position == "TRIM_HORIZON" else "LATEST"
        for shard in shards:
            if shard["ShardId"] not in self._iterators:
                self._iterators[shard["ShardId"]] = streams.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard["ShardId"], ShardIteratorType=kind
                )["ShardIterator"]

    def _poll_once(self) -> None:
        streams = streams_client(self._region, self._endpoint_url)
        batch = self._read(streams)
        if not batch:
            self._stop.wait(POLL_SECONDS)
            return
        window_ends = time.monotonic() + self.config.maximum_batching_window_in_seconds
        while len(batch) < self.config.batch_size and time.monotonic() < window_ends and not self._stop.is_set():
            self._stop.wait(min(POLL_SECONDS, max(0.0, window_ends - time.monotonic())))
            batch += self._read(streams, self.config.batch_size - len(batch))
        for record in batch:
            record["eventSourceARN"] = self.stream_arn
        try:
            self._deliver(self.config.name, {"Records": batch})
        except Exception:
            logger.exception("stream handler %s raised; its %d records are dropped", self.config.name, len(batch))

    def _read(self, streams: Any, limit: int | None = None) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        for shard_id, iterator in list(self._iterators.items()):
            if iterator is None:
                continue
            page = streams.get_records(ShardIterator=iterator, Limit=limit or self.config.batch_size)
            self._iterators[shard_id] = page.get("NextShardIterator")
            records += page.get("Records", [])
        return records
