"""The moving parts of the chaos run: worker supervision, input traffic, output ledger.

`Supervisor` plays the role of Kubernetes for two routers and two monitors: it
SIGKILLs one on request and restarts it at once, and restarts (with a short
backoff) any worker that exits on its own. `Traffic` publishes leads at a steady
rate and answers each `lead.assigned` like a sales floor would: the assigned rep
touches it in time, late, never, or someone else touches it. It records when each
touch happened and when the broker acknowledged it, which is what decides whether
a breach is owed (see `invariants.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import random
import signal
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from redis.asyncio import Redis

from router.settings import TopicSettings
from tests.http_receiver import serving
from tests.workers import WorkerProcess, Workers

Fate = Literal["prompt", "late", "never", "wrong_rep"]
SLA_SECONDS = 5.0
WARN_BEFORE_SECONDS = 2.0
# Countries pick the team: amer (US, CA), emea (DE, FR, GB, BR) and tiny (IS), a
# two-rep team with little capacity, so leads queue for it and are assigned from
# the retry queue (through the Redis outbox) as touches free its reps.
TINY_CAPACITY = 6
# At most this many of the tiny team's leads stay untouched, so the team never
# fills up for good and every waiting lead is eventually assigned.
TINY_UNTOUCHED = 4
# Brazil's leads get a second chance: a rep who leaves one untouched loses it to
# the other emea rep a second after the deadline (attempt 2, through the queue
# drainer and the Redis outbox); untouched again, it goes to the exhausted queue.
SECOND_CHANCE = "BR"
MAX_ATTEMPTS = 2
RULEBOOK = f"""
version: chaos-1
reps:
  - {{id: a1, teams: [amer], capacity: 1000}}
  - {{id: a2, teams: [amer], capacity: 1000}}
  - {{id: a3, teams: [amer], capacity: 1000}}
  - {{id: e1, teams: [emea], capacity: 1000}}
  - {{id: e2, teams: [emea], capacity: 1000}}
  - {{id: t1, teams: [tiny], capacity: {TINY_CAPACITY}}}
  - {{id: t2, teams: [tiny], capacity: {TINY_CAPACITY}}}
teams: [{{id: amer, strategy: weighted}}, {{id: emea, strategy: least_loaded}}, {{id: tiny}}]
routes:
  - {{id: na, when: {{country: [US, CA]}}, assign: {{team: amer}}}}
  - {{id: eu, when: {{country: [DE, FR, GB, BR]}}, assign: {{team: emea}}}}
  - {{id: small, when: {{country: [IS]}}, assign: {{team: tiny}}}}
sla_policies:
  - id: second-chance
    routes: [eu]
    when: {{country: [{SECOND_CHANCE}]}}
    first_touch: {SLA_SECONDS:g}s
    warn_before: {WARN_BEFORE_SECONDS:g}s
    escalation: [{{after: 1s, action: reassign}}]
    max_attempts: {MAX_ATTEMPTS}
    exhausted_queue: exhausted
  - {{id: chaos, first_touch: {SLA_SECONDS:g}s, warn_before: {WARN_BEFORE_SECONDS:g}s}}
"""
CAPACITY = {**dict.fromkeys(["a1", "a2", "a3", "e1", "e2"], 1000), "t1": TINY_CAPACITY, "t2": TINY_CAPACITY}


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def ts(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


# --------------------------------------------------------------------------- workers


@dataclass
class Exit:
    role: str
    code: int | None
    at: float
    log_tail: str


@dataclass
class Supervisor:
    workers: Workers
    roles: tuple[str, ...] = ("router", "router", "monitor", "monitor")
    slots: list[WorkerProcess] = field(default_factory=list)
    kills: list[tuple[float, str]] = field(default_factory=list)
    exits: list[Exit] = field(default_factory=list)
    _restart_after: dict[int, float] = field(default_factory=dict)

    def start_all(self) -> None:
        # Log lines reach the file at once: a SIGKILLed worker keeps its last words.
        self.workers.env["PYTHONUNBUFFERED"] = "1"
        self.slots = [self.workers.start(role) for role in self.roles]

    def kill(self, rng: random.Random) -> str:
        """SIGKILL a random worker and start its replacement at once."""
        i = rng.randrange(len(self.slots))
        worker = self.slots[i]
        if worker.proc.poll() is None:
            worker.proc.send_signal(signal.SIGKILL)
            worker.proc.wait()
        self.kills.append((time.time(), worker.role))
        self._restart_after.pop(i, None)
        self.slots[i] = self.workers.start(worker.role)
        return worker.role

    def restart_exited(self) -> None:
        """Restart workers that exited on their own, at most once a second each."""
        for i, worker in enumerate(self.slots):
            code = worker.proc.poll()
            if code is None:
                continue
            now = time.monotonic()
            if i not in self._restart_after:
                tail = "\n".join(worker.log().splitlines()[-6:])
                self.exits.append(Exit(worker.role, code, time.time(), tail))
                self._restart_after[i] = now + 1.0
            elif now >= self._restart_after[i]:
                del self._restart_after[i]
                self.slots[i] = self.workers.start(worker.role)

    def live(self) -> list[WorkerProcess]:
        return [w for w in self.slots if w.proc.poll() is None]


def readiness(worker: WorkerProcess) -> int | None:
    """/readyz status, or None while the process does not answer (starting, dying)."""
    try:
        return worker.get("/readyz")[0]
    except OSError:
        return None


# --------------------------------------------------------------------------- inputs


@dataclass
class Touch:
    lead_id: str
    rep_id: str
    occurred_at: float  # epoch seconds, as in the activity
    acked_at: float | None = None  # when the broker acknowledged it


@dataclass
class Plan:
    lead_id: str
    country: str
    fate: Fate
    delay: float  # seconds after assigned_at the touch is made
    duplicate_lead: bool
    duplicate_touch: bool
    seed: int = 0

    def attempt(self, attempt: int) -> tuple[Fate, float]:
        """The fate of an attempt: a reassigned lead's new rep decides anew."""
        if attempt == 1:
            return self.fate, self.delay
        return second_chance_fate(random.Random(f"{self.seed}:{self.lead_id}:{attempt}"))


def plan_for(lead_id: str, seed: int) -> Plan:
    rng = random.Random(f"{seed}:{lead_id}")
    country = rng.choices(["US", "CA", "DE", "FR", "GB", "BR", "IS"], [25, 20, 15, 12, 12, 8, 8])[0]
    if country == "IS":
        # Promptly touched (but see TINY_UNTOUCHED): an untouched lead holds its
        # rep's capacity for good (nothing reassigns here).
        fate: Fate = "never" if rng.random() < 0.05 else "prompt"
        delay = rng.uniform(0.2, 2.0)
    else:
        fate = rng.choices(["prompt", "late", "never", "wrong_rep"], [60, 10, 20, 10])[0]  # type: ignore[assignment]
        if fate == "late":
            delay = rng.uniform(SLA_SECONDS + 1.0, SLA_SECONDS + 3.0)
        else:
            # Well before the deadline (at most 3.5 s of a 5 s SLA).
            delay = rng.uniform(0.1, SLA_SECONDS - 1.5)
    if country == SECOND_CHANCE:
        # Touched in time or not at all: a late touch would race the reassignment.
        fate, delay = second_chance_fate(rng)
    return Plan(lead_id, country, fate, delay, rng.random() < 0.05, rng.random() < 0.1, seed)


def second_chance_fate(rng: random.Random) -> tuple[Fate, float]:
    fate: Fate = rng.choices(["prompt", "never", "wrong_rep"], [50, 40, 10])[0]  # type: ignore[assignment]
    return fate, rng.uniform(0.1, SLA_SECONDS - 1.5)


MALFORMED = [
    (f"bad-{i}".encode(), b'{"event_id": "x", "type": "lead.created", "occurred_at": ') for i in range(5)
] + [
    (f"bad-{i}".encode(), orjson.dumps({"event_id": "x", "type": "lead.deleted", "lead": {"id": f"bad-{i}"}}))
    for i in range(5, 10)
]


class Traffic:
    """Publishes leads and the activities that answer their assignments."""

    def __init__(self, producer: AIOKafkaProducer, topics: TopicSettings, seed: int) -> None:
        self.producer = producer
        self.topics = topics
        self.seed = seed
        self.plans: dict[str, Plan] = {}
        self.touches: dict[str, list[Touch]] = defaultdict(list)
        self.leads_sent = 0
        self.lead_copies_sent = 0
        self.activities_sent = 0
        self.send_failures = 0
        self.tiny_untouched = 0
        self._queue: list[tuple[float, int, str, str, bool]] = []
        self._seq = 0
        self._answered: set[tuple[str, int]] = set()
        self._acks: set[asyncio.Task[None]] = set()

    async def _send(self, topic: str, key: bytes, value: bytes, touch: Touch | None = None) -> None:
        """Send until the broker acknowledges (a broker restart fails some sends)."""
        while True:
            try:
                fut = await self.producer.send(topic, value, key=key)
                await fut
            except KafkaError:
                self.send_failures += 1
                await asyncio.sleep(0.5)
                continue
            if touch is not None:
                touch.acked_at = time.time()
            return

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._acks.add(task)
        task.add_done_callback(self._acks.discard)

    async def publish_leads(self, count: int, seconds: float) -> None:
        leads = self.topics.name("leads")
        started = time.monotonic()
        for i in range(count):
            if i == count // 3:
                for key, value in MALFORMED:
                    self._spawn(self._send(leads, key, value))
            lead_id = f"chaos-{i:05d}"
            plan = plan_for(lead_id, self.seed)
            if plan.country == "IS" and plan.fate == "never":
                if self.tiny_untouched >= TINY_UNTOUCHED:
                    plan.fate = "prompt"
                self.tiny_untouched += plan.fate == "never"
            self.plans[lead_id] = plan
            event = {
                "event_id": f"{lead_id}-created", "type": "lead.created", "occurred_at": now_iso(),
                "lead": {"id": lead_id, "country": plan.country, "email": f"p{i}@chaos.example"},
            }  # fmt: skip
            value = orjson.dumps(event)
            self._spawn(self._send(leads, lead_id.encode(), value))
            self.leads_sent += 1
            if plan.duplicate_lead:
                self._spawn(self._send(leads, lead_id.encode(), value))
                self.lead_copies_sent += 1
            ahead = started + (i + 1) * seconds / count - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead)

    def on_assigned(self, event: dict[str, Any]) -> None:
        """Schedule the answer to an assignment (once per lead and attempt)."""
        key = (event["lead_id"], int(event.get("attempt", 1)))
        plan = self.plans.get(event["lead_id"])
        if plan is None or key in self._answered:
            return
        self._answered.add(key)
        fate, delay = plan.attempt(key[1])
        at = ts(event["assigned_at"]) + delay
        if fate in ("prompt", "late"):
            self._schedule(at, plan.lead_id, event["rep_id"], plan.duplicate_touch)
        elif fate == "wrong_rep":
            self._schedule(at, plan.lead_id, "intruder", False)

    def _schedule(self, at: float, lead_id: str, rep: str, duplicate: bool) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (at, self._seq, lead_id, rep, duplicate))

    async def send_due_touches(self, stop: asyncio.Event) -> None:
        """Make each scheduled touch at its time (or as soon as we learn of it)."""
        activities = self.topics.name("activities")
        while not stop.is_set() or self._queue:
            now = time.time()
            while self._queue and self._queue[0][0] <= now:
                _, seq, lead_id, rep, duplicate = heapq.heappop(self._queue)
                touch = Touch(lead_id, rep, time.time())
                self.touches[lead_id].append(touch)
                occurred = datetime.fromtimestamp(touch.occurred_at, UTC).isoformat()
                value = orjson.dumps({
                    "event_id": f"{lead_id}-touch-{seq}", "type": "activity", "occurred_at": occurred,
                    "lead_id": lead_id, "rep_id": rep, "channel": "call", "direction": "outbound",
                })  # fmt: skip
                self._spawn(self._send(activities, lead_id.encode(), value, touch))
                self.activities_sent += 1
                if duplicate:  # a redelivered copy: same event id and time
                    self._spawn(self._send(activities, lead_id.encode(), value))
                    self.activities_sent += 1
            await asyncio.sleep(0.02)

    @property
    def idle(self) -> bool:
        return not self._queue and not self._acks


# --------------------------------------------------------------------------- outputs


@dataclass
class Ledger:
    """Output events, by type; live during the run, or read in full afterwards."""

    events: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    dead_letters: list[tuple[bytes | None, dict[str, bytes]]] = field(default_factory=list)

    def add(self, topic: str, key: bytes | None, value: bytes, headers: Any) -> dict[str, Any] | None:
        if topic.endswith(".dlq"):
            self.dead_letters.append((key, dict(headers)))
            return None
        event: dict[str, Any] = orjson.loads(value)
        self.events[event["type"]].append(event)
        return event

    def leads_with(self, kind: str) -> set[str]:
        return {e["lead_id"] for e in self.events[kind]}


async def follow(
    bootstrap: str, topics: TopicSettings, traffic: Traffic, ledger: Ledger, stop: asyncio.Event
) -> None:
    """Read the outputs as they come, answering assignments with touches."""
    consumer = AIOKafkaConsumer(
        topics.name("assignments"), topics.name("sla-events"), topics.dlq(topics.name("leads")),
        bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False,
    )  # fmt: skip
    await consumer.start()
    try:
        while not stop.is_set():
            try:
                batches = await consumer.getmany(timeout_ms=200)
            except KafkaError:
                await asyncio.sleep(0.5)
                continue
            for records in batches.values():
                for r in records:
                    event = ledger.add(r.topic, r.key, r.value, r.headers)
                    if event is not None and event["type"] == "lead.assigned":
                        traffic.on_assigned(event)
    finally:
        await consumer.stop()


async def read_all(bootstrap: str, topics: TopicSettings) -> Ledger:
    """Every record of the output topics, from the beginning to their current end."""
    ledger = Ledger()
    names = [topics.name("assignments"), topics.name("sla-events"), topics.dlq(topics.name("leads"))]
    counts = topics.all_topics()
    partitions = [TopicPartition(t, p) for t in names for p in range(counts[t])]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            pending = [tp for tp in partitions if await consumer.position(tp) < ends[tp]]
            if not pending:
                break
            for records in (await consumer.getmany(*pending, timeout_ms=500)).values():
                for r in records:
                    ledger.add(r.topic, r.key, r.value, r.headers)
        else:
            raise AssertionError("could not read the output topics to their end")
    finally:
        await consumer.stop()
    return ledger


# --------------------------------------------------------------------------- Redis


@dataclass
class OpenSampler:
    """Samples every rep's open-lead count in Redis, to catch a count over capacity."""

    url: str
    key: str
    max_open: dict[str, int] = field(default_factory=dict)
    samples: int = 0
    misses: int = 0

    async def run(self, stop: asyncio.Event, interval: float = 0.25) -> None:
        client = Redis.from_url(self.url, socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            while not stop.is_set():
                try:
                    raw = await client.hgetall(self.key)
                except Exception:  # Redis is down on purpose now and then
                    self.misses += 1
                else:
                    self.samples += 1
                    for rep, count in raw.items():
                        name = rep.decode()
                        self.max_open[name] = max(self.max_open.get(name, 0), int(count))
                await asyncio.sleep(interval)
        finally:
            await client.aclose()


class WebhookReceiver:
    """The teams' webhook endpoint: records every alert id it accepted, and refuses a
    share of calls (HTTP 500) so deliveries are retried through the chaos too."""

    def __init__(self, seed: int, fail_share: float = 0.2) -> None:
        self.delivered: set[str] = set()
        self.calls = self.refused = self.digests = 0
        self._rng = random.Random(seed)
        self._fail_share = fail_share
        self._server = contextlib.AsyncExitStack()
        self.url = ""

    async def start(self) -> None:
        port = await self._server.enter_async_context(serving("/hook", self._handle))
        self.url = f"http://127.0.0.1:{port}/hook"

    async def stop(self) -> None:
        await self._server.aclose()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls += 1
        if self._rng.random() < self._fail_share:
            self.refused += 1
            return web.Response(status=500)
        if body["kind"] == "digest":
            self.digests += 1
            self.delivered.update(body["alert_ids"])
        else:
            self.delivered.add(body["alert_id"])
        return web.Response(status=200)
