"""How far the monitor group has read the topics that can stop a clock.

A breach is only declared for deadlines before the watermark: the time up to
which every activity (and assignment) appended to Kafka has been processed.
Consumer lag therefore delays a breach; it never invents one.

The watermark is the group's, not one process's: per partition, from the group's
committed offset (committed only after a batch is fully processed) and the
partition's end offset. A partition read to its end is caught up as of the moment
its end offset was asked; a partition with unprocessed records is caught up to
just before the first of them (its timestamp, peeked once and cached). So a
monitor killed mid-run stalls breaches only for records it left unprocessed, not
for every lead until the group notices it is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from monitors.metrics import Metrics
from router.consume import TRANSIENT
from router.kafka import client_options, describe_partitions
from router.logs import log
from router.settings import KafkaSettings

logger = logging.getLogger("leadrouter.watermark")
PARTITIONS_REFRESH_SECONDS = 30.0


class GroupWatermark:
    def __init__(self, kafka: KafkaSettings, group_id: str, topics: Sequence[str], metrics: Metrics) -> None:
        self._group = group_id
        self._topics = tuple(topics)
        self._metrics = metrics
        self._admin = AIOKafkaAdminClient(**client_options(kafka))
        self._peek = AIOKafkaConsumer(**client_options(kafka), group_id=None, enable_auto_commit=False)
        self._first_unread: dict[tuple[TopicPartition, int], int] = {}
        self._known: list[TopicPartition] = []
        self._known_at = 0.0
        self.low_ms: int | None = None
        self.by_partition: dict[int, int] = {}

    async def start(self) -> None:
        await self._admin.start()
        await self._peek.start()
        await self._partitions()

    async def stop(self) -> None:
        with contextlib.suppress(Exception):  # best effort on the way out
            await self._peek.stop()
        with contextlib.suppress(Exception):
            await self._admin.close()

    async def _partitions(self) -> list[TopicPartition]:
        """Every partition of the watched topics (looked up again now and then: they can grow)."""
        if not self._known or time.monotonic() - self._known_at > PARTITIONS_REFRESH_SECONDS:
            known = await describe_partitions(self._admin, self._topics)
            if known:
                self._known, self._known_at = known, time.monotonic()
        return self._known

    async def refresh(self) -> int | None:
        """Recompute the low watermark (epoch ms) over every watched partition."""
        asked_ms = int(time.time() * 1000)
        partitions = await self._partitions()
        if not partitions:
            return None
        ends = await self._peek.end_offsets(partitions)
        starts = await self._peek.beginning_offsets(partitions)
        committed = await self._admin.list_consumer_group_offsets(self._group, partitions=partitions)
        marks: dict[int, int] = {}
        unread: dict[tuple[TopicPartition, int], int] = {}
        for tp in partitions:
            mark = asked_ms
            meta = committed.get(tp)
            done = meta.offset if meta is not None and meta.offset >= 0 else starts[tp]
            if done < ends[tp]:
                stamp = self._first_unread.get((tp, done))
                if stamp is None:
                    stamp = await self._timestamp(tp, done)
                unread[(tp, done)] = stamp
                mark = stamp - 1
            # Partition p of every watched topic holds the same leads (same key, same
            # partitioner, same count), so a bucket waits for the slowest of them.
            marks[tp.partition] = min(marks.get(tp.partition, mark), mark)
        self._first_unread = unread  # only what is still unread stays cached
        self.by_partition = marks
        self.low_ms = min(marks.values())
        return self.low_ms

    @property
    def buckets(self) -> int:
        """Timer buckets: the partition count of the first watched topic (activities)."""
        return sum(tp.topic == self._topics[0] for tp in self._known)

    def mark(self, bucket: int) -> int | None:
        """The watermark of one bucket, or None while unknown."""
        return self.by_partition.get(bucket) if self.by_partition else None

    async def _timestamp(self, tp: TopicPartition, offset: int) -> int:
        """The timestamp of the record at `offset`, the first the group has not processed."""
        self._peek.assign([tp])
        self._peek.seek(tp, offset)
        batch = await self._peek.getmany(tp, timeout_ms=1000, max_records=1)
        records = batch.get(tp, [])
        # No record came back (removed by retention meanwhile): caught up to now.
        return int(records[0].timestamp) if records else int(time.time() * 1000)

    async def run(self, stop: asyncio.Event, interval: float = 0.2) -> None:
        """Keep `low_ms` fresh; a failure leaves the last value, which only delays breaches."""
        while not stop.is_set():
            try:
                await self.refresh()
            except TRANSIENT as exc:
                self._metrics.retries.labels("sweeper").inc()
                log(logger, "watermark.retry", logging.WARNING, error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
