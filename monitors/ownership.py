"""Which monitor reads which partitions right now, from heartbeats in Redis.

Kafka's group protocol notices a dead member only after its session timeout
(seconds), and a rebalance takes every partition from every member until it
ends. Each monitor therefore writes what it reads, every `beat` seconds; a
partition no fresh heartbeat names is orphaned, and the watermark applies its
records itself (monitors/watermark.py) instead of holding its breaches back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterable

from aiokafka import ConsumerRebalanceListener, TopicPartition
from redis.asyncio import Redis

from router.consume import TRANSIENT
from router.logs import log

logger = logging.getLogger("leadrouter.ownership")
FORGET_MS = 60_000  # heartbeats older than this are removed


class PartitionOwnership:
    def __init__(
        self,
        redis: Redis,
        key: str,
        assignment: Callable[[], Iterable[TopicPartition]],
        beat_seconds: float = 0.2,
        fresh_seconds: float = 0.6,
    ) -> None:
        self._redis = redis
        self._key = key
        self._assignment = assignment
        self._beat = beat_seconds
        self._fresh_ms = int(fresh_seconds * 1000)
        self.member = uuid.uuid4().hex
        # Between a revoke and the next assignment the group is rebalancing: this
        # process reads nothing, whatever its consumer still lists.
        self.rebalancing = False

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.beat()
            except TRANSIENT as exc:  # no beat: others help our partitions, which is safe
                log(logger, "ownership.retry", logging.WARNING, error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._beat)
        with contextlib.suppress(*TRANSIENT):
            await self._redis.hdel(self._key, self.member)  # stopping: hand over at once

    async def beat(self) -> None:
        now_ms = int(time.time() * 1000)
        partitions = () if self.rebalancing else sorted(self._assignment())
        reading = ",".join(f"{tp.topic}:{tp.partition}" for tp in partitions)
        await self._redis.hset(self._key, self.member, f"{now_ms}|{reading}")

    async def owned(self) -> set[tuple[str, int]]:
        """Partitions a monitor with a fresh heartbeat is reading."""
        now_ms = int(time.time() * 1000)
        beats = await self._redis.hgetall(self._key)
        owned: set[tuple[str, int]] = set()
        stale = []
        for member, value in beats.items():
            stamp, _, reading = (value.decode() if isinstance(value, bytes) else value).partition("|")
            age = now_ms - int(stamp)
            if age > FORGET_MS:
                stale.append(member)
            if age > self._fresh_ms or not reading:
                continue
            for item in reading.split(","):
                topic, _, partition = item.rpartition(":")
                owned.add((topic, int(partition)))
        if stale:
            await self._redis.hdel(self._key, *stale)
        return owned


class OwnershipListener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Says at once, not a heartbeat later, when a rebalance takes our partitions."""

    def __init__(self, ownership: PartitionOwnership) -> None:
        self._ownership = ownership

    async def on_partitions_revoked(self, revoked: object) -> None:
        self._ownership.rebalancing = True
        await self._beat()

    async def on_partitions_assigned(self, assigned: object) -> None:
        self._ownership.rebalancing = False
        await self._beat()

    async def _beat(self) -> None:
        with contextlib.suppress(*TRANSIENT):  # the periodic beat says it soon enough
            await self._ownership.beat()
