"""SLA policies end to end: warnings, breaches, escalations, reassignment, late arrivals."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from router.devinfra import ensure_topics
from router.settings import TopicSettings
from tests.workers import workers_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

RULEBOOK = """
version: sla-1
reps:
  - {id: r1, teams: [t], capacity: 50}
  - {id: r2, teams: [t], capacity: 50}
  - {id: r3, teams: [t], capacity: 50}
teams: [{id: t, escalation_contact: team-lead-t}]
routes: [{id: all, assign: {team: t}}]
sla_policies:
  - id: fast
    first_touch: 2s
    warn_before: 1s
    escalation:
      - {after: 0s, action: notify_rep}
      - {after: 1s, action: notify_contact}
      - {after: 2s, action: reassign}
    max_attempts: 3
    exhausted_queue: sla-exhausted
"""


def lead(lead_id: str) -> bytes:
    return orjson.dumps({"event_id": f"{lead_id}-c", "type": "lead.created",
                         "occurred_at": datetime.now(UTC).isoformat(), "lead": {"id": lead_id}})  # fmt: skip


def touch(lead_id: str, rep: str, at: datetime, tag: str) -> bytes:
    return orjson.dumps({"event_id": f"{lead_id}-{tag}", "type": "activity", "occurred_at": at.isoformat(),
                         "lead_id": lead_id, "rep_id": rep, "channel": "call"})  # fmt: skip


async def test_escalation_reassigns_then_exhausts_and_late_arrivals_count(
    kafka_bootstrap: str, redis_url: str, topic_prefix: str, redis_prefix: str, tmp_path: Path
) -> None:
    """An untouched lead is warned, breached, escalated and reassigned to a new rep for
    each attempt, then queued once attempts run out; a touch in time gets sla.met with
    business time and no alerts; a touch made in time that arrives after its breach
    gets sla.met with late_arrival and the breach stands; each alert exactly once."""
    topics = TopicSettings(prefix=topic_prefix, partitions=2)
    await ensure_topics(kafka_bootstrap, topics.all_topics())
    workers = workers_for(kafka_bootstrap, redis_url, topic_prefix, redis_prefix, tmp_path, RULEBOOK)
    workers.start("router")
    workers.start("monitor")
    workers.start("monitor")
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    out = AIOKafkaConsumer(topics.name("assignments"), topics.name("sla-events"),
                           bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest")  # fmt: skip
    await producer.start()
    await out.start()
    seen: dict[str, list[dict[str, Any]]] = defaultdict(list)
    try:
        workers.wait_ready()
        for lead_id in ("never", "quick", "late"):
            await producer.send_and_wait(topics.name("leads"), lead(lead_id), key=lead_id.encode())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(e["type"] == "lead.queued" for e in seen["never"]):
            for records in (await out.getmany(timeout_ms=200)).values():
                for r in records:
                    event = orjson.loads(r.value)
                    seen[event["lead_id"]].append(event)
                    activities = topics.name("activities")
                    if event["type"] == "lead.assigned" and event["lead_id"] == "quick":
                        value = touch("quick", event["rep_id"], datetime.now(UTC), "t")
                        await producer.send_and_wait(activities, value, key=b"quick")
                    if event["type"] == "sla.breached" and event["lead_id"] == "late":
                        # Made 1 s after assignment, reaching us only now.
                        at = datetime.fromisoformat(event["assigned_at"]) + timedelta(seconds=1)
                        await producer.send_and_wait(
                            activities, touch("late", event["rep_id"], at, "t"), key=b"late"
                        )
        for records in (await out.getmany(timeout_ms=3000)).values():  # copies, if any
            for r in records:
                event = orjson.loads(r.value)
                seen[event["lead_id"]].append(event)
    finally:
        await out.stop()
        await producer.stop()
        workers.stop_all()

    never = seen["never"]
    kinds = [(e["type"], e.get("attempt"), e.get("level")) for e in never]
    assert len(kinds) == len(set(kinds)), f"no alert twice: {kinds}"
    assigned = [e for e in never if e["type"] == "lead.assigned"]
    assert [e["attempt"] for e in assigned] == [1, 2, 3]
    assert len({e["rep_id"] for e in assigned}) == 3, "each attempt goes to a rep who did not have it"
    assert all(e["policy"] == "fast" for e in assigned)
    for attempt in (1, 2, 3):
        of = [e["type"] for e in never if e.get("attempt") == attempt and e["type"].startswith("sla.")]
        assert sorted(of) == [
            "sla.breached",
            "sla.escalated",
            "sla.escalated",
            "sla.escalated",
            "sla.warning",
        ]
    contact = [e for e in never if e["type"] == "sla.escalated" and e["action"] == "notify_contact"]
    assert {e["contact"] for e in contact} == {"team-lead-t"}
    reassigned = [e for e in never if e["type"] == "lead.reassigned"]
    assert [e["attempt"] for e in reassigned] == [2, 3, 4]
    queued = [e for e in never if e["type"] == "lead.queued"]
    assert [(e["queue"], e["attempt"]) for e in queued] == [("sla-exhausted", 4)]
    for e in never:
        if e["type"] == "sla.breached":
            late = datetime.fromisoformat(e["detected_at"]) - datetime.fromisoformat(e["due_at"])
            assert timedelta(0) <= late <= timedelta(seconds=1)

    quick = {e["type"]: e for e in seen["quick"]}
    assert set(quick) == {"lead.assigned", "sla.met"}, "touched in time: no warning, breach or escalation"
    assert quick["sla.met"]["within_sla"] is True
    assert quick["sla.met"]["business_response_seconds"] == pytest.approx(
        quick["sla.met"]["response_seconds"]
    )

    late_met = [e for e in seen["late"] if e["type"] == "sla.met"]
    assert len(late_met) == 1
    assert late_met[0]["late_arrival"] is True
    assert late_met[0]["within_sla"] is True
    assert sum(e["type"] == "sla.breached" for e in seen["late"]) == 1, "the breach stands"
    assert not any(e["type"] == "lead.reassigned" for e in seen["late"]), "a touched lead is not reassigned"
