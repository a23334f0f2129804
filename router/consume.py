"""The consume loop shared by every worker: poll, process, publish, then commit.

At-least-once by construction: offsets are committed only after every record of
the batch was processed, every produced record acknowledged by the broker and the
processor's after-publish step done (the commit itself then runs alongside the
next poll: see `_commit_later`). A transient failure (Redis or Kafka down)
retries the whole batch with backoff, which is safe because processors are
idempotent. An exception never escapes the per-record boundary: bad input and
bugs are dead-lettered with a reason, and the worker keeps going.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import OffsetAndMetadata
from prometheus_client import Counter, Gauge
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MasterDownError, OutOfMemoryError, ReadOnlyError, TryAgainError
from redis.exceptions import TimeoutError as RedisTimeoutError

from monitors.metrics import Metrics
from router.errors import DlqReason, InvalidEvent, TransientError
from router.kafka import send_now
from router.logs import log, log_exception
from router.settings import TopicSettings

# Errors that say "not now" rather than "never": the work is retried, not
# dead-lettered. READONLY (a replica after failover), OOM, MASTERDOWN and TRYAGAIN
# clear up on the Redis side; the worker waits, unready, and loses nothing.
TRANSIENT: tuple[type[BaseException], ...] = (
    TransientError,
    RedisConnectionError,
    RedisTimeoutError,
    ReadOnlyError,
    OutOfMemoryError,
    MasterDownError,
    TryAgainError,
    KafkaError,
)


class Record(Protocol):
    """The fields of an aiokafka ConsumerRecord we use (aiokafka ships no types)."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None


Batches = dict[TopicPartition, list[Record]]

logger = logging.getLogger("leadrouter.consume")


class Processor(Protocol):
    def begin_batch(self) -> None:
        """Forget per-batch state: a batch may be processed again after a failure."""

    async def process(self, record: Record, out: Outbox) -> None:
        """Handle one record; raise InvalidEvent for bad input, TRANSIENT to retry."""

    async def after_publish(self) -> None:
        """Runs once the batch's produced records are acknowledged (and before commit)."""


@runtime_checkable
class BatchProcessor(Processor, Protocol):
    async def prepare(self, records: Sequence[Record]) -> None:
        """Optional: work on the whole batch before its records are processed one by one
        (batched Redis work). `process` must still handle every record it leaves; a
        failure that is not TRANSIENT just leaves everything to `process`."""


class Outbox:
    """What a batch publishes; awaited as a whole before the offsets are committed."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer
        self._pending: list[asyncio.Future[object]] = []

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> None:
        fut = await self._producer.send(topic, value=value, key=key, headers=list(headers or []))
        self._pending.append(fut)

    async def flush(self) -> None:
        pending, self._pending = self._pending, []
        if pending:
            send_now(self._producer)
            await asyncio.gather(*pending)


def base_topic(topics: TopicSettings, topic: str) -> str:
    """The topic name without the environment prefix: a closed set for labels."""
    return topic.removeprefix(topics.prefix)


class ConsumeLoop:
    def __init__(
        self,
        name: str,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        processor: Processor,
        topics: TopicSettings,
        metrics: Metrics,
        poll_timeout: float,
        max_records: int,
        on_polled: Callable[[AIOKafkaConsumer, float, Batches], Awaitable[None]] | None = None,
    ) -> None:
        self.name = name
        self._consumer = consumer
        self._producer = producer
        self._processor = processor
        self._topics = topics
        self._metrics = metrics
        self._poll_timeout_ms = int(poll_timeout * 1000)
        self._max_records = max_records
        self._on_polled = on_polled
        self.last_progress = time.monotonic()
        self.healthy = True
        self._lag_series: set[tuple[str, str]] = set()
        # Offsets of finished batches waiting for the commit task (see _commit_later).
        self._to_commit: dict[TopicPartition, OffsetAndMetadata] = {}
        self._polls: list[float] = []
        self._committer: asyncio.Task[None] | None = None
        self._topic_metrics: dict[str, tuple[str, Counter, Gauge]] = {}

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                self._check_commits()
                polled_at = time.time()
                batches: Batches = await self._consumer.getmany(
                    timeout_ms=self._poll_timeout_ms, max_records=self._max_records
                )
                if batches and not await self._process_batch(batches, stop):
                    return  # stopping mid-retry: leave the batch uncommitted for redelivery
                if batches:
                    self._commit_later(batches, polled_at)
                await self._record_lag()
                if self._on_polled is not None:
                    await self._on_polled(self._consumer, polled_at, batches)
                self.last_progress = time.monotonic()
        finally:
            if self._committer is not None:
                await self._committer

    def _commit_later(self, batches: Batches, polled_at: float) -> None:
        """Have a finished batch's offsets committed without waiting for the broker.

        The commit is a broker round trip (several ms) the next batch need not wait
        for: one task commits while the loop polls and processes on. Only batches
        whose side effects are all done and acknowledged get here, so at-least-once
        holds; offsets of batches finished while a commit is in flight are merged
        (the later offset of a partition wins) and committed next, in order.
        """
        for tp, records in batches.items():
            self._to_commit[tp] = OffsetAndMetadata(records[-1].offset + 1, "")
        self._polls.append(polled_at)
        self._check_commits()
        if self._committer is None:
            self._committer = asyncio.create_task(self._commit_pending(), name=f"{self.name}-commit")

    def _check_commits(self) -> None:
        """Re-raise a commit failure that is not a rebalance's (the loop ends, as before)."""
        if self._committer is not None and self._committer.done():
            committer, self._committer = self._committer, None
            committer.result()

    async def _commit_pending(self) -> None:
        while self._to_commit:
            offsets, self._to_commit = self._to_commit, {}
            polls, self._polls = self._polls, []
            await self._commit(offsets)
            now = time.time()
            for polled_at in polls:
                self._metrics.batch_seconds.labels(self.name).observe(now - polled_at)

    async def _commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        """Commit processed batches, unless the group rebalanced meanwhile.

        A worker joining or leaving (a restart, a broker restart) can move the
        batch's partitions while it is processed; the commit then fails. Its side
        effects are done and published, and whoever owns the partitions now starts
        from the last committed offset and processes it again, idempotently. So this
        is not a reason to exit: the next poll rejoins the group.
        """
        try:
            await self._consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            log(logger, "commit.skipped", logging.WARNING, worker=self.name, error=repr(exc))

    async def _record_lag(self) -> None:
        reported: set[tuple[str, str]] = set()
        for tp in self._consumer.assignment():
            highwater = self._consumer.highwater(tp)
            if highwater is not None:
                lag = max(0, highwater - await self._consumer.position(tp))
                labels = (base_topic(self._topics, tp.topic), str(tp.partition))
                self._metrics.consumer_lag.labels(*labels).set(lag)
                reported.add(labels)
        # A partition that moved to another process after a rebalance is that
        # process's to report: a stale value here would raise false lag alerts.
        for labels in self._lag_series - reported:
            self._metrics.consumer_lag.remove(*labels)
        self._lag_series = reported

    async def _process_batch(self, batches: Batches, stop: asyncio.Event) -> bool:
        """Process, publish and finish a batch; False if asked to stop meanwhile.

        A transient failure retries the record (or step) that failed, not the batch,
        so outputs already queued are not published twice. Only a failed publish
        reprocesses the whole batch: which of its records reached the broker is
        then unknown, and replays are idempotent (same bytes, same event ids).
        """
        while True:
            out = Outbox(self._producer)
            self._processor.begin_batch()
            if isinstance(self._processor, BatchProcessor):
                batch = [record for records in batches.values() for record in records]
                if not await self._retrying(functools.partial(self._prepare, batch), stop):
                    return False
            for records in batches.values():
                for record in records:
                    step = functools.partial(self._process_one, record, out)
                    if not await self._retrying(step, stop):
                        return False
            try:
                await out.flush()
            except TRANSIENT as exc:
                if not await self._backoff(exc, 1, stop):
                    return False
                continue
            if not await self._retrying(self._processor.after_publish, stop):
                return False
            self.healthy = True
            return True

    async def _retrying(self, step: Callable[[], Awaitable[None]], stop: asyncio.Event) -> bool:
        attempt = 0
        while True:
            try:
                await step()
                return True
            except TRANSIENT as exc:
                attempt += 1
                if not await self._backoff(exc, attempt, stop):
                    return False

    async def _backoff(self, exc: BaseException, attempt: int, stop: asyncio.Event) -> bool:
        """Wait before a retry (0.1 s doubling to 5 s); False if asked to stop meanwhile."""
        delay = min(0.1 * 2 ** (attempt - 1), 5.0)
        self.healthy = False
        self._metrics.retries.labels(self.name).inc()
        log(logger, "batch.retry", logging.WARNING, worker=self.name, error=repr(exc), backoff=delay)
        try:
            await asyncio.wait_for(stop.wait(), timeout=delay)
        except TimeoutError:
            return True
        return False

    async def _prepare(self, records: Sequence[Record]) -> None:
        assert isinstance(self._processor, BatchProcessor)
        try:
            await self._processor.prepare(records)
        except TRANSIENT:
            raise
        except Exception:  # noqa: BLE001 - an optimisation failing: every record goes the per-record way
            log_exception(logger, "batch.prepare_failed", worker=self.name, records=len(records))

    async def _process_one(self, record: Record, out: Outbox) -> None:
        topic, consumed, last_event = self._per_topic(record.topic)
        consumed.inc()
        try:
            await self._processor.process(record, out)
        except TRANSIENT:
            raise
        except InvalidEvent as exc:
            await self.dead_letter(record, out, exc.reason, exc.detail)
        except Exception as exc:  # noqa: BLE001 - the per-record boundary: never crash, never drop
            log_exception(logger, "record.failed", worker=self.name, topic=topic, offset=record.offset)
            await self.dead_letter(record, out, "processing_error", f"{type(exc).__name__}")
        last_event.set(time.time())

    def _per_topic(self, topic: str) -> tuple[str, Counter, Gauge]:
        """A topic's label and metric children, looked up once (`labels()` costs more than
        the update, and this runs for every record)."""
        found = self._topic_metrics.get(topic)
        if found is None:
            base = base_topic(self._topics, topic)
            found = (base, self._metrics.events_consumed.labels(base), self._metrics.last_event.labels(base))
            self._topic_metrics[topic] = found
        return found

    async def dead_letter(self, record: Record, out: Outbox, reason: DlqReason, detail: str) -> None:
        topic = base_topic(self._topics, record.topic)
        headers = [
            ("dlq.reason", reason.encode()),
            ("dlq.detail", detail[:1000].encode()),
            ("dlq.topic", record.topic.encode()),
            ("dlq.partition", str(record.partition).encode()),
            ("dlq.offset", str(record.offset).encode()),
            ("dlq.failed_at", datetime.now(UTC).isoformat().encode()),
            ("dlq.worker", self.name.encode()),
        ]
        # The original value and key, unchanged, so a fixed event can be replayed.
        await out.send(self._topics.dlq(record.topic), record.key, record.value, headers)
        self._metrics.dead_letters.labels(topic, reason).inc()
        log(
            logger,
            "event.dead_lettered",
            logging.WARNING,
            topic=topic,
            partition=record.partition,
            offset=record.offset,
            reason=reason,
            detail=detail[:300],
        )
