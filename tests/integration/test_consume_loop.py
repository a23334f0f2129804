"""The consume loop on a real broker: retries, dead letters and commits."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer
from prometheus_client import CollectorRegistry

from monitors.metrics import Metrics
from router.consume import ConsumeLoop, Outbox, Record
from router.errors import InvalidEvent, TransientError
from router.kafka import make_consumer, make_producer
from router.settings import KafkaSettings, TopicSettings
from tests.services import MakeTopics

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


class FlakyProcessor:
    """Echoes records to `out`; fails in the ways a real processor can."""

    def __init__(self, out_topic: str) -> None:
        self.out_topic = out_topic
        self.transient_left = 2
        self.attempts: list[bytes] = []

    def begin_batch(self) -> None:
        pass

    async def process(self, record: Record, out: Outbox) -> None:
        value = record.value or b""
        self.attempts.append(value)
        if value == b"transient" and self.transient_left:
            self.transient_left -= 1
            raise TransientError("redis is away")
        if value == b"bug":
            raise ZeroDivisionError("a bug in a processor")
        if value == b"invalid":
            raise InvalidEvent("schema_violation", "lead.id: Field required")
        await out.send(self.out_topic, record.key, value)

    async def after_publish(self) -> None:
        pass


async def read_all(bootstrap: str, topic: str, count: int) -> list[tuple[bytes, dict[str, bytes]]]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    got: list[tuple[bytes, dict[str, bytes]]] = []
    try:
        async with asyncio.timeout(20):
            while len(got) < count:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    got += [(r.value, dict(r.headers)) for r in records]
        for records in (await consumer.getmany(timeout_ms=1000)).values():  # copies, if any
            got += [(r.value, dict(r.headers)) for r in records]
    finally:
        await consumer.stop()
    return got


async def test_loop_retries_dead_letters_and_commits(
    kafka_bootstrap: str, make_topics: MakeTopics, topic_prefix: str
) -> None:
    """A transient failure retries the failed record (outputs before it are not published
    again); a bug or bad input is dead-lettered with its reason and the records behind it
    still flow; offsets are committed after the batch."""
    names = await make_topics({"in": 1, "out": 1, "in.dlq": 1})
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, group_prefix=topic_prefix)
    topics = TopicSettings(prefix=topic_prefix)
    producer = make_producer(kafka)
    consumer = make_consumer(kafka, "loop", names["in"])
    metrics = Metrics(CollectorRegistry())
    processor = FlakyProcessor(names["out"])
    loop = ConsumeLoop("test", consumer, producer, processor, topics, metrics, 0.1, 100)
    values = [b"a", b"transient", b"bug", b"b", b"invalid", b"c"]
    await producer.start()
    await consumer.start()
    stop = asyncio.Event()
    try:
        for value in values:
            await producer.send_and_wait(names["in"], value, key=b"k")
        task = asyncio.create_task(loop.run(stop))
        out = await read_all(kafka_bootstrap, names["out"], 4)
        dlq = await read_all(kafka_bootstrap, names["in.dlq"], 2)
        stop.set()
        await task
        committed = await consumer.committed(next(iter(consumer.assignment())))
    finally:
        await consumer.stop()
        await producer.stop()
    assert sorted(v for v, _ in out) == [b"a", b"b", b"c", b"transient"], "each output once, in order"
    assert [v for v, _ in out] == [b"a", b"transient", b"b", b"c"]
    assert {h["dlq.reason"] for _, h in dlq} == {b"processing_error", b"schema_violation"}
    assert {v for v, _ in dlq} == {b"bug", b"invalid"}, "the original bytes are kept"
    assert committed == len(values)
    assert metrics.retries.labels("test")._value.get() == 2
    assert processor.attempts.count(b"transient") == 3
