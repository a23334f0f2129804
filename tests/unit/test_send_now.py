"""router.kafka.send_now relies on aiokafka internals: a version without them is noticed here."""

from __future__ import annotations

from router.kafka import make_producer, send_now
from router.settings import KafkaSettings


async def test_the_internals_send_now_uses_exist_and_it_wakes_the_sender() -> None:
    """The accumulator keeps open batches in `_batches` and the sender waits on
    `_waiter_future`; send_now resolves that future (no broker needed)."""
    producer = make_producer(KafkaSettings(bootstrap_servers="127.0.0.1:1"))
    try:
        accumulator = producer._message_accumulator
        assert isinstance(accumulator._batches, dict)
        waiter = accumulator._waiter_future
        assert not waiter.done()
        send_now(producer)
        assert waiter.done()
        send_now(producer)  # twice is harmless
    finally:
        await producer.stop()
