"""Leads nobody can take wait in a queue and are assigned first in, first out."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from router.devinfra import ensure_topics
from router.settings import TopicSettings
from tests.workers import next_events, workers_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]

RULEBOOK = """
version: q1
reps:
  - {id: r1, teams: [t], capacity: 1}
  - {id: r2, teams: [t], capacity: 1}
teams: [{id: t}]
routes: [{id: all, assign: {team: t}}]
"""


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def lead(i: int) -> bytes:
    event = {"event_id": f"q-{i}", "type": "lead.created", "occurred_at": now_iso(), "lead": {"id": f"q-{i}"}}
    return orjson.dumps(event)


def touch(lead_id: str, rep: str) -> bytes:
    event = {"event_id": f"{lead_id}-t", "type": "activity", "occurred_at": now_iso(), "lead_id": lead_id,
             "rep_id": rep, "channel": "call"}  # fmt: skip
    return orjson.dumps(event)


async def test_queued_leads_are_assigned_in_order_when_capacity_frees(
    kafka_bootstrap: str, redis_url: str, topic_prefix: str, redis_prefix: str, tmp_path: Path
) -> None:
    """With two reps of capacity 1, leads 3 to 6 are queued; each first touch frees a
    place and the oldest waiting lead takes it, each assigned exactly once."""
    topics = TopicSettings(prefix=topic_prefix, partitions=1)
    await ensure_topics(kafka_bootstrap, topics.all_topics())
    workers = workers_for(kafka_bootstrap, redis_url, topic_prefix, redis_prefix, tmp_path, RULEBOOK)
    router, monitor = workers.start("router"), workers.start("monitor")
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    out = AIOKafkaConsumer(topics.name("assignments"), bootstrap_servers=kafka_bootstrap,
                           auto_offset_reset="earliest")  # fmt: skip
    await producer.start()
    await out.start()
    events: list[dict[str, Any]] = []
    try:
        workers.wait_ready()
        for i in range(1, 7):
            await producer.send_and_wait(topics.name("leads"), lead(i), key=f"q-{i}".encode())
        events += await next_events(out, 6)
        assigned = {e["lead_id"]: e["rep_id"] for e in events if e["type"] == "lead.assigned"}
        assert set(assigned) == {"q-1", "q-2"}
        for expected in ("q-3", "q-4", "q-5", "q-6"):
            # Touch the oldest open lead: its rep frees one place, the oldest waiting lead takes it.
            lead_id, rep = next(iter(assigned.items()))
            await producer.send_and_wait(topics.name("activities"), touch(lead_id, rep), key=lead_id.encode())
            new = await next_events(out, 1)
            assert [(e["type"], e["lead_id"]) for e in new] == [("lead.assigned", expected)]
            assert new[0]["rep_id"] == rep
            events += new
            del assigned[lead_id]
            assigned[expected] = rep
        await asyncio.sleep(1.5)
        events += await next_events(out, 1, seconds=1)  # nothing more may come
        figures = router.metric("leadrouter_leads_dequeued_total"), router.metric("leadrouter_leads_waiting")
    finally:
        await out.stop()
        await producer.stop()
        workers.stop_all()
    kinds = [(e["type"], e["lead_id"]) for e in events]
    assert sorted(k for k in kinds if k[0] == "lead.queued") == [
        ("lead.queued", f"q-{i}") for i in range(3, 7)
    ]
    assigned_ids = [lead_id for kind, lead_id in kinds if kind == "lead.assigned"]
    assert sorted(assigned_ids) == [f"q-{i}" for i in range(1, 7)], "each lead assigned exactly once"
    assert figures == (4, 0)
    assert '"event":"lead.dequeued"' in router.log()
    assert monitor.proc.returncode is not None
