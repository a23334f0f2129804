"""No contact details leak: everything a run exposes is scanned for the e-mail
addresses, phone numbers and names its leads carried.

A router and a monitor handle leads with contact details (some queued, some touched,
some breached, warned, escalated and reassigned, some updated with new contact
details) and malformed events built around contact details. Then every place the
run exposed is read: both workers' logs, their /metrics, the assignments,
routing-decisions and sla-events topics, the dead-letter topics' headers, the
webhook alerts, and the output of `explain` (stored and hypothetical),
`dlq inspect` and `report`. None may hold any of the details.

Dead-lettered record values are the original input, kept for replay, so they hold
the details by design (docs/events.md): they serve as the positive control that the
scan finds what it looks for.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import pytest_asyncio
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from router.devinfra import ensure_topics
from router.settings import TopicSettings
from tests.http_receiver import serving
from tests.workers import Workers, workers_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

N_LEADS = 24
RULEBOOK = """
version: pii-1
reps:
  - {id: amer-1, teams: [amer], capacity: 100}
  - {id: amer-2, teams: [amer], capacity: 100}
  - {id: solo-1, teams: [solo], capacity: 1}
teams:
  - {id: amer, escalation_contact: "#amer-leads"}
  - {id: solo, escalation_contact: "#solo-leads"}
routes:
  - {id: iceland, when: {country: [IS]}, assign: {team: solo}, fallback: {queue: iceland-queue}}
  - {id: rest, assign: {team: amer}}
sla_policies:
  - id: fast
    first_touch: 2s
    warn_before: 1s
    escalation:
      - {after: 0s, action: notify_contact}
      - {after: 1s, action: reassign}
    max_attempts: 2
"""


@dataclass(frozen=True)
class Contact:
    email: str
    phone: str
    first_name: str
    last_name: str

    def needles(self) -> set[str]:
        """Every form the details could leak in, lower-cased (the scan ignores case)."""
        local = self.email.split("@")[0]
        digits = "".join(c for c in self.phone if c.isdigit())
        return {s.lower() for s in (self.email, local, self.phone, digits, self.first_name, self.last_name)}


def contact(i: int, version: int = 1) -> Contact:
    return Contact(
        email=f"ysolde.brackenridge{i:02d}v{version}@pii-scan.example",
        phone=f"+44 20 7946 {version}{i:03d}",
        first_name=f"Ysolde{i:02d}v{version}",
        last_name=f"Brackenridge{i:02d}v{version}",
    )


def lead_id(i: int) -> str:
    return f"pii-{i:03d}"


def lead_event(i: int, kind: str = "lead.created", version: int = 1) -> bytes:
    who = contact(i, version)
    country = "IS" if i % 6 == 0 else "US"
    now = datetime.now(UTC).isoformat()
    return orjson.dumps({
        "event_id": f"{lead_id(i)}-{kind}-{version}", "type": kind, "occurred_at": now,
        "lead": {"id": lead_id(i), "email": who.email, "phone": who.phone, "first_name": who.first_name,
                 "last_name": who.last_name, "country": country, "company": {"domain": "pii-scan.example"}},
    })  # fmt: skip


def malformed() -> list[tuple[bytes, bytes, Contact]]:
    """Invalid lead events whose invalid part is a contact detail."""
    who = [contact(90 + n) for n in range(5)]
    now = datetime.now(UTC).isoformat()

    def event(i: int, lead: dict[str, Any], kind: str = "lead.created") -> bytes:
        return orjson.dumps({"event_id": f"bad-{i}", "type": kind, "occurred_at": now, "lead": lead})

    return [
        # a phone number sent as a list, a name far too long, an email as the type
        (
            b"bad-0",
            event(0, {"id": "bad-0", "phone": [who[0].phone], "first_name": who[0].first_name}),
            who[0],
        ),
        (
            b"bad-1",
            event(1, {"id": "bad-1", "last_name": who[1].last_name * 30, "email": who[1].email}),
            who[1],
        ),
        (b"bad-2", event(2, {"id": "bad-2", "email": who[2].email}, kind=who[2].email), who[2]),
        # the key is the email address instead of the lead id
        (
            who[3].email.encode(),
            event(3, {"id": "bad-3", "email": who[3].email, "phone": who[3].phone}),
            who[3],
        ),
        # cut short in the middle of the contact details
        (
            b"bad-4",
            event(4, {"id": "bad-4", "email": who[4].email, "last_name": who[4].last_name})[:-30],
            who[4],
        ),
    ]


@dataclass
class Seen:
    events: list[dict[str, Any]] = field(default_factory=list)
    raw: dict[str, list[bytes]] = field(
        default_factory=lambda: {"assignments": [], "decisions": [], "sla": []}
    )
    dlq_headers: list[bytes] = field(default_factory=list)
    dlq_values: list[bytes] = field(default_factory=list)


class Receiver:
    """A webhook endpoint that keeps every body it is sent."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.read())
        return web.Response(status=200)


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    got = Receiver()
    async with serving("/hook", got.handle) as got.port:
        yield got


async def collect(
    out: AIOKafkaConsumer, topics: TopicSettings, seen: Seen, quiet: float, most: float
) -> None:
    """Read until nothing new arrived for `quiet` seconds (at most `most` seconds)."""
    kinds = {topics.name("assignments"): "assignments", topics.name("routing-decisions"): "decisions",
             topics.name("sla-events"): "sla"}  # fmt: skip
    deadline = time.monotonic() + most
    last_new = time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - last_new < quiet:
        for records in (await out.getmany(timeout_ms=200)).values():
            last_new = time.monotonic()
            for rec in records:
                if rec.topic.endswith(".dlq"):
                    seen.dlq_headers += [k.encode() + b"=" + v for k, v in rec.headers]
                    seen.dlq_values += [rec.key or b"", rec.value or b""]
                else:
                    seen.raw[kinds[rec.topic]].append(rec.value)
                    seen.events.append(orjson.loads(rec.value))


async def touch_half(producer: AIOKafkaProducer, topics: TopicSettings, seen: Seen) -> set[str]:
    """The assigned rep calls every other assigned lead at once."""
    touched = set()
    for event in [e for e in seen.events if e["type"] == "lead.assigned"]:
        if int(event["lead_id"].split("-")[1]) % 2 == 1 and event["lead_id"] not in touched:
            touched.add(event["lead_id"])
            activity = {"event_id": f"{event['lead_id']}-touch", "type": "activity",
                        "occurred_at": datetime.now(UTC).isoformat(), "lead_id": event["lead_id"],
                        "rep_id": event["rep_id"], "channel": "call", "direction": "outbound"}  # fmt: skip
            await producer.send(
                topics.name("activities"), orjson.dumps(activity), key=event["lead_id"].encode()
            )
    await producer.flush()
    return touched


async def cli(workers: Workers, *args: str, stdin_file: Path | None = None) -> str:
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "router.cli", *args],
        env=workers.env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"leadrouter {' '.join(args)}: {done.stderr}"
    return done.stdout + done.stderr


def leaks(text: str, needles: set[str]) -> list[str]:
    low = text.lower()
    return sorted(n for n in needles if n in low)


async def test_no_contact_detail_is_exposed_anywhere(
    kafka_bootstrap: str, redis_url: str, topic_prefix: str, redis_prefix: str, tmp_path: Path,
    receiver: Receiver,
) -> None:  # fmt: skip
    """Leads' e-mail addresses, phone numbers (as sent and as digits) and first and last
    names, including those of updated and malformed leads, appear in no worker log, no
    /metrics, no assignments, routing-decisions or sla-events record, no dead-letter
    header, no webhook alert and no output of explain, dlq inspect or report; only the
    dead-lettered values themselves hold them."""
    topics = TopicSettings(prefix=topic_prefix, partitions=2)
    await ensure_topics(kafka_bootstrap, topics.all_topics())
    hook = {"*": {"url": f"http://127.0.0.1:{receiver.port}/hook", "format": "json",
                  "kinds": ["sla.warning", "sla.breached", "sla.escalated"]}}  # fmt: skip
    workers = workers_for(
        kafka_bootstrap, redis_url, topic_prefix, redis_prefix, tmp_path, RULEBOOK,
        webhooks__endpoints=json.dumps(hook), webhooks__backoff_initial_seconds="0.2",
        log__level="DEBUG",  # the most a worker can be made to log
    )  # fmt: skip
    workers.start("router")
    workers.start("monitor")
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    watched = ["assignments", "routing-decisions", "sla-events"]
    dlqs = [topics.dlq(topics.name(t)) for t in ("leads", "activities", "reps", "assignments", "sla-events")]
    out = AIOKafkaConsumer(*[topics.name(t) for t in watched], *dlqs, bootstrap_servers=kafka_bootstrap,
                           auto_offset_reset="earliest", enable_auto_commit=False)  # fmt: skip
    await producer.start()
    await out.start()
    seen = Seen()
    bad = malformed()
    try:
        workers.wait_ready()
        await wait_for_watermark(workers)
        for i in range(N_LEADS):
            await producer.send(topics.name("leads"), lead_event(i), key=lead_id(i).encode())
        for key, value, _ in bad:
            await producer.send(topics.name("leads"), value, key=key)
        for i in range(0, N_LEADS, 4):  # new contact details for routed leads
            await producer.send(
                topics.name("leads"), lead_event(i, "lead.updated", 2), key=lead_id(i).encode()
            )
        await producer.flush()
        await collect(out, topics, seen, quiet=1.0, most=20)
        touched = await touch_half(producer, topics, seen)
        await collect(out, topics, seen, quiet=5.0, most=60)
        metrics = {f"{w.role} /metrics": w.get("/metrics")[1] for w in workers.started}
    finally:
        await out.stop()
        await producer.stop()
        workers.stop_all()

    kinds = Counter(e["type"] for e in seen.events)
    for kind in ("lead.assigned", "lead.queued", "routing.decision", "sla.met", "sla.warning", "sla.breached",
                 "sla.escalated", "lead.reassigned"):  # fmt: skip
        assert kinds[kind], f"the run produced no {kind} to scan ({dict(kinds)})"
    assert touched
    assert len(seen.dlq_values) >= 2 * len(bad), "every malformed lead was dead-lettered"
    assert receiver.bodies, "webhook alerts were sent"

    queued = next(e["lead_id"] for e in seen.events if e["type"] == "lead.queued")
    reassigned = next(e["lead_id"] for e in seen.events if e["type"] == "lead.reassigned")
    lead_file = tmp_path / "lead.json"
    lead_file.write_bytes(lead_event(1))
    outputs = {
        "explain (assigned)": await cli(workers, "explain", lead_id(1)),
        "explain (queued)": await cli(workers, "explain", queued),
        "explain (reassigned)": await cli(workers, "explain", reassigned),
        "explain --lead": await cli(workers, "explain", "--lead", str(lead_file)),
        "dlq inspect": await cli(workers, "dlq", "inspect", "leads"),
        "dlq inspect --json": await cli(workers, "dlq", "inspect", "leads", "--json"),
        "report": await cli(workers, "report", "--since", "1h"),
    }
    exposed = {
        **{f"{w.role} log": w.log() for w in workers.started},
        **metrics,
        **{f"{name} topic": b"\n".join(values).decode() for name, values in seen.raw.items()},
        "dead-letter headers": b"\n".join(seen.dlq_headers).decode(errors="replace"),
        "webhook alerts": b"\n".join(receiver.bodies).decode(),
        **outputs,
    }
    needles = set().union(*(contact(i).needles() | contact(i, 2).needles() for i in range(N_LEADS)),
                          *(who.needles() for _, _, who in bad))  # fmt: skip
    found = {where: hits for where, text in exposed.items() if (hits := leaks(text, needles))}
    assert not found, f"contact details exposed: {found}"
    for where, text in exposed.items():
        assert text.strip(), f"nothing read from {where}: the scan would be vacuous"
    # Positive control: the same scan finds the details where they are kept on purpose.
    kept = b"\n".join(seen.dlq_values).decode(errors="replace")
    assert all(leaks(kept, who.needles()) for _, _, who in bad)
    print(f"PII scan: {len(needles)} needles, {len(exposed)} places, {sum(map(len, exposed.values())):,} "
          f"characters, {dict(kinds)}, {len(receiver.bodies)} webhook calls: nothing found")  # fmt: skip


async def wait_for_watermark(workers: Workers) -> None:
    """The monitor knows the group's watermark, so breaches can be declared on time."""
    monitor = next(w for w in workers.started if w.role == "monitor")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if 0 <= monitor.metric("leadrouter_sla_watermark_lag_seconds") < 1.0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the monitor did not get a fresh watermark")
