"""Redis goes away mid-stream: workers report unready, retry, and lose nothing."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from router.devinfra import RedisServer, ensure_topics
from router.devinfra.topics import run_coro
from router.settings import TopicSettings
from tests.services import start_redis
from tests.workers import WorkerProcess, Workers, worker_env

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]


def lead(i: int) -> tuple[bytes, bytes]:
    lead_id = f"outage-{i:03d}"
    event = {"event_id": f"{lead_id}-c", "type": "lead.created", "occurred_at": "2026-11-23T10:00:00+00:00",
             "lead": {"id": lead_id, "country": "US"}}  # fmt: skip
    return lead_id.encode(), orjson.dumps(event)


def wait_until(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {seconds}s waiting for {what}")


def ready(worker: WorkerProcess) -> bool:
    try:
        return worker.get("/readyz")[0] == 200
    except OSError:
        return False


async def publish(bootstrap: str, topic: str, numbers: range) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for i in numbers:
            key, value = lead(i)
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


async def assigned_leads(bootstrap: str, topic: str, expected: int, seconds: float) -> Counter[str]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    seen: Counter[str] = Counter()
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and sum(seen.values()) < expected:
            for records in (await consumer.getmany(timeout_ms=300)).values():
                seen.update(orjson.loads(r.value)["lead_id"] for r in records)
        for records in (await consumer.getmany(timeout_ms=1500)).values():  # late copies
            seen.update(orjson.loads(r.value)["lead_id"] for r in records)
    finally:
        await consumer.stop()
    return seen


def test_redis_outage_loses_nothing(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    """While Redis is down the router retries, commits nothing and reports unready; when
    Redis returns (with its AOF), every lead is assigned exactly once and it is ready again."""
    if os.environ.get("LEADROUTER_TEST_REDIS"):
        pytest.skip("needs a redis-server of its own to stop and restart")
    server: RedisServer = start_redis(tmp_path / "redis")
    topics = TopicSettings(prefix=topic_prefix, partitions=2)
    run_coro(lambda: ensure_topics(kafka_bootstrap, topics.all_topics()))
    workers = Workers(
        worker_env(
            kafka__bootstrap_servers=kafka_bootstrap,
            kafka__group_prefix=topic_prefix + "g",
            redis__url=server.url,
            redis__socket_timeout_seconds="1",
            topics__prefix=topic_prefix,
        ),
        tmp_path,
    )
    router = workers.start("router")
    try:
        workers.wait_ready()
        run_coro(lambda: publish(kafka_bootstrap, topics.name("leads"), range(20)))
        first = run_coro(lambda: assigned_leads(kafka_bootstrap, topics.name("assignments"), 20, 30))
        assert len(first) == 20

        server.stop()
        wait_until(lambda: not ready(router), 10, "/readyz to report Redis unreachable")
        status, body = router.get("/readyz")
        assert status == 503
        assert "unreachable" in body
        run_coro(lambda: publish(kafka_bootstrap, topics.name("leads"), range(20, 40)))
        time.sleep(3)  # the router polls these and retries against the missing Redis
        assert router.proc.poll() is None, "the worker survives the outage"

        server.start()
        wait_until(lambda: ready(router), 20, "/readyz to recover")
        seen = run_coro(lambda: assigned_leads(kafka_bootstrap, topics.name("assignments"), 40, 40))
    finally:
        workers.stop_all()
        server.stop()
    assert set(seen) == {f"outage-{i:03d}" for i in range(40)}, "no lead lost"
    assert set(seen.values()) == {1}, "no lead assigned twice"
    assert '"event":"batch.retry"' in router.log()
