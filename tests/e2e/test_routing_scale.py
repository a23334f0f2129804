"""Two router processes share the routing state: fair, within capacity, explained."""

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
from redis.asyncio import Redis

from router.devinfra import ensure_topics
from router.settings import TopicSettings
from tests.workers import workers_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

N = 2000
RULEBOOK = """
version: scale-1
territories:
  - {id: na, countries: [US, CA]}
  - {id: emea, countries: [DE, FR, GB]}
reps:
  - {id: na-1, teams: [na], capacity: 2000}
  - {id: na-2, teams: [na], capacity: 2000}
  - {id: na-3, teams: [na], capacity: 2000}
  - {id: na-4, teams: [na], capacity: 2000}
  - {id: eu-1, teams: [eu], capacity: 2000, weight: 1}
  - {id: eu-2, teams: [eu], capacity: 2000, weight: 3}
  - {id: tiny-1, teams: [tiny], capacity: 5}
  - {id: tiny-2, teams: [tiny], capacity: 5}
  - {id: owner-1, teams: [na], capacity: 2000}
teams:
  - {id: na, members: [na-1, na-2, na-3, na-4]}
  - {id: eu, strategy: weighted}
  - {id: tiny}
named_accounts:
  - {id: acme, domains: [acme.example], owner: {rep: owner-1}}
routes:
  - {id: named, when: {named_account: true}, assign: {owner: true}}
  - {id: na, when: {territory: na}, assign: {team: na}}
  - {id: eu, when: {territory: emea}, assign: {team: eu}}
  - {id: small, when: {country: IS}, assign: {team: tiny}}
"""


def lead_event(i: int) -> tuple[bytes, bytes]:
    lead_id = f"s-{i:05d}"
    if i % 50 == 0:
        country, domain = "US", "eu.acme.example"  # a named account, by subdomain
    elif i % 40 == 1:
        country, domain = "IS", "small.example"
    else:
        country, domain = ["US", "CA", "DE", "FR", "GB"][i % 5], f"c{i}.example"
    event = {"event_id": f"{lead_id}-c", "type": "lead.created", "occurred_at": datetime.now(UTC).isoformat(),
             "lead": {"id": lead_id, "country": country, "email": f"p{i}@{domain}",
                      "company": {"domain": domain}}}  # fmt: skip
    return lead_id.encode(), orjson.dumps(event)


async def sample_open_counts(redis_url: str, prefix: str, stop: asyncio.Event, peaks: Counter[str]) -> None:
    client = Redis.from_url(redis_url)
    try:
        while not stop.is_set():
            for rep, count in (await client.hgetall(f"{prefix}:open")).items():
                peaks[rep.decode()] = max(peaks[rep.decode()], int(count))
            await asyncio.sleep(0.05)
    finally:
        await client.aclose()


async def test_two_routers_route_fairly_within_capacity(
    kafka_bootstrap: str, redis_url: str, topic_prefix: str, redis_prefix: str, tmp_path: Path
) -> None:
    """2,000 leads through two routers: round robin within one lead per rep, weighted
    shares by weight, never above capacity (sampled while running), named accounts to
    their owner, the excess queued, and every lead's decision explained."""
    topics = TopicSettings(prefix=topic_prefix, partitions=4)
    await ensure_topics(kafka_bootstrap, topics.all_topics())
    workers = workers_for(
        kafka_bootstrap, redis_url, topic_prefix, redis_prefix, tmp_path, RULEBOOK, topics__partitions="4"
    )
    workers.start("router")
    workers.start("router")
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=5)
    out = AIOKafkaConsumer(topics.name("assignments"), topics.name("routing-decisions"),
                           bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest")  # fmt: skip
    await producer.start()
    await out.start()
    stop, peaks = asyncio.Event(), Counter[str]()
    sampler = asyncio.create_task(sample_open_counts(redis_url, redis_prefix, stop, peaks))
    seen: dict[str, list[dict[str, Any]]] = defaultdict(list)
    try:
        workers.wait_ready()
        for i in range(N):
            key, value = lead_event(i)
            await producer.send(topics.name("leads"), value, key=key)
        await producer.flush()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and sum(len(v) for v in seen.values()) < 2 * N:
            for records in (await out.getmany(timeout_ms=300)).values():
                for r in records:
                    event = orjson.loads(r.value)
                    seen[event["type"]].append(event)
    finally:
        stop.set()
        await sampler
        await out.stop()
        await producer.stop()
        workers.stop_all()

    outputs = seen["lead.assigned"] + seen["lead.queued"]
    assert len(outputs) == N
    assert len({e["lead_id"] for e in outputs}) == N, "each lead decided once"
    decisions = {e["lead_id"]: e for e in seen["routing.decision"]}
    assert set(decisions) == {e["lead_id"] for e in outputs}, "every lead explained"
    assert all(e["explanation"] for e in outputs)

    per_route: dict[str, Counter[str]] = defaultdict(Counter)
    for e in seen["lead.assigned"]:
        per_route[e["route"]][e["rep_id"]] += 1
    na = per_route["na"]
    assert set(na) == {"na-1", "na-2", "na-3", "na-4"}
    assert max(na.values()) - min(na.values()) <= 1, f"round robin spread {na}"
    eu = per_route["eu"]
    assert abs(eu["eu-2"] - 3 * eu["eu-1"]) <= 3, f"weighted 1:3 shares {eu}"
    assert set(per_route["named"]) == {"owner-1"}
    assert sum(per_route["named"].values()) == N // 50, "named accounts always to their owner"
    small = [i for i in range(N) if i % 40 == 1 and i % 50 != 0]
    assert sum(per_route["small"].values()) == 10, "two reps of capacity 5"
    assert len(seen["lead.queued"]) == len(small) - 10
    assert all(
        decisions[e["lead_id"]]["steps"][-1]["outcome"] == "nobody_available" for e in seen["lead.queued"]
    )
    capacities = {"tiny-1": 5, "tiny-2": 5}
    assert all(peaks[rep] <= cap for rep, cap in capacities.items()), f"peaks {dict(peaks)}"
