"""Three monitors share the SLA timers; one is killed mid-run and restarted."""

from __future__ import annotations

import asyncio
import signal
import statistics
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

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

N = 1000
RULEBOOK = """
version: crash-1
reps: [{id: r1, teams: [t], capacity: 5000}, {id: r2, teams: [t], capacity: 5000},
       {id: r3, teams: [t], capacity: 5000}]
teams: [{id: t}]
routes: [{id: all, assign: {team: t}}]
sla_policies: [{id: short, first_touch: 4s, warn_before: 2s}]
"""


def lead(i: int) -> bytes:
    now = datetime.now(UTC).isoformat()
    return orjson.dumps(
        {"event_id": f"c-{i}", "type": "lead.created", "occurred_at": now, "lead": {"id": f"c-{i:04d}"}}
    )


class Run:
    """The test's traffic: leads at a steady rate, touches 1.5 s after assignment."""

    def __init__(self, topics: TopicSettings, producer: AIOKafkaProducer) -> None:
        self.topics = topics
        self.producer = producer
        self.events: list[dict[str, Any]] = []
        self.breached: set[str] = set()  # copies share a lead: count leads, not records
        self.touches: list[tuple[float, str, str]] = []  # (when, lead, rep)
        self.killed_at = 0.0

    async def send_leads(self) -> None:
        for i in range(N):
            await self.producer.send(self.topics.name("leads"), lead(i), key=f"c-{i:04d}".encode())
            await asyncio.sleep(8 / N)

    def read(self, records: list[Any]) -> None:
        for r in records:
            event = orjson.loads(r.value)
            self.events.append(event)
            if event["type"] == "sla.breached":
                self.breached.add(event["lead_id"])
            if event["type"] == "lead.assigned" and touched(int(event["lead_id"][2:])):
                self.touches.append((time.monotonic() + 1.5, event["lead_id"], event["rep_id"]))

    async def send_due_touches(self) -> None:
        while self.touches and self.touches[0][0] <= time.monotonic():
            _, lead_id, rep = self.touches.pop(0)
            activity = {"event_id": f"{lead_id}-t", "type": "activity", "lead_id": lead_id, "rep_id": rep,
                        "occurred_at": datetime.now(UTC).isoformat(), "channel": "email"}  # fmt: skip
            await self.producer.send(
                self.topics.name("activities"), orjson.dumps(activity), key=lead_id.encode()
            )


def lateness_of(breaches: list[dict[str, Any]]) -> list[float]:
    return [
        (datetime.fromisoformat(e["detected_at"]) - datetime.fromisoformat(e["due_at"])).total_seconds()
        for e in breaches
    ]


def touched(i: int) -> bool:
    return i % 3 == 0


async def test_killing_a_monitor_loses_and_duplicates_no_alert(
    kafka_bootstrap: str, redis_url: str, topic_prefix: str, redis_prefix: str, tmp_path: Path
) -> None:
    """1,000 leads over 8 s with a 4 s SLA, a third touched 1.5 s after assignment, so
    touches keep arriving on every partition; a monitor is SIGKILLed while alerts fire,
    and restarted. Every untouched lead still gets exactly one warning and one breach
    (copies from a monitor killed between publish and ack share the alert id), touched
    leads none, and every breach is published within 1 s of its deadline: the other
    monitors apply the dead one's partitions themselves instead of waiting seconds for
    Kafka to notice it is gone and rebalance."""
    topics = TopicSettings(prefix=topic_prefix, partitions=6)
    await ensure_topics(kafka_bootstrap, topics.all_topics())
    workers = workers_for(
        kafka_bootstrap,
        redis_url,
        topic_prefix,
        redis_prefix,
        tmp_path,
        RULEBOOK,
        # An alert the killed monitor had claimed goes out again after grace + lease +
        # a sweep, and its restart takes most of a core for a second on this 2-core
        # machine: a 0.1 s grace (default 0.25 s, a wait for touches still in
        # producers' hands; the test's touches are sent seconds early) and a 0.3 s
        # lease (default 0.5 s) keep that under 1 s. At the default grace, runs here
        # had their latest breach 0.44-0.97 s late.
        sla__claim_lease_seconds="0.3",
        sla__grace_seconds="0.1",
    )
    workers.start("router")
    monitors = [workers.start("monitor") for _ in range(3)]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=5)
    out = AIOKafkaConsumer(topics.name("assignments"), topics.name("sla-events"),
                           bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest")  # fmt: skip
    await producer.start()
    await out.start()
    run = Run(topics, producer)
    try:
        workers.wait_ready()
        sender = asyncio.create_task(run.send_leads())
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and len(run.breached) < N - N // 3 - (N % 3 != 0):
            for records in (await out.getmany(timeout_ms=100)).values():
                run.read(records)
            await run.send_due_touches()
            if not run.killed_at and len(run.breached) >= 50:
                monitors[0].proc.send_signal(signal.SIGKILL)
                monitors[0].proc.wait()
                run.killed_at = time.time()
                monitors[0] = workers.start("monitor")
        await sender
        await asyncio.sleep(3)
        for records in (await out.getmany(timeout_ms=1000)).values():
            run.read(records)
    finally:
        await out.stop()
        await producer.stop()
        workers.stop_all()
    events, killed_at = run.events, run.killed_at

    assert killed_at, "the monitor was killed while alerts were firing"
    untouched = {f"c-{i:04d}" for i in range(N) if not touched(i)}
    # A monitor killed after publishing but before acknowledging leaves a copy: the
    # lease expires and the alert goes out again with the same alert id, which is
    # what consumers deduplicate on. Distinct alerts must be exactly one per lead.
    ids: dict[str, dict[str, set[str]]] = {k: {} for k in ("sla.warning", "sla.breached", "sla.met")}
    copies = 0
    for e in events:
        if e["type"] in ids:
            seen = ids[e["type"]].setdefault(e["lead_id"], set())
            copies += e["event_id"] in seen
            seen.add(e["event_id"])
    missing, extra = untouched - set(ids["sla.breached"]), set(ids["sla.breached"]) - untouched
    assert not missing, f"untouched leads without a breach: {sorted(missing)[:5]}"
    assert not extra, f"touched leads with a breach: {sorted(extra)[:5]}"
    assert all(len(v) == 1 for v in ids["sla.breached"].values()), "one breach per lead: copies share the id"
    assert set(ids["sla.warning"]) == untouched
    assert all(len(v) == 1 for v in ids["sla.warning"].values()), "one warning per lead"
    assert len(ids["sla.met"]) == N - len(untouched)
    print(f"copies of alerts (same alert id, deduplicated downstream): {copies}")
    breaches = [e for e in events if e["type"] == "sla.breached"]
    lateness = sorted(lateness_of(breaches))
    p50, p99 = statistics.median(lateness), lateness[int(len(lateness) * 0.99) - 1]
    print(f"breach lateness, {len(lateness)} breaches: p50 {p50:.3f}s p99 {p99:.3f}s max {lateness[-1]:.3f}s")
    during = [x for e, x in zip(breaches, lateness_of(breaches), strict=True)
              if killed_at <= datetime.fromisoformat(e["due_at"]).timestamp() <= killed_at + 8]  # fmt: skip
    print(f"breaches due in the 8 s after the kill: {len(during)}, latest {max(during):.3f}s late")
    worst: dict[int, float] = {}
    for e, x in zip(breaches, lateness_of(breaches), strict=True):
        second = int(datetime.fromisoformat(e["due_at"]).timestamp() - killed_at)
        worst[second] = max(worst.get(second, 0.0), x)
    print("worst lateness by second from the kill:", {k: round(v, 2) for k, v in sorted(worst.items())})
    assert during, "breaches fell due while the monitor was dead and the group rebalanced"
    assert lateness[-1] <= 1.0, "every breach within 1 s of its deadline, a monitor's death included"
