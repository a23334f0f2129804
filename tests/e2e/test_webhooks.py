"""Webhook alerts end to end: a failing receiver, a monitor killed mid-delivery, a
burst digest, a Slack payload; and auto-away after missed SLAs."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
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
from tests.waiting import until
from tests.workers import workers_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

RULEBOOK = """
version: hooks-1
reps:
  - {id: a1, teams: [a], capacity: 50}
  - {id: a2, teams: [a], capacity: 50}
  - {id: b1, teams: [b], capacity: 50}
  - {id: c1, teams: [c], capacity: 50}
teams: [{id: a}, {id: b}, {id: c}]
routes:
  - {id: to-b, when: {country: DE}, assign: {team: b}}
  - {id: to-c, when: {country: FR}, assign: {team: c}}
  - {id: to-a, assign: {team: a}}
sla_policies:
  - {id: fast, first_touch: 1s}
"""


class Receiver:
    """A webhook receiver: records every call; `fail_first` calls per path answer 500."""

    def __init__(self, fail_first: dict[str, int]) -> None:
        self.calls: dict[str, list[tuple[int, dict[str, Any], dict[str, str]]]] = defaultdict(list)
        self._fail_first = fail_first
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        path = request.path.strip("/")
        body = await request.json()
        failing = len(self.calls[path]) < self._fail_first.get(path, 0)
        status = 500 if failing else 200
        self.calls[path].append((status, body, dict(request.headers)))
        return web.Response(status=status)

    def accepted(self, path: str) -> list[dict[str, Any]]:
        return [body for status, body, _ in self.calls[path] if status == 200]


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    got = Receiver({"a": 2})
    async with serving("/{team}", got.handle) as got.port:
        yield got


def lead(lead_id: str, country: str) -> bytes:
    created = datetime.now(UTC).isoformat()
    return orjson.dumps({"event_id": f"{lead_id}-c", "type": "lead.created", "occurred_at": created,
                         "lead": {"id": lead_id, "country": country}})  # fmt: skip


async def touch_now(producer: AIOKafkaProducer, topic: str, lead_id: str, rep: str) -> None:
    touch = {"event_id": f"{lead_id}-t", "type": "activity", "lead_id": lead_id, "rep_id": rep,
             "occurred_at": datetime.now(UTC).isoformat(), "channel": "call"}  # fmt: skip
    await producer.send(topic, orjson.dumps(touch), key=lead_id.encode())


async def test_every_alert_reaches_a_recovering_receiver_and_a_burst_is_one_digest(
    kafka_bootstrap: str,
    redis_url: str,
    topic_prefix: str,
    redis_prefix: str,
    tmp_path: Path,
    receiver: Receiver,
) -> None:
    """Team a's receiver fails its first two calls and its monitor is killed with SIGKILL
    while alerts wait: a new monitor delivers every breach, each alert id accepted once.
    Team b (threshold 3) gets 12 breaches at once as 3 alerts and one digest of the other 9.
    Team c's endpoint is Slack: one `text` per alert, no contact details."""
    topics = TopicSettings(prefix=topic_prefix, partitions=2)
    await ensure_topics(kafka_bootstrap, topics.all_topics())
    base = f"http://127.0.0.1:{receiver.port}"
    endpoints = {
        "a": {"url": f"{base}/a", "format": "json", "bearer_token": "s3cret-token"},
        "b": {"url": f"{base}/b", "format": "json"},
        "c": {"url": f"{base}/c", "format": "slack", "kinds": ["sla.breached"]},
    }
    workers = workers_for(
        kafka_bootstrap, redis_url, topic_prefix, redis_prefix, tmp_path, RULEBOOK,
        webhooks__endpoints=json.dumps(endpoints), webhooks__burst_threshold="3",
        webhooks__burst_window_seconds="4", webhooks__backoff_initial_seconds="1",
        webhooks__backoff_max_seconds="2", webhooks__lease_seconds="3",
    )  # fmt: skip
    workers.start("router")
    monitor = workers.start("monitor")
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    sla = AIOKafkaConsumer(topics.name("sla-events"), bootstrap_servers=kafka_bootstrap,
                           auto_offset_reset="earliest")  # fmt: skip
    await producer.start()
    await sla.start()
    breaches: dict[str, set[str]] = defaultdict(set)
    try:
        workers.wait_ready()
        sends = [("a", f"A-{i}", "US") for i in range(3)] + [("b", f"B-{i}", "DE") for i in range(12)]
        sends += [("c", "C-0", "FR")]
        for _, lead_id, country in sends:
            await producer.send(topics.name("leads"), lead(lead_id, country), key=lead_id.encode())
        await producer.flush()
        # Team a's two failures happen while this monitor delivers; then it dies.
        assert await until(lambda: len(receiver.calls["a"]) >= 2, 30), dict(receiver.calls)
        monitor.proc.kill()
        monitor.proc.wait()
        workers.started.remove(monitor)
        workers.start("monitor")
        workers.wait_ready()

        def complete() -> bool:
            a_ids = {b["alert_id"] for b in receiver.accepted("a")}
            b_ids = {b.get("alert_id") for b in receiver.accepted("b")} | {
                i for d in receiver.accepted("b") for i in d.get("alert_ids", [])
            }
            return len(a_ids) == 3 and len(b_ids - {None}) == 12 and len(receiver.accepted("c")) == 1

        assert await until(complete, 60), {k: len(v) for k, v in receiver.calls.items()}
        while records := await sla.getmany(timeout_ms=1000):
            for batch in records.values():
                for r in batch:
                    event = orjson.loads(r.value)
                    if event["type"] == "sla.breached":
                        breaches[event["team"]].add(event["alert_id"])
        await asyncio.sleep(2)  # time for copies, if any were to come
    finally:
        await sla.stop()
        await producer.stop()
        workers.stop_all()

    a_calls = receiver.calls["a"]
    assert [status for status, _, _ in a_calls[:2]] == [500, 500]
    accepted_a = [body["alert_id"] for body in receiver.accepted("a")]
    assert set(accepted_a) == breaches["a"], "every breach of team a, delivered"
    assert Counter(accepted_a).most_common(1)[0][1] == 1, f"none accepted twice: {accepted_a}"
    assert all(h["Authorization"] == "Bearer s3cret-token" for _, _, h in a_calls)
    assert all(h["X-Leadrouter-Alert-Id"] == body["alert_id"] for _, body, h in a_calls)
    assert all(body["event"]["type"] == "sla.breached" for body in receiver.accepted("a"))

    singles = [b for b in receiver.accepted("b") if b["kind"] == "alert"]
    digests = [b for b in receiver.accepted("b") if b["kind"] == "digest"]
    assert len(singles) == 3
    assert len(digests) == 1, digests
    assert digests[0]["count"] == 9
    assert {s["alert_id"] for s in singles} | set(digests[0]["alert_ids"]) == breaches["b"]

    (slack,) = receiver.accepted("c")
    assert set(slack) == {"text"}
    assert "SLA breached: lead C-0 (rep c1, team c, attempt 1)" in slack["text"]
    logs = "".join(w.log() for w in [*workers.started, monitor])
    assert "s3cret-token" not in logs
    assert f"127.0.0.1:{receiver.port}" not in logs, "webhook URLs are secrets: never logged"
    final = workers.started[-1]
    assert final.proc.returncode == 0


AWAY_RULEBOOK = """
version: away-1
reps:
  - {id: slow, teams: [t], capacity: 50}
  - {id: quick, teams: [t], capacity: 50}
teams: [{id: t}]
routes: [{id: all, assign: {team: t, strategy: round_robin}}]
sla_policies:
  - {id: fast, first_touch: 1s}
"""


async def test_a_rep_who_misses_slas_in_a_row_is_set_away(
    kafka_bootstrap: str, redis_url: str, topic_prefix: str, redis_prefix: str, tmp_path: Path
) -> None:
    """With auto-away after 2 misses, a rep who lets two leads breach gets one `rep.status`
    away event on the reps topic, with the reason; routers then give them no leads, while
    the rep who touches in time stays available."""
    topics = TopicSettings(prefix=topic_prefix, partitions=2)
    await ensure_topics(kafka_bootstrap, topics.all_topics())
    workers = workers_for(kafka_bootstrap, redis_url, topic_prefix, redis_prefix, tmp_path, AWAY_RULEBOOK,
                          sla__auto_away_after_misses="2")  # fmt: skip
    workers.start("router")
    workers.start("monitor")
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    out = AIOKafkaConsumer(topics.name("assignments"), topics.name("reps"), bootstrap_servers=kafka_bootstrap,
                           auto_offset_reset="earliest")  # fmt: skip
    await producer.start()
    await out.start()
    assigned: list[dict[str, Any]] = []
    statuses: list[dict[str, Any]] = []

    async def read(seconds: float) -> None:
        for batch in (await out.getmany(timeout_ms=int(seconds * 1000))).values():
            for r in batch:
                event = orjson.loads(r.value)
                if event["type"] == "lead.assigned":
                    assigned.append(event)
                    if event["rep_id"] == "quick":
                        await touch_now(producer, topics.name("activities"), event["lead_id"], "quick")
                elif event["type"] == "rep.status":
                    statuses.append(event)

    try:
        workers.wait_ready()
        for i in range(4):  # round robin: two each
            await producer.send_and_wait(topics.name("leads"), lead(f"L-{i}", "US"), key=f"L-{i}".encode())
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and not statuses:
            await read(0.5)
        assert statuses, "the slow rep was set away"
        await asyncio.sleep(1)  # the router applies the status
        for i in range(4, 8):
            await producer.send_and_wait(topics.name("leads"), lead(f"L-{i}", "US"), key=f"L-{i}".encode())
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(assigned) < 8:
            await read(0.5)
        await read(2)
    finally:
        await out.stop()
        await producer.stop()
        workers.stop_all()

    assert len(statuses) == 1, statuses
    (away,) = statuses
    assert (away["rep_id"], away["status"]) == ("slow", "away")
    assert away["reason"] == "missed 2 first-touch SLAs in a row"
    first = [e["rep_id"] for e in assigned if int(e["lead_id"][2:]) < 4]
    later = [e["rep_id"] for e in assigned if int(e["lead_id"][2:]) >= 4]
    assert sorted(first) == ["quick", "quick", "slow", "slow"]
    assert later == ["quick"] * 4, "no lead for a rep who is away"
