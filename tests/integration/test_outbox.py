"""The Redis outbox (router/outbox.py) loses no record, whatever runs twice.

The outbox carries the events of the paths with no Kafka record to replay: a lead
assigned from the retry queue, and a reassignment or an exhausted lead after an SLA
escalation. A publisher reads a batch from the head, publishes it, then removes it.
That removal must take away what was published and nothing else, even when it
runs twice: redis-py sends a command again when its reply does not come back
within the socket timeout (a stalled worker, a busy or frozen Redis), though Redis
may have run the first copy; and a publisher whose lease ran out during a slow
publish (a broker restart) may finish after another one took over.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

import orjson
import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from redis.exceptions import TimeoutError as RedisTimeoutError

from monitors.metrics import Metrics
from router.outbox import OutboxPublisher
from router.redis_keys import RedisKeys

pytestmark = pytest.mark.integration


class FakeProducer:
    """Records what is sent; `hold` keeps the broker's acknowledgement back until set."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.hold: asyncio.Event | None = None
        self.handed = asyncio.Event()

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[None]:
        self.sent.append(value)
        self.handed.set()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.hold is None:
            done.set_result(None)
        else:
            hold = self.hold
            asyncio.get_running_loop().create_task(_release(hold, done))
        return done


async def _release(hold: asyncio.Event, done: asyncio.Future[None]) -> None:
    await hold.wait()
    done.set_result(None)


class SlowLinkProxy:
    """A TCP proxy in front of redis-server that can hold one command back on the wire
    (a lost segment the kernel retransmits seconds later): its client times out, goes
    on with new connections, and the held command reaches Redis later, on the old one."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 6379
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []
        self.hold_next = False
        self.held = 0
        self.release = asyncio.Event()
        self.delivered = asyncio.Event()
        self.url = ""

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"redis://127.0.0.1:{port}/0"

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self._host, self._port)
        self._writers += [writer, up_writer]
        for pump in (self._pump(reader, up_writer, True), self._pump(up_reader, writer, False)):
            task = asyncio.create_task(pump)
            self._tasks.add(task)

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, requests: bool) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await src.read(65536):
                held = requests and self.hold_next
                if held:
                    self.hold_next = False
                    self.held += 1
                    await self.release.wait()
                dst.write(data)
                await dst.drain()
                if held:
                    self.delivered.set()
        dst.close()


def record(i: int) -> bytes:
    return orjson.dumps(["assignments", f"L{i}", f'{{"n": {i}, "name": "Zoë Ødegård"}}'])


def published(producer: FakeProducer) -> set[int]:
    return {orjson.loads(v)["n"] for v in producer.sent}


async def test_a_removal_that_reaches_redis_late_removes_nothing_unpublished(
    redis: Redis, redis_url: str, redis_prefix: str
) -> None:
    """A batch's removal held up on the network past the client's timeout reaches Redis
    after the publisher went on (read the batch again, published and removed it) and
    more records were queued: those records stay, and are published."""
    keys = RedisKeys(redis_prefix)
    proxy = SlowLinkProxy(redis_url)
    await proxy.start()
    client = Redis.from_url(proxy.url, socket_timeout=0.3, socket_connect_timeout=0.3)
    producer = FakeProducer()
    publisher = OutboxPublisher(client, keys, producer, Metrics(CollectorRegistry()))  # type: ignore[arg-type]
    original = producer.send

    async def send(topic: str, value: bytes, key: bytes) -> asyncio.Future[None]:
        if orjson.loads(value)["n"] == 2 and not proxy.held:
            proxy.hold_next = True  # the next command (the removal) is held on the wire
        return await original(topic, value, key)

    try:
        await redis.rpush(keys.outbox, record(0))
        assert await publisher.publish_once() == 1, "a first batch, as usual"
        await redis.rpush(keys.outbox, record(1), record(2))
        producer.send = send  # type: ignore[method-assign]
        with pytest.raises(RedisTimeoutError):
            await publisher.publish_once()
        assert proxy.held == 1
        await redis.rpush(keys.outbox, record(3))
        assert await publisher.publish_once() == 3, "read again: 1, 2 (copies) and 3"
        await redis.rpush(keys.outbox, record(4), record(5))  # a drainer commits meanwhile
        proxy.release.set()
        async with asyncio.timeout(5):
            await proxy.delivered.wait()
        await redis.ping()
        await asyncio.sleep(0.1)  # the held command has run by now
        while await publisher.publish_once():
            pass
        assert published(producer) == {0, 1, 2, 3, 4, 5}, "every record published"
        assert await redis.llen(keys.outbox) == 0
    finally:
        proxy.release.set()
        await client.aclose()
        await proxy.stop()


async def test_a_publisher_that_lost_its_lease_mid_publish_removes_only_its_batch(
    redis: Redis, redis_prefix: str
) -> None:
    """A publisher slowed down past its lease (the broker restarting) finishes after a
    second one took over and published more: its late removal takes nothing unpublished."""
    keys = RedisKeys(redis_prefix)
    slow, fast = FakeProducer(), FakeProducer()
    slow.hold = asyncio.Event()
    metrics = Metrics(CollectorRegistry())
    first = OutboxPublisher(redis, keys, slow, metrics)  # type: ignore[arg-type]
    second = OutboxPublisher(redis, keys, fast, metrics)  # type: ignore[arg-type]
    await redis.rpush(keys.outbox, record(0), record(1))
    stuck = asyncio.create_task(first.publish_once())
    async with asyncio.timeout(5):
        while len(slow.sent) < 2:
            await slow.handed.wait()
            slow.handed.clear()
    await redis.rpush(keys.outbox, record(2))
    await redis.delete(keys.outbox_lock)  # the slow publisher's lease ran out
    assert await second.publish_once() == 3
    await redis.rpush(keys.outbox, record(3), record(4))  # committed meanwhile
    slow.hold.set()
    await stuck
    while await second.publish_once():
        pass
    assert published(slow) | published(fast) == {0, 1, 2, 3, 4}, "every record published"
    assert await redis.llen(keys.outbox) == 0
