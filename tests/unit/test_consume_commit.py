"""The consume loop survives a commit refused because the group rebalanced.

Found by the chaos suite: a router exited with CommitFailedError when the group
rebalanced (a worker restarted, the broker came back) while it processed a batch.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
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
