"""The consume loop survives a commit refused because the group rebalanced.

Found by the chaos suite: a router exited with CommitFailedError when the group
rebalanced (a worker restarted, the broker came back) while it processed a batch.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from prometheus_client import CollectorRegistry

from monitors.metrics import Metrics
from router.consume import ConsumeLoop, Outbox, Record
from router.settings import TopicSettings

TP = TopicPartition("in", 0)


@dataclass
class FakeRecord:
    offset: int
    topic: str = "in"
    partition: int = 0
    timestamp: int = 0
    key: bytes | None = b"k"
    value: bytes | None = b"v"


class RebalancingConsumer:
    """Three batches; the first two commits fail as after a rebalance."""

    def __init__(self) -> None:
        self.batches = [[FakeRecord(0), FakeRecord(1)], [FakeRecord(2)], [FakeRecord(3)]]
        self.failures: list[Exception] = [
            CommitFailedError("the group has already rebalanced"),
            IllegalStateError("Partition TopicPartition(topic='in', partition=0) is not assigned"),
        ]
        self.committed: list[int] = []

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[FakeRecord]]:
        if self.batches:
            return {TP: self.batches.pop(0)}
        await asyncio.sleep(timeout_ms / 1000)
        return {}

    async def commit(self, offsets: dict[TopicPartition, Any]) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.committed.append(offsets[TP].offset)

    def assignment(self) -> set[TopicPartition]:
        return set()


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[bytes | None] = []

    async def send(self, topic: str, value: bytes | None, key: bytes | None, headers: Any) -> Any:
        self.sent.append(value)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


class Echo:
    def begin_batch(self) -> None:
        pass

    async def process(self, record: Record, out: Outbox) -> None:
        await out.send("out", record.key, record.value)

    async def after_publish(self) -> None:
        pass


async def test_a_commit_refused_after_a_rebalance_does_not_stop_the_loop(caplog: Any) -> None:
    consumer, producer = RebalancingConsumer(), FakeProducer()
    metrics = Metrics(CollectorRegistry())
    loop = ConsumeLoop("router", consumer, producer, Echo(), TopicSettings(), metrics, 0.01, 10)  # type: ignore[arg-type]
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    async with asyncio.timeout(5):
        while not consumer.committed:
            assert not task.done(), "the loop ended"
            await asyncio.sleep(0.01)
    stop.set()
    await task  # no exception: the refused commits were logged and skipped
    assert consumer.committed == [4], "the next batch commits as usual"
    assert len(producer.sent) == 4, "every batch was processed and published"
    assert [r.message for r in caplog.records].count("commit.skipped") == 2


class SlowCommitConsumer(RebalancingConsumer):
    """Ten batches on two partitions; each commit takes 50 ms, the first one fails hard
    when `fatal` is set."""

    def __init__(self, fatal: bool = False) -> None:
        super().__init__()
        other = TopicPartition("in", 1)
        self.batches = [[FakeRecord(i)] for i in range(10)]
        self.tps = [TP if i % 2 == 0 else other for i in range(10)]
        self.failures = [KafkaError("broker says no")] if fatal else []
        self.commits: list[dict[TopicPartition, int]] = []
        self.polled = 0

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[FakeRecord]]:
        if self.batches:
            self.polled += 1
            return {self.tps[self.polled - 1]: self.batches.pop(0)}
        await asyncio.sleep(timeout_ms / 1000)
        return {}

    async def commit(self, offsets: dict[TopicPartition, Any]) -> None:
        await asyncio.sleep(0.05)
        if self.failures:
            raise self.failures.pop(0)
        self.commits.append({tp: o.offset for tp, o in offsets.items()})


async def test_batches_do_not_wait_for_the_commit_of_the_one_before() -> None:
    """The loop polls on while a commit is in flight; the offsets of the batches finished
    meanwhile are committed next, merged, in order, up to the last record processed."""
    consumer, producer = SlowCommitConsumer(), FakeProducer()
    loop = ConsumeLoop("router", consumer, producer, Echo(), TopicSettings(), Metrics(CollectorRegistry()),
                       0.01, 10)  # type: ignore[arg-type]  # fmt: skip
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    async with asyncio.timeout(5):
        while consumer.batches:  # noqa: ASYNC110 - polling a fake's list is the simplest probe
            await asyncio.sleep(0.001)
    assert len(consumer.commits) <= 1, "ten batches went through while the first commit was in flight"
    stop.set()
    await task  # waits for the last commit
    assert len(producer.sent) == 10
    assert 2 <= len(consumer.commits) < 10, "commits in flight were merged"
    partition0 = [c[TP] for c in consumer.commits if TP in c]
    assert partition0 == sorted(partition0), "in order"
    assert partition0[-1] == 9, "up to the last record"
    assert max(c[TopicPartition("in", 1)] for c in consumer.commits if TopicPartition("in", 1) in c) == 10


async def test_a_commit_that_fails_for_another_reason_ends_the_loop() -> None:
    """Not a rebalance: the error reaches the worker (which exits), as a synchronous
    commit's did."""
    consumer, producer = SlowCommitConsumer(fatal=True), FakeProducer()
    loop = ConsumeLoop("router", consumer, producer, Echo(), TopicSettings(), Metrics(CollectorRegistry()),
                       0.01, 10)  # type: ignore[arg-type]  # fmt: skip
    with pytest.raises(KafkaError, match="broker says no"):
        async with asyncio.timeout(5):
            await loop.run(asyncio.Event())
    assert consumer.commits == []
