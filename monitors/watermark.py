"""How far the monitors have read the topics that can stop a clock.

A breach is only declared for deadlines before the watermark: the time up to
which every activity (and assignment) appended to Kafka has been processed.
Consumer lag therefore delays a breach; it never invents one.

Per partition, after each poll: a consumer that has read everything the broker
had at its last fetch (position >= high watermark) is caught up as of that
fetch's time; otherwise it has read up to the last record's timestamp.
The sweeper takes the minimum over every partition of every watched topic; a
partition no monitor has reported yet blocks breaches (the safe side).
"""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer
from redis.asyncio import Redis

from monitors.metrics import Metrics
from monitors.timing import RedisTimer
from router.consume import Batches
from router.redis_keys import RedisKeys


class Watermarks:
    def __init__(
        self, redis: Redis, keys: RedisKeys, topics: Sequence[str], metrics: Metrics | None = None
    ) -> None:
        self._timed = RedisTimer(metrics)
        self._redis = redis
        self._keys = keys
        self._topics = tuple(topics)

    async def record(self, consumer: AIOKafkaConsumer, polled_at: float, batches: Batches) -> None:
        updates: dict[str, dict[int, int]] = {}
        for tp in consumer.assignment():
            if tp.topic not in self._topics:
                continue
            highwater = consumer.highwater(tp)
            fetched_ms = consumer.last_poll_timestamp(tp)
            if highwater is None or not fetched_ms:
                continue
            if await consumer.position(tp) >= highwater:
                mark = fetched_ms
            elif batches.get(tp):
                mark = batches[tp][-1].timestamp
            else:
                continue
            updates.setdefault(tp.topic, {})[tp.partition] = mark
        if updates:
            with self._timed("watermark_write"):
                async with self._redis.pipeline(transaction=False) as pipe:
                    for topic, marks in updates.items():
                        for partition, mark in marks.items():
                            pipe.hset(self._keys.watermark(topic), str(partition), mark)
                    await pipe.execute()

    async def low(self, partitions: dict[str, int]) -> int | None:
        """The lowest watermark (ms) over `partitions` ({topic: count}), or None if unknown."""
        with self._timed("watermark_read"):
            async with self._redis.pipeline(transaction=False) as pipe:
                for topic in partitions:
                    pipe.hgetall(self._keys.watermark(topic))
                results = await pipe.execute()
        low: int | None = None
        for count, marks in zip(partitions.values(), results, strict=True):
            for partition in range(count):
                raw = marks.get(str(partition).encode())
                if raw is None:
                    return None
                low = int(raw) if low is None else min(low, int(raw))
        return low
