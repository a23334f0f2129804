"""Live changes to a running router: a hot-reloaded rulebook and rep status events."""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from router.devinfra import ensure_topics
from router.settings import TopicSettings
from tests.workers import workers_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]

RULEBOOK = """
version: "{version}"
reps:
  - {{id: a1, teams: [a], capacity: 500}}
  - {{id: a2, teams: [a], capacity: 500}}
  - {{id: b1, teams: [b], capacity: 500}}
  - {{id: b2, teams: [b], capacity: 500}}
  - {{id: b3, teams: [b], capacity: 500}}
teams: [{{id: a}}, {{id: b}}]
routes: [{{id: everyone, assign: {{team: {team}}}}}]
"""


def lead(i: int) -> tuple[bytes, bytes]:
    lead_id = f"live-{i:04d}"
    event = {"event_id": f"{lead_id}-c", "type": "lead.created", "occurred_at": datetime.now(UTC).isoformat(),
             "lead": {"id": lead_id, "country": "US"}}  # fmt: skip
    return lead_id.encode(), orjson.dumps(event)


async def collect(consumer: AIOKafkaConsumer, count: int, seconds: float) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and len(got) < count:
        for records in (await consumer.getmany(timeout_ms=200)).values():
            got += [orjson.loads(r.value) for r in records]
    for records in (await consumer.getmany(timeout_ms=1000)).values():  # copies, if any
        got += [orjson.loads(r.value) for r in records]
    return got


async def test_reload_and_rep_status_apply_mid_stream(
    kafka_bootstrap: str, redis_url: str, topic_prefix: str, redis_prefix: str, tmp_path: Path
) -> None:
    """Leads routed after a SIGHUP reload carry the new rulebook version, none lost or
    assigned twice; an invalid rulebook is rejected while the old one serves; a rep set
    `away` on the reps topic gets no further leads."""
    topics = TopicSettings(prefix=topic_prefix, partitions=3)
    await ensure_topics(kafka_bootstrap, topics.all_topics())
    workers = workers_for(
        kafka_bootstrap,
        redis_url,
        topic_prefix,
        redis_prefix,
        tmp_path,
        RULEBOOK.format(version="v1", team="a"),
    )
    path = tmp_path / "rulebook.yaml"
    router = workers.start("router")
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    out = AIOKafkaConsumer(topics.name("assignments"), bootstrap_servers=kafka_bootstrap,
                           auto_offset_reset="earliest")  # fmt: skip
    await producer.start()
    await out.start()
    try:
        workers.wait_ready()
        for i in range(100):
            await producer.send(topics.name("leads"), lead(i)[1], key=lead(i)[0])
        await producer.flush()
        first = await collect(out, 100, 30)
        path.write_text("version: broken\nreps: [")
        router.proc.send_signal(signal.SIGHUP)
        await asyncio.sleep(1)
        path.write_text(RULEBOOK.format(version="v2", team="b"))
        router.proc.send_signal(signal.SIGHUP)
        await asyncio.sleep(1)
        for i in range(100, 200):
            await producer.send(topics.name("leads"), lead(i)[1], key=lead(i)[0])
        await producer.flush()
        second = await collect(out, 100, 30)
        away = {"event_id": "wfm-1", "type": "rep.status", "occurred_at": datetime.now(UTC).isoformat(),
                "rep_id": "b2", "status": "away"}  # fmt: skip
        await producer.send_and_wait(topics.name("reps"), orjson.dumps(away), key=b"b2")
        await asyncio.sleep(1.5)
        for i in range(200, 260):
            await producer.send(topics.name("leads"), lead(i)[1], key=lead(i)[0])
        await producer.flush()
        third = await collect(out, 60, 30)
    finally:
        await out.stop()
        await producer.stop()
        workers.stop_all()

    everything = first + second + third
    assert len(everything) == 260, "every lead assigned exactly once"
    assert len({e["lead_id"] for e in everything}) == 260
    assert {e["type"] for e in everything} == {"lead.assigned"}
    assert {(e["rulebook_version"], e["team"]) for e in first} == {("v1", "a")}
    assert {(e["rulebook_version"], e["team"]) for e in second + third} == {("v2", "b")}
    assert "b2" not in {e["rep_id"] for e in third}, "an away rep gets no leads"
    assert {e["rep_id"] for e in third} == {"b1", "b3"}
    log = router.log()
    assert '"event":"rulebook.rejected"' in log
    assert '"event":"rulebook.reloaded"' in log
