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

Nor for long for those: a partition with waiting records that no live monitor
reads (its owner died, or the group is rebalancing, which with Kafka's session
timeout takes seconds; see monitors/ownership.py) is helped. This process reads
the waiting records and applies them to Redis itself (touches and settles are
idempotent; nothing is published: the partition's next owner replays them and
publishes each `sla.met`, which Redis keeps unpublished until then), and counts
the partition read as far as it applied. Breaches then wait for the records, not
for the group.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from monitors.metrics import Metrics
from router.consume import TRANSIENT
from router.kafka import client_options, describe_partitions
from router.logs import log
from router.settings import KafkaSettings

logger = logging.getLogger("leadrouter.watermark")
PARTITIONS_REFRESH_SECONDS = 30.0
PEEK_TIMEOUT_MS = 300
HELP_BATCH = 500  # records applied per orphaned partition per refresh

Apply = Callable[[Any], Awaitable[None]]


class GroupWatermark:
    def __init__(
        self,
        kafka: KafkaSettings,
        group_id: str,
        topics: Sequence[str],
        metrics: Metrics,
        apply: Apply | None = None,
        owners: Callable[[], Awaitable[set[tuple[str, int]]]] | None = None,
    ) -> None:
        self._apply = apply
        self._owners = owners if apply is not None else None
        # Per partition: the offset up to which this process applied records itself.
        self._helped: dict[TopicPartition, int] = {}
        self.helped_records = 0
        # Before any mark is known, a partition whose first unread record cannot be
        # peeked counts as this far behind.
        self._lag_floor_ms = 60_000
        self._group = group_id
        self._topics = tuple(topics)
        self._metrics = metrics
        self._admin = AIOKafkaAdminClient(**client_options(kafka))
        # Peeks and helps reassign this consumer every refresh; a fetch in flight is
        # waited for first, so it must not sit on the broker for the default 500 ms.
        self._peek = AIOKafkaConsumer(
            **client_options(kafka), group_id=None, enable_auto_commit=False, fetch_max_wait_ms=20
        )
        # Offsets are asked of a consumer that never fetches: on the peek consumer the
        # request queued behind its fetches and took 100 ms or more, the bulk of a refresh.
        self._offsets = AIOKafkaConsumer(**client_options(kafka), group_id=None, enable_auto_commit=False)
        self._first_unread: dict[tuple[TopicPartition, int], int] = {}
        self._known: list[TopicPartition] = []
        self._known_at = 0.0
        self.low_ms: int | None = None
        self.by_partition: dict[int, int] = {}

    async def start(self) -> None:
        await self._admin.start()
        await self._peek.start()
        await self._offsets.start()
        await self._partitions()

    async def stop(self) -> None:
        with contextlib.suppress(Exception):  # best effort on the way out
            await self._peek.stop()
        with contextlib.suppress(Exception):
            await self._offsets.stop()
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
        # Both questions at once: the watermark is as old as the slower answer.
        ends, committed = await asyncio.gather(
            self._offsets.end_offsets(partitions),
            self._admin.list_consumer_group_offsets(self._group, partitions=partitions),
        )
        uncommitted = [tp for tp in partitions if (m := committed.get(tp)) is None or m.offset < 0]
        starts = await self._offsets.beginning_offsets(uncommitted) if uncommitted else {}
        done: dict[TopicPartition, int] = {}
        for tp in partitions:
            meta = committed.get(tp)
            offset = meta.offset if meta is not None and meta.offset >= 0 else starts[tp]
            if self._helped.get(tp, 0) > offset:
                offset = self._helped[tp]
            else:
                self._helped.pop(tp, None)  # the group went past what we applied
            done[tp] = offset
        waiting = [tp for tp in partitions if done[tp] < ends[tp]]
        if waiting and self._owners is not None:
            owned = await self._owners()
            # A partition we helped stays ours to help until its new owner has caught
            # up with us: records behind our offset are replayed, not waited for.
            orphans = [tp for tp in waiting if (tp.topic, tp.partition) not in owned or tp in self._helped]
            if orphans:
                done.update(await self._help(orphans, done, ends))
        behind = {tp: done[tp] for tp in partitions if done[tp] < ends[tp]}
        missing = {tp: offset for tp, offset in behind.items() if (tp, offset) not in self._first_unread}
        peeked = await self._timestamps(missing) if missing else {}
        marks: dict[int, int] = {}
        unread: dict[tuple[TopicPartition, int], int] = {}
        for tp in partitions:
            mark = asked_ms
            if tp in behind:
                stamp = peeked.get(tp) or self._first_unread.get((tp, behind[tp]))
                if stamp is None:
                    # The peek timed out: say nothing newer than last time (never "caught up").
                    mark = self.by_partition.get(tp.partition, asked_ms - self._lag_floor_ms)
                else:
                    unread[(tp, behind[tp])] = stamp
                    mark = stamp - 1
            # Partition p of every watched topic holds the same leads (same key, same
            # partitioner, same count), so a bucket waits for the slowest of them.
            marks[tp.partition] = min(marks.get(tp.partition, mark), mark)
        self._first_unread = unread  # only what is still unread stays cached
        self.by_partition = marks
        self.low_ms = min(marks.values())
        return self.low_ms

    async def _help(
        self, orphans: list[TopicPartition], done: dict[TopicPartition, int], ends: dict[TopicPartition, int]
    ) -> dict[TopicPartition, int]:
        """Apply waiting records of partitions nobody reads; the next offset not applied, per partition."""
        assert self._apply is not None
        apply = self._apply
        self._peek.assign(orphans)
        for tp in orphans:
            self._peek.seek(tp, done[tp])
        # A fetch answers with whichever partitions have data first: ask again for
        # the others, briefly, until each was read to the end offset seen.
        got: dict[TopicPartition, list[Any]] = {tp: [] for tp in orphans}
        pending = set(orphans)
        deadline = time.monotonic() + 0.5
        while pending and time.monotonic() < deadline:
            batch = await self._peek.getmany(*pending, timeout_ms=100, max_records=HELP_BATCH * len(pending))
            for tp, records in batch.items():
                got[tp] += [r for r in records if r.offset < ends[tp]]
                reached = records[-1].offset + 1 if records else done[tp]  # gaps count as read
                if reached >= ends[tp] or len(got[tp]) >= HELP_BATCH:
                    pending.discard(tp)

        async def one(tp: TopicPartition) -> tuple[TopicPartition, int]:
            records = got[tp][:HELP_BATCH]
            for record in records:  # in order: the first touch applied is the one that counts
                await apply(record)
            return tp, (records[-1].offset + 1 if records else done[tp])

        advanced = dict(await asyncio.gather(*(one(tp) for tp in orphans)))
        for tp, offset in advanced.items():
            if offset > done[tp]:
                self.helped_records += offset - done[tp]
                self._helped[tp] = offset
                log(
                    logger,
                    "watermark.helped",
                    topic=tp.topic,
                    partition=tp.partition,
                    records=offset - done[tp],
                )
        return advanced

    @property
    def buckets(self) -> int:
        """Timer buckets: the partition count of the first watched topic (activities)."""
        return sum(tp.topic == self._topics[0] for tp in self._known)

    def mark(self, bucket: int) -> int | None:
        """The watermark of one bucket, or None while unknown."""
        return self.by_partition.get(bucket) if self.by_partition else None

    async def _timestamps(self, offsets: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
        """The timestamp of the record at each partition's offset, the first the group has
        not processed; only those the broker returned promptly (the refresh must not stall)."""
        stamps: dict[TopicPartition, int] = {}
        for tp, offset in offsets.items():
            self._peek.assign([tp])
            self._peek.seek(tp, offset)
            batch = await self._peek.getmany(tp, timeout_ms=PEEK_TIMEOUT_MS, max_records=1)
            if records := batch.get(tp):
                stamps[tp] = int(records[0].timestamp)
        return stamps

    async def run(self, stop: asyncio.Event, interval: float = 0.05) -> None:
        """Keep `low_ms` fresh; a failure leaves the last value, which only delays breaches."""
        while not stop.is_set():
            try:
                await self.refresh()
            except TRANSIENT as exc:
                self._metrics.retries.labels("sweeper").inc()
                log(logger, "watermark.retry", logging.WARNING, error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
