"""The whole pipeline on a real broker and redis-server, through the worker CLI.

One router and two monitors (so two sweepers share the timers) handle 200 leads:
some touched in time, some touched before they were even assigned, some never;
with duplicates, wrong-rep touches and malformed events mixed in.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from router.devinfra import ensure_topics
from router.settings import TopicSettings
from tests.workers import Workers, workers_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

SLA_SECONDS = 3.0
N_LEADS = 200
RULEBOOK = """
version: e2e-1
reps:
  - {id: amer-1, teams: [amer], capacity: 500}
  - {id: amer-2, teams: [amer], capacity: 500}
  - {id: amer-3, teams: [amer], capacity: 500}
  - {id: emea-1, teams: [emea], capacity: 500}
  - {id: emea-2, teams: [emea], capacity: 500}
  - {id: solo-1, teams: [solo], capacity: 500}
teams: [{id: amer}, {id: emea}, {id: solo}]
routes:
  - {id: na, when: {country: [US, CA]}, assign: {team: amer}}
  - {id: eu, when: {country: [DE, FR, GB]}, assign: {team: emea}}
  - {id: iceland, when: {country: [IS]}, assign: {team: solo}}
  - {id: rest, assign: {team: emea}}
"""
MALFORMED: list[tuple[bytes | None, bytes, str]] = [
    (b"bad-1", b'{"event_id": "x1", "type": "lead.created", "occurred_at": ', "invalid_json"),
    (b"bad-2", b'{"event_id": "x2", "type": "lead.created", "occurred_at": "2026-11-23T10:00:00Z", '
               b'"lead": {}}', "schema_violation"),
    (b"bad-3", b'{"event_id": "x3", "type": "lead.created", "occurred_at": "2026-11-23T10:00:00", '
               b'"lead": {"id": "bad-3"}}', "schema_violation"),
    (b"bad-4", b'{"event_id": "x4", "type": "lead.deleted", "occurred_at": "2026-11-23T10:00:00Z", '
               b'"lead": {"id": "bad-4"}}', "unknown_type"),
    (b"other", b'{"event_id": "x5", "type": "lead.created", "occurred_at": "2026-11-23T10:00:00Z", '
               b'"lead": {"id": "bad-5"}}', "bad_key"),
]  # fmt: skip


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def lead_bytes(i: int, kind: str = "lead.created") -> tuple[str, bytes]:
    lead_id = f"e2e-{i:03d}"
    country = "IS" if i % 10 == 0 else ["US", "CA", "DE", "FR", "GB", "BR"][i % 6]
    event = {
        "event_id": f"{lead_id}-{kind}",
        "type": kind,
        "occurred_at": now_iso(),
        "lead": {"id": lead_id, "email": f"person{i}@pii.example", "phone": f"+1555{i:07d}",
                 "first_name": "Alex", "last_name": f"Sample{i}", "country": country},
    }  # fmt: skip
    return lead_id, orjson.dumps(event)


def activity_bytes(lead_id: str, rep_id: str, tag: str, occurred_at: str) -> bytes:
    event = {"event_id": f"{lead_id}-{tag}", "type": "activity", "occurred_at": occurred_at,
             "lead_id": lead_id, "rep_id": rep_id, "channel": "call", "direction": "outbound"}  # fmt: skip
    return orjson.dumps(event)


def fate(i: int) -> str:
    if i % 10 == 0:
        return "pretouch"  # touched before the router assigned it
    return "touch" if i % 10 <= 6 else "never"


class Run:
    """What the test published and what came out of the pipeline."""

    def __init__(self, producer: AIOKafkaProducer, topics: TopicSettings) -> None:
        self.producer = producer
        self.leads_topic = topics.name("leads")
        self.acts_topic = topics.name("activities")
        self.sent_touch: dict[str, str] = {}  # lead -> occurred_at of the touch that counts
        self.seen: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.dlq: list[dict[str, bytes]] = []

    async def publish_inputs(self) -> None:
        # Touches that beat their assignment (solo team: the rep is known in advance).
        for i in range(N_LEADS):
            if fate(i) == "pretouch":
                lead_id = f"e2e-{i:03d}"
                self.sent_touch[lead_id] = now_iso()
                await self._activity(lead_id, "solo-1", "pre", self.sent_touch[lead_id])
        for key, value, _ in MALFORMED:
            await self.producer.send(self.leads_topic, value, key=key)
        for i in range(N_LEADS):
            lead_id, value = lead_bytes(i)
            await self.producer.send(self.leads_topic, value, key=lead_id.encode())
            if i % 10 == 3:  # a redelivered copy of the same event
                await self.producer.send(self.leads_topic, value, key=lead_id.encode())
            if i % 10 == 4:  # an update of an already-routed lead
                updated = lead_bytes(i, "lead.updated")[1]
                await self.producer.send(self.leads_topic, updated, key=lead_id.encode())
        await self.producer.flush()

    async def _activity(self, lead_id: str, rep: str, tag: str, occurred_at: str) -> None:
        value = activity_bytes(lead_id, rep, tag, occurred_at)
        await self.producer.send(self.acts_topic, value, key=lead_id.encode())

    async def on_event(self, event: dict[str, Any]) -> None:
        self.seen[event["type"]].append(event)
        lead_id = event["lead_id"]
        i = int(lead_id.split("-")[1])
        if event["type"] != "lead.assigned" or fate(i) != "touch":
            return
        if i % 10 == 1:  # someone else calls first: not the assigned rep's touch
            await self._activity(lead_id, "not-the-rep", "wrong", now_iso())
        self.sent_touch[lead_id] = now_iso()
        await self._activity(lead_id, event["rep_id"], "touch", self.sent_touch[lead_id])
        if i % 10 == 2:  # a redelivered activity
            await self._activity(lead_id, event["rep_id"], "touch", self.sent_touch[lead_id])

    async def collect(self, out: AIOKafkaConsumer, until: Counter[str], seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for records in (await out.getmany(timeout_ms=200)).values():
                for rec in records:
                    if rec.topic.endswith(".dlq"):
                        self.dlq.append(dict(rec.headers))
                    else:
                        await self.on_event(orjson.loads(rec.value))
            got = Counter({k: len(v) for k, v in self.seen.items()})
            if all(got[k] >= n for k, n in until.items()) and len(self.dlq) >= len(MALFORMED):
                return


def start_workers(
    kafka_bootstrap: str, redis_url: str, topic_prefix: str, redis_prefix: str, tmp_path: Path
) -> Workers:
    workers = workers_for(
        kafka_bootstrap,
        redis_url,
        topic_prefix,
        redis_prefix,
        tmp_path,
        RULEBOOK,
        sla__first_touch_seconds=str(SLA_SECONDS),
    )
    workers.start("router")
    workers.start("monitor")
    workers.start("monitor")
    return workers


def metric_figures(workers: Workers) -> dict[str, float]:
    router, monitors = workers.started[0], workers.started[1:]
    return {
        "routed": router.metric("leadrouter_leads_routed_total"),
        "dead_lettered": router.metric("leadrouter_dead_letters_total", topic="leads"),
        "met": sum(m.metric("leadrouter_sla_met_total") for m in monitors),
        "breached": sum(m.metric("leadrouter_sla_breached_total") for m in monitors),
        "first_touches": sum(m.metric("leadrouter_first_touch_seconds_count") for m in monitors),
    }


async def test_pipeline_end_to_end(
    kafka_bootstrap: str, redis_url: str, topic_prefix: str, redis_prefix: str, tmp_path: Path
) -> None:
    """Every valid lead is assigned once; touched leads get one sla.met with the right
    response time, untouched ones one sla.breached within 1 s of the deadline; malformed
    events are dead-lettered with reasons; /metrics agrees; no PII is logged."""
    topics = TopicSettings(prefix=topic_prefix, partitions=3)
    await ensure_topics(kafka_bootstrap, topics.all_topics())
    workers = start_workers(kafka_bootstrap, redis_url, topic_prefix, redis_prefix, tmp_path)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    out = AIOKafkaConsumer(
        topics.name("assignments"), topics.name("sla-events"), topics.dlq(topics.name("leads")),
        bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest", enable_auto_commit=False,
    )  # fmt: skip
    await producer.start()
    await out.start()
    run = Run(producer, topics)
    valid = {f"e2e-{i:03d}" for i in range(N_LEADS)}
    touched = {f"e2e-{i:03d}" for i in range(N_LEADS) if fate(i) != "never"}
    untouched = valid - touched
    try:
        workers.wait_ready()
        await _wait_for_monitor_watermarks(workers)
        await run.publish_inputs()
        expected = Counter(
            {"lead.assigned": N_LEADS, "sla.met": len(touched), "sla.breached": len(untouched)}
        )
        await run.collect(out, expected, seconds=60)
        await run.collect(out, Counter({"never": 1}), seconds=2)  # duplicates would arrive by now
        figures = metric_figures(workers)
    finally:
        await out.stop()
        await producer.stop()
        workers.stop_all()

    by_lead = check_assignments(run, valid)
    check_met(run, touched, by_lead)
    check_breached(run, untouched)
    check_dead_letters(run, topics)
    assert figures == {
        "routed": N_LEADS,
        "dead_lettered": len(MALFORMED),
        "met": len(touched),
        "breached": len(untouched),
        "first_touches": len(touched),
    }, "the /metrics counters match the events"
    logs = "".join(w.log() for w in workers.started)
    assert logs.count('"event":"lead.routed"') == N_LEADS
    assert logs.count('"event":"sla.breached"') == len(untouched)
    leaked = [i for i in range(N_LEADS) if f"person{i}@pii.example" in logs or f"+1555{i:07d}" in logs]
    assert not leaked, "no email or phone number in the logs"


def check_assignments(run: Run, valid: set[str]) -> dict[str, dict[str, Any]]:
    assigned = Counter(e["lead_id"] for e in run.seen["lead.assigned"])
    assert set(assigned) == valid, "every valid lead is assigned"
    assert set(assigned.values()) == {1}, "exactly one lead.assigned per lead"
    assert not run.seen["lead.queued"]
    return {e["lead_id"]: e for e in run.seen["lead.assigned"]}


def check_met(run: Run, touched: set[str], by_lead: dict[str, dict[str, Any]]) -> None:
    met = Counter(e["lead_id"] for e in run.seen["sla.met"])
    assert set(met) == touched, "every touched lead has an sla.met"
    assert set(met.values()) == {1}, "exactly one sla.met per touched lead"
    for event in run.seen["sla.met"]:
        lead_id = event["lead_id"]
        assert event["rep_id"] == by_lead[lead_id]["rep_id"]
        touched_at = datetime.fromisoformat(event["touched_at"])
        sent = datetime.fromisoformat(run.sent_touch[lead_id])
        assert abs((touched_at - sent).total_seconds()) < 0.001, "the touch time is the activity's"
        assigned_at = datetime.fromisoformat(event["assigned_at"])
        expected_seconds = max(0.0, (touched_at - assigned_at).total_seconds())
        assert event["response_seconds"] == pytest.approx(expected_seconds, abs=0.002)
        assert event["within_sla"] is True
    pre = [e for e in run.seen["sla.met"] if int(e["lead_id"].split("-")[1]) % 10 == 0]
    assert len(pre) == N_LEADS // 10, "touches that beat the assignment count"


def check_breached(run: Run, untouched: set[str]) -> None:
    breached = Counter(e["lead_id"] for e in run.seen["sla.breached"])
    assert set(breached) == untouched, "every untouched lead breaches, no touched one does"
    assert set(breached.values()) == {1}, "exactly one breach per untouched lead"
    lateness = [
        (datetime.fromisoformat(e["detected_at"]) - datetime.fromisoformat(e["due_at"])).total_seconds()
        for e in run.seen["sla.breached"]
    ]
    assert min(lateness) >= 0, "never before the deadline"
    print(f"breach detection lateness: max {max(lateness):.3f}s over {len(lateness)} breaches")
    assert max(lateness) <= 1.0, f"detected within 1 s of the deadline (max {max(lateness):.3f}s)"


def check_dead_letters(run: Run, topics: TopicSettings) -> None:
    reasons = sorted(h["dlq.reason"].decode() for h in run.dlq)
    assert reasons == sorted(r for _, _, r in MALFORMED)
    for headers in run.dlq:
        assert headers["dlq.topic"].decode() == topics.name("leads")
        assert headers["dlq.detail"]
        assert headers["dlq.offset"].decode().isdigit()


async def _wait_for_monitor_watermarks(workers: Workers) -> None:
    """Every monitor knows the group's watermark, so breaches can be declared on time."""
    deadline = time.monotonic() + 30
    monitors = [w for w in workers.started if w.role == "monitor"]
    while time.monotonic() < deadline:
        if all(0 <= m.metric("leadrouter_sla_watermark_lag_seconds") < 1.0 for m in monitors):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("monitors did not get a fresh watermark")
