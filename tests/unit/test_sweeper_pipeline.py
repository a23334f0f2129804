"""The sweeper's loop with fakes around it: a full claim is published while the next
claim runs, a failed publish makes it unhealthy until one succeeds, and a bug in a
publish ends the loop instead of vanishing in a background task.

The real thing (Redis claims, Kafka publishes, a monitor killed mid-publish) is proven
in tests/e2e/test_monitor_crash.py and by `leadrouter bench sla`."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError
from prometheus_client import CollectorRegistry

from monitors.metrics import Metrics
from monitors.sweeper import PUBLISH_DEPTH, Sweeper
from monitors.timers import Clock, DueTimer
from router.settings import Settings
from tests.waiting import until

BATCH = 3


class Timers:
    """Hands out `due` timers, BATCH per claim, and records claims and acks."""

    buckets = 1

    def __init__(self, due: int) -> None:
        self.due = [f"breach:1:lead-{i}" for i in range(due)]
        self.claims = 0
        self.acked: list[str] = []

    async def claim_buckets(
        self, cutoffs: Any, now_ms: int, lease_ms: int, limit: int
    ) -> list[list[DueTimer]]:
        self.claims += 1
        taken, self.due = self.due[:limit], self.due[limit:]
        await asyncio.sleep(0)
        clock = [Clock(m.split(":", 2)[2], "r1", "t", 1, now_ms - 5000, now_ms - 1) for m in taken]
        return [[DueTimer(m, "breach", c) for m, c in zip(taken, clock, strict=True)]]

    async def ack(self, timers: Any, now_ms: int) -> None:
        self.acked += [member for member, _ in timers]

    async def extend(self, members: Any, until_ms: int) -> None:
        pass


class Watermark:
    low_ms = 2**62

    def mark(self, bucket: int) -> int:
        return 2**62


class Producer:
    """Acknowledges a send when `release` is set; `fail` raises on send."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.in_flight = 0
        self.most_in_flight = 0
        self.fail: BaseException | None = None
        self.sent = 0

    async def send(self, topic: str, key: bytes, value: bytes) -> asyncio.Future[None]:
        if self.fail is not None:
            raise self.fail
        self.sent += 1
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)

        async def acknowledge() -> None:
            await self.release.wait()
            self.in_flight -= 1
            done.set_result(None)

        asyncio.get_running_loop().create_task(acknowledge())
        return done


def sweeper(timers: Timers, producer: Producer) -> Sweeper:
    settings = Settings(sla={"claim_batch": BATCH, "sweep_interval_seconds": 0.01})  # type: ignore[arg-type]
    return Sweeper(settings, timers, Watermark(), producer, lambda: None, Metrics(CollectorRegistry()))  # type: ignore[arg-type]


async def test_a_full_claim_is_published_while_the_next_one_runs() -> None:
    timers, producer = Timers(due=4 * BATCH), Producer()
    s = sweeper(timers, producer)
    stop = asyncio.Event()
    task = asyncio.create_task(s.run(stop))
    # Nothing is acknowledged yet, and still every batch went out: each of the two
    # claim loops claimed, started a publish and claimed again, up to PUBLISH_DEPTH.
    assert 2 * PUBLISH_DEPTH >= 4
    assert await until(lambda: producer.sent == 4 * BATCH, 5, every=0.005)
    assert timers.claims == 4
    assert producer.most_in_flight == 4 * BATCH, "batches are published at once, not in turn"
    assert timers.acked == []
    producer.release.set()
    assert await until(lambda: len(timers.acked) == 4 * BATCH, 5, every=0.005)
    stop.set()
    await task
    assert sorted(timers.acked) == sorted(f"breach:1:lead-{i}" for i in range(4 * BATCH))


async def test_a_failed_publish_is_unhealthy_until_one_succeeds() -> None:
    timers, producer = Timers(due=BATCH), Producer()
    producer.fail = KafkaConnectionError()
    s = sweeper(timers, producer)
    stop = asyncio.Event()
    task = asyncio.create_task(s.run(stop))
    assert await until(lambda: not s.healthy, 5, every=0.005)
    await asyncio.sleep(0.05)  # empty claims meanwhile say nothing about Kafka
    assert not s.healthy
    assert timers.acked == [], "unacked: the claims go back when their lease ends"
    producer.fail = None
    producer.release.set()
    timers.due = [f"breach:1:again-{i}" for i in range(BATCH)]
    assert await until(lambda: s.healthy, 5, every=0.005)
    assert len(timers.acked) == BATCH
    stop.set()
    await task


async def test_a_bug_in_a_publish_ends_the_loop() -> None:
    timers, producer = Timers(due=BATCH), Producer()
    producer.fail = ZeroDivisionError()
    s = sweeper(timers, producer)
    with pytest.raises(ZeroDivisionError):
        await asyncio.wait_for(s.run(asyncio.Event()), timeout=5)
