"""`leadrouter demo`: realistic synthetic traffic and a live view of what happens.

Publishes leads at a chosen rate; for each one decides a fate: touched fast
(well within the SLA), touched late (after the deadline: a breach, then a late
first touch), or never touched (a breach). Reads `assignments` and `sla-events`
and prints each assignment, touch and breach, plus a summary every 5 seconds.
Synthetic contact details are sent (the pipeline must cope with PII) but never
printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from router.kafka import client_options, make_producer
from router.settings import Settings

COUNTRIES = ["US", "US", "US", "CA", "GB", "DE", "FR", "NL", "AU", "JP", "SG", "BR", "ZA", "IN"]
SOURCES = ["web-form", "webinar", "ads", "content", "referral"]
FATES = [("fast", 0.55), ("late", 0.15), ("never", 0.30)]


@dataclass(frozen=True)
class DemoOptions:
    rate: float
    duration: float
    sla_seconds: float
    workers: bool
    seed: int
    router_port: int = 9464
    monitor_port: int = 9465
    log_dir: Path = Path(".leadrouter-dev/logs")


def lead_event(rng: random.Random, n: int, run: str) -> tuple[str, bytes]:
    lead_id = f"demo-{run}-{n:06d}"
    event = {
        "event_id": f"{lead_id}-created",
        "type": "lead.created",
        "occurred_at": datetime.now(UTC).isoformat(),
        "lead": {
            "id": lead_id,
            "email": f"buyer{n}@example.com",
            "phone": f"+1555{n:07d}",
            "first_name": "Pat",
            "last_name": f"Buyer{n}",
            "company": {
                "name": f"Company {n}",
                "domain": f"company{n}.example",
                "employees": rng.choice([12, 80, 450, 2500, 12000]),
                "industry": "software",
            },
            "country": rng.choice(COUNTRIES),
            "source": rng.choice(SOURCES),
            "product": rng.choice(["crm", "analytics"]),
        },
    }
    return lead_id, orjson.dumps(event)


def activity_event(lead_id: str, rep_id: str, channel: str) -> bytes:
    return orjson.dumps(
        {
            "event_id": f"{lead_id}-touch-{channel}",
            "type": "activity",
            "occurred_at": datetime.now(UTC).isoformat(),
            "lead_id": lead_id,
            "rep_id": rep_id,
            "channel": channel,
            "direction": "outbound",
        }
    )


async def _start_workers(options: DemoOptions) -> list[asyncio.subprocess.Process]:
    """A router and a monitor process, logging (JSON) to files in `options.log_dir`."""
    env = dict(
        os.environ,
        LEADROUTER_SLA__FIRST_TOUCH_SECONDS=str(options.sla_seconds),
        LEADROUTER_LOG__FORMAT="json",
    )
    options.log_dir.mkdir(parents=True, exist_ok=True)
    procs = []
    for role, port in (("router", options.router_port), ("monitor", options.monitor_port)):
        with (options.log_dir / f"{role}.log").open("ab") as log:
            cmd = [sys.executable, "-m", "router.cli", "worker", "--role", role, "--http-port", str(port)]
            procs.append(await asyncio.create_subprocess_exec(*cmd, env=env, stdout=log, stderr=log))
        print(f"worker {role}: pid {procs[-1].pid}, metrics http://127.0.0.1:{port}/metrics, "
              f"log {options.log_dir / (role + '.log')}")  # fmt: skip
    print(f"first-touch SLA for this demo: {options.sla_seconds:g}s (production default: 300s)")
    return procs


class Demo:
    def __init__(self, settings: Settings, options: DemoOptions) -> None:
        self.settings = settings
        self.options = options
        self.rng = random.Random(options.seed)
        self.run_id = f"{int(time.time()) % 100000:05d}"
        self.fates: dict[str, str] = {}
        self.counts: Counter[str] = Counter()
        self.touch_tasks: set[asyncio.Task[None]] = set()

    def say(self, text: str) -> None:
        print(f"{datetime.now(UTC).strftime('%H:%M:%S')} {text}", flush=True)

    async def produce(self, producer: AIOKafkaProducer, stop: asyncio.Event) -> None:
        topic = self.settings.topics.name(self.settings.topics.leads)
        n = 0
        while not stop.is_set():
            lead_id, value = lead_event(self.rng, n, self.run_id)
            fate = self.rng.choices([f for f, _ in FATES], [w for _, w in FATES])[0]
            self.fates[lead_id] = fate
            await producer.send_and_wait(topic, value, key=lead_id.encode())
            self.counts["published"] += 1
            n += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1 / self.options.rate)

    def schedule_touch(self, producer: AIOKafkaProducer, lead_id: str, rep_id: str) -> None:
        fate = self.fates.get(lead_id)
        if fate is None or fate == "never":
            return
        sla = self.options.sla_seconds
        delay = sla * self.rng.uniform(0.1, 0.6) if fate == "fast" else sla * self.rng.uniform(1.2, 1.5)
        task = asyncio.create_task(self._touch_later(producer, lead_id, rep_id, delay))
        self.touch_tasks.add(task)
        task.add_done_callback(self.touch_tasks.discard)

    async def _touch_later(self, producer: AIOKafkaProducer, lead_id: str, rep_id: str, delay: float) -> None:
        await asyncio.sleep(delay)
        topic = self.settings.topics.name(self.settings.topics.activities)
        channel = self.rng.choice(["call", "email", "sms"])
        await producer.send_and_wait(topic, activity_event(lead_id, rep_id, channel), key=lead_id.encode())

    async def watch(self, producer: AIOKafkaProducer, stop: asyncio.Event) -> None:
        topics = self.settings.topics
        consumer = AIOKafkaConsumer(
            topics.name(topics.assignments),
            topics.name(topics.sla_events),
            **client_options(self.settings.kafka),
            auto_offset_reset="latest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=200)
                for records in batches.values():
                    for record in records:
                        self.show(producer, orjson.loads(record.value or b"{}"))
        finally:
            await consumer.stop()

    def show(self, producer: AIOKafkaProducer, event: dict[str, object]) -> None:
        lead = str(event.get("lead_id"))
        if lead not in self.fates:
            return  # another run's traffic
        kind = event.get("type")
        self.counts[str(kind)] += 1
        if kind == "lead.assigned":
            rep = str(event["rep_id"])
            self.say(f"ASSIGNED  {lead} -> {rep} (team {event['team']}, route {event['route']})")
            self.schedule_touch(producer, lead, rep)
        elif kind == "lead.queued":
            self.say(f"QUEUED    {lead} on {event['queue']}: {event['reason']}")
        elif kind == "sla.met":
            verdict = "within SLA" if event["within_sla"] else "LATE"
            seconds = float(str(event["response_seconds"]))
            self.say(f"TOUCHED   {lead} by {event['rep_id']} after {seconds:.1f}s ({verdict})")
        elif kind == "sla.breached":
            who = f"{event['rep_id']} (team {event['team']})"
            self.say(f"BREACHED  {lead}: {who} missed the deadline {event['due_at']}")

    async def summary(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=5)
            c = self.counts
            self.say(
                f"SUMMARY   published {c['published']}, assigned {c['lead.assigned']}, "
                f"queued {c['lead.queued']}, touched {c['sla.met']}, breached {c['sla.breached']}"
            )


async def run_demo(settings: Settings, options: DemoOptions, stop: asyncio.Event) -> int:
    demo = Demo(settings, options)
    workers = await _start_workers(options) if options.workers else []
    producer = make_producer(settings.kafka)
    await producer.start()
    if options.duration > 0:
        asyncio.get_running_loop().call_later(options.duration, stop.set)
    tasks = [asyncio.create_task(t) for t in (demo.watch(producer, stop), demo.summary(stop))]
    await asyncio.sleep(1.0)  # let the watcher join before the first lead
    tasks.append(asyncio.create_task(demo.produce(producer, stop)))
    try:
        await stop.wait()
    finally:
        stop.set()
        for task in [*tasks, *demo.touch_tasks]:
            task.cancel()
        await asyncio.gather(*tasks, *demo.touch_tasks, return_exceptions=True)
        await producer.stop()
        for proc in workers:
            proc.terminate()
        for proc in workers:
            await proc.wait()
    c = demo.counts
    print(
        f"demo: published {c['published']}, assigned {c['lead.assigned']}, touched {c['sla.met']}, "
        f"breached {c['sla.breached']}"
    )
    return 0
