"""Batched routing (router/batch.py) on a real redis-server: the same decisions and the
same Redis state as routing lead by lead, and a conflict retries without double work."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import yaml
from redis.asyncio import Redis

from router.assignments import AssignmentStore, Commit, CommitResult
from router.batch import Pending, Routed, route_new
from router.bench.synthetic import leads, rulebook
from router.codec import decode_lead_event
from router.placement import place
from router.redis_keys import RedisKeys
from router.rulebook_source import Rules
from rules.decide import Assignment

pytestmark = pytest.mark.integration

# A Monday mid-morning in New York: some reps in hours, some out; capacities of 10-50
# and daily caps of 40 fill up, so leads are queued too.
NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
RULES = Rules.load(
    yaml.safe_dump(rulebook(reps=40, routes=30, accounts=200)), "synthetic", timedelta(minutes=5)
)
COUNT = 600


def _events(tag: str) -> list[Pending]:
    out = []
    for i, (lead, _) in enumerate(leads(COUNT, accounts=200)):
        raw = orjson.dumps({
            "event_id": f"{tag}-{i}", "type": "lead.created", "occurred_at": NOW.isoformat(),
            "lead": lead.model_dump(mode="json", exclude_none=True),
        })  # fmt: skip
        out.append(Pending(i, decode_lead_event(lead.id.encode(), raw), raw))
    return out


async def _state(redis: Redis, keys: RedisKeys) -> dict[str, Any]:
    pools = {team: await redis.hgetall(keys.pool(team)) for team in RULES.compiled.teams}
    return {
        "pools": pools,
        "open": await redis.hgetall(keys.open),
        "last": await redis.hgetall(keys.last_assigned),
        "daily": await redis.hgetall(keys.daily("2026-11-23")),
        "retry": await redis.zrange(keys.retry, 0, -1),
        "untouched": await redis.zcard(keys.untouched),
    }


async def _cleanup(redis: Redis, prefix: str) -> None:
    async for key in redis.scan_iter(match=f"{prefix}*"):
        await redis.unlink(key)


async def test_batches_decide_and_commit_exactly_as_one_by_one(redis: Redis, redis_prefix: str) -> None:
    """600 leads routed one by one and in batches of 128 end with the same rep for every
    lead and the same pools, open and daily counts, last-assigned times and retry queue."""
    one_keys, batch_keys = RedisKeys(redis_prefix + "one"), RedisKeys(redis_prefix + "batch")
    one, batched = AssignmentStore(redis, one_keys, 3600), AssignmentStore(redis, batch_keys, 3600)
    try:
        singles: dict[str, str] = {}
        for p in _events("one"):
            _, state = await one.read(p.event.lead.id, RULES.compiled, NOW)
            placed = await place(one, RULES, p.event, p.raw, state, NOW)
            assert placed.result.status == "ok"
            d = placed.decision
            singles[p.event.lead.id] = d.rep_id if isinstance(d, Assignment) else f"queued:{d.queue}"
        routed: dict[object, Routed] = {}
        events = _events("batch")
        for start in range(0, COUNT, 128):
            await route_new(batched, RULES, events[start : start + 128], lambda: NOW, 16, routed)
        assert len(routed) == COUNT
        batches = {
            r.event.lead.id: r.placed.decision.rep_id
            if isinstance(r.placed.decision, Assignment)
            else f"queued:{r.placed.decision.queue}"
            for r in routed.values()
        }
        assert batches == singles
        assert sum(v.startswith("queued") for v in singles.values()) > 0, "capacity and caps were reached"
        assert await _state(redis, batch_keys) == await _state(redis, one_keys)
    finally:
        await _cleanup(redis, redis_prefix)


async def test_a_conflict_stops_the_batch_and_its_leads_are_decided_again(
    redis: Redis, redis_prefix: str
) -> None:
    """Another router moving a pool between the read and the commit: the commits stop at
    the first conflict, the rest are read and decided again, and each lead is recorded
    once with every pool's version equal to the assignments it made."""
    keys = RedisKeys(redis_prefix)
    store = AssignmentStore(redis, keys, 3600)
    calls: list[int] = []
    real = store.commit_many

    async def interfering(commits: list[Commit]) -> list[CommitResult]:
        calls.append(len(commits))
        if len(calls) == 1:  # another router assigns from the first lead's pool meanwhile
            first = commits[0].decision
            assert isinstance(first, Assignment)
            assert first.pool is not None
            await redis.hincrby(keys.pool(first.pool), "version", 1)
        results = await real(commits)
        if len(calls) == 1:
            assert [r.status for r in results] == ["conflict"]
        return results

    store.commit_many = interfering  # type: ignore[method-assign]
    events = [p for p in _events("c") if p.event.lead.country in ("US", "CA", "MX")][:50]
    routed: dict[object, Routed] = {}
    try:
        await route_new(store, RULES, events, lambda: NOW, 16, routed)
        assert len(calls) >= 2
        assert len(routed) == len(events)
        pooled = sum(
            1
            for r in routed.values()
            if isinstance(r.placed.decision, Assignment) and r.placed.decision.pool_version is not None
        )
        versions = [int(await redis.hget(keys.pool(team), "version") or 0) for team in RULES.compiled.teams]
        assert sum(versions) == pooled + 1, (
            "every pooled assignment moved its pool once, plus the other router's"
        )
        records = [await redis.hget(keys.lead(p.event.lead.id), "status") for p in events]
        assert all(status in (b"assigned", b"queued") for status in records)
    finally:
        await _cleanup(redis, redis_prefix)


async def test_a_flushed_script_cache_is_reloaded(redis: Redis, redis_prefix: str) -> None:
    """After SCRIPT FLUSH (a restarted Redis) the batched read and commits load their scripts again."""
    keys = RedisKeys(redis_prefix)
    store = AssignmentStore(redis, keys, 3600)
    events = _events("f")[:20]
    routed: dict[object, Routed] = {}
    try:
        await route_new(store, RULES, events[:10], lambda: NOW, 16, routed)
        await redis.script_flush()
        await route_new(store, RULES, events[10:], lambda: NOW, 16, routed)
        assert len(routed) == 20
        await store.mark_published([p.event.lead.id for p in events])
        existing, _ = await store.read_many([p.event.lead.id for p in events], RULES.compiled, NOW)
        assert all(e is not None and e.published for e in existing)
    finally:
        await _cleanup(redis, redis_prefix)
