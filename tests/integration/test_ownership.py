"""Monitor heartbeats on a real redis-server: who reads which partition, right now."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import TopicPartition
from redis.asyncio import Redis

from monitors.ownership import PartitionOwnership

pytestmark = pytest.mark.integration


async def test_a_fresh_heartbeat_owns_its_partitions_and_a_stale_one_none(
    redis: Redis, redis_prefix: str
) -> None:
    """Partitions are owned while their monitor beats; a monitor that stops beating
    (killed) owns nothing once its heartbeat is older than the timeout."""
    key = f"{redis_prefix}monitors"
    alive = PartitionOwnership(redis, key, lambda: [TopicPartition("acts", 0), TopicPartition("asg", 0)],
                               fresh_seconds=0.3)  # fmt: skip
    dead = PartitionOwnership(redis, key, lambda: [TopicPartition("acts", 1)], fresh_seconds=0.3)
    await alive.beat()
    await dead.beat()
    assert await alive.owned() == {("acts", 0), ("asg", 0), ("acts", 1)}
    await asyncio.sleep(0.4)
    await alive.beat()
    assert await alive.owned() == {("acts", 0), ("asg", 0)}


async def test_a_monitor_that_stops_cleanly_hands_over_at_once(redis: Redis, redis_prefix: str) -> None:
    """On SIGTERM a monitor removes its heartbeat: nobody waits for it to go stale."""
    key = f"{redis_prefix}monitors"
    leaving = PartitionOwnership(redis, key, lambda: [TopicPartition("acts", 2)], beat_seconds=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(leaving.run(stop))
    await asyncio.sleep(0.1)
    assert await leaving.owned() == {("acts", 2)}
    stop.set()
    await task
    assert await leaving.owned() == set()
    assert await redis.hlen(key) == 0
