"""The Lua scripts on a real redis-server: atomic assignment, touches, claims."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from monitors.timers import RedisTimers
from router.assignments import AssignmentStore, CommitResult
from router.redis_keys import RedisKeys
from rules.compiled import compile_rulebook
from rules.decide import Assignment, Queued, Trace, decide
from rules.events import Lead
from rules.rulebook import parse_rulebook

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
BOOK = compile_rulebook(
    parse_rulebook(
        """
version: t1
reps:
  - {id: a, teams: [t], capacity: 2}
  - {id: b, teams: [t], capacity: 2, daily_cap: 1}
teams: [{id: t}]
routes: [{id: all, assign: {team: t}}]
"""
    )
)
TRACE = Trace((), (), None, ())


def assignment(rep: str, version: int, cursor_after: int, daily_cap: int | None = None) -> Assignment:
    return Assignment(rep, "t", "all", "round_robin", "t", version, cursor_after, None, 2, daily_cap,
                      "2026-11-23", NOW, TRACE)  # fmt: skip


async def commit(
    store: AssignmentStore, lead: str, decision: Assignment | Queued, due_ms: int = 5_000
) -> CommitResult:
    timers = [(f"breach:1:{lead}", due_ms)] if isinstance(decision, Assignment) else []
    return await store.commit(
        lead, decision, b"{}", attempt=1, assigned_ms=1_000, due_ms=due_ms, timers=timers
    )


async def test_assignment_is_recorded_once(redis: Redis, redis_prefix: str) -> None:
    """A replayed lead keeps its first decision; the pool state and open count move once."""
    keys = RedisKeys(redis_prefix)
    store = AssignmentStore(redis, keys, 3600)
    assert (await commit(store, "L1", assignment("a", 0, 1))).status == "ok"
    again = await commit(store, "L1", assignment("b", 1, 0))
    assert again.status == "exists"
    assert again.existing is not None
    assert not again.existing.published
    existing, state = await store.read("L1", BOOK, NOW)
    assert existing is not None
    assert state.cursors == {"t": 1}
    assert state.versions == {"t": 1}
    assert state.open_leads == {"a": 1}
    assert state.assigned_today == {"a": 1, "b": 0}
    assert state.last_assigned_ms == {"a": 1_000}
    assert await redis.zscore(keys.due(0), "breach:1:L1") == 5_000
    await store.mark_published(["L1"])
    existing, _ = await store.read("L1", BOOK, NOW)
    assert existing is not None
    assert existing.published


async def test_stale_state_conflicts(redis: Redis, redis_prefix: str) -> None:
    """A decision made on a pool version another router already moved is refused."""
    store = AssignmentStore(redis, RedisKeys(redis_prefix), 3600)
    assert (await commit(store, "L1", assignment("a", 0, 1))).status == "ok"
    stale = await commit(store, "L2", assignment("a", 0, 1))
    assert stale.status == "conflict"
    assert stale.conflict == "version"
    _, state = await store.read("L2", BOOK, NOW)
    assert (await commit(store, "L2", assignment("b", state.versions["t"], 0))).status == "ok"


async def test_daily_cap_is_enforced_atomically(redis: Redis, redis_prefix: str) -> None:
    """The commit refuses a rep who reached the daily cap, whatever the decision read."""
    store = AssignmentStore(redis, RedisKeys(redis_prefix), 3600)
    assert (await commit(store, "L1", assignment("b", 0, 0, daily_cap=1))).status == "ok"
    over = await commit(store, "L2", assignment("b", 1, 0, daily_cap=1))
    assert over.status == "conflict"
    assert over.conflict == "daily_cap"


async def test_capacity_is_enforced_under_concurrency(redis: Redis, redis_prefix: str) -> None:
    """Many routers racing for one team never push a rep past capacity."""
    store = AssignmentStore(redis, RedisKeys(redis_prefix), 3600)
    book = compile_rulebook(
        parse_rulebook(
            "version: t2\nreps: [{id: a, teams: [t], capacity: 2}, {id: b, teams: [t], capacity: 2}]\n"
            "teams: [{id: t}]\nroutes: [{id: all, assign: {team: t}}]\n"
        )
    )

    async def route(lead: str) -> str:
        for _ in range(50):
            _, state = await store.read(lead, book, NOW)
            decision = decide(Lead(id=lead), book, state, NOW)
            result = await store.commit(lead, decision, b"{}", attempt=1, assigned_ms=1, due_ms=2)
            if result.status != "conflict":
                return decision.rep_id if isinstance(decision, Assignment) else "queued"
        raise AssertionError("no progress")

    results = await asyncio.gather(*(route(f"L{i}") for i in range(10)))
    assert sorted(results) == ["a", "a", "b", "b"] + ["queued"] * 6
    _, state = await store.read("x", book, NOW)
    assert state.open_leads == {"a": 2, "b": 2}


async def test_touch_stops_the_clock_once(redis: Redis, redis_prefix: str) -> None:
    """The assigned rep's first touch stops the clock; later and other reps' touches don't."""
    keys = RedisKeys(redis_prefix)
    store = AssignmentStore(redis, keys, 3600)
    timers = RedisTimers(redis, keys, 3600)
    await commit(store, "L1", assignment("a", 0, 1))
    assert (await timers.touch("L1", "b", 2_000)).outcome == "other_rep"
    first = await timers.touch("L1", "a", 3_000)
    assert first.outcome == "met"
    assert first.touched_ms == 3_000
    # Not yet marked published: a replay publishes the same touch again.
    replay = await timers.touch("L1", "a", 4_000)
    assert replay.outcome == "met"
    assert replay.touched_ms == 3_000
    await timers.mark_met_published(["L1"])
    assert (await timers.touch("L1", "a", 4_000)).outcome == "duplicate"
    assert await redis.zscore(keys.due(0), "breach:1:L1") is None
    assert await timers.open_by_rep() == {"a": 0}


async def test_touch_before_assignment_is_settled(redis: Redis, redis_prefix: str) -> None:
    """A touch that arrives before the assignment is kept and applied when it lands."""
    keys = RedisKeys(redis_prefix)
    store = AssignmentStore(redis, keys, 3600)
    timers = RedisTimers(redis, keys, 3600)
    assert (await timers.touch("L1", "a", 900)).outcome == "pending"
    assert (await timers.touch("L1", "a", 800)).outcome == "pending"  # the earliest wins
    assert (await timers.settle("L1")).outcome == "nothing"  # not assigned yet
    await commit(store, "L1", assignment("a", 0, 1))
    settled = await timers.settle("L1")
    assert settled.outcome == "met"
    assert settled.touched_ms == 800


async def test_late_touch_still_breaches(redis: Redis, redis_prefix: str) -> None:
    """A touch after the deadline is reported, and the breach still fires."""
    keys = RedisKeys(redis_prefix)
    store = AssignmentStore(redis, keys, 3600)
    timers = RedisTimers(redis, keys, 3600)
    await commit(store, "L1", assignment("a", 0, 1), due_ms=5_000)
    assert (await timers.touch("L1", "a", 6_000)).outcome == "met"
    claimed = await timers.claim(cutoff_ms=7_000, now_ms=7_000, lease_ms=1_000, limit=10)
    assert [(t.kind, t.clock.lead_id) for t in claimed] == [("breach", "L1")]


async def test_two_sweepers_never_claim_the_same_timer(redis: Redis, redis_prefix: str) -> None:
    """Concurrent claims split the due timers: every one claimed once, none twice."""
    keys = RedisKeys(redis_prefix)
    store = AssignmentStore(redis, keys, 3600)
    for i in range(400):
        await store.commit(
            f"L{i}", Queued("q", "r", "x", NOW, TRACE), b"{}", attempt=1, assigned_ms=1, due_ms=1
        )
        fields = {"status": "assigned", "rep": "a", "team": "t", "attempt": "1", "due_ms": "1000"}
        await redis.hset(keys.lead(f"L{i}"), mapping=fields)
        await redis.zadd(keys.due(0), {f"breach:1:L{i}": 1_000 + i})
    timers = [RedisTimers(redis, keys, 3600) for _ in range(4)]

    async def sweep(t: RedisTimers) -> list[str]:
        got: list[str] = []
        while batch := await t.claim(cutoff_ms=10_000, now_ms=10_000, lease_ms=60_000, limit=7):
            got += [t.clock.lead_id for t in batch]
            await asyncio.sleep(0)
        return got

    results = await asyncio.gather(*(sweep(t) for t in timers))
    claimed = [lead for r in results for lead in r]
    assert len(claimed) == 400
    assert len(set(claimed)) == 400
    assert all(results), "every sweeper got a share"


async def test_expired_lease_is_reclaimed(redis: Redis, redis_prefix: str) -> None:
    """A sweeper that dies between claim and ack delays the alert by the lease, never loses it."""
    keys = RedisKeys(redis_prefix)
    store = AssignmentStore(redis, keys, 3600)
    timers = RedisTimers(redis, keys, 3600)
    await commit(store, "L1", assignment("a", 0, 1), due_ms=5_000)
    assert len(await timers.claim(6_000, 6_000, 1_000, 10)) == 1  # then "dies": no ack
    assert await timers.claim(6_500, 6_500, 1_000, 10) == []  # lease still held
    again = await timers.claim(7_500, 7_500, 1_000, 10)
    assert [t.member for t in again] == ["breach:1:L1"]
    await timers.ack([("breach:1:L1", False)], 7_600)
    assert await timers.claim(99_000, 99_000, 1_000, 10) == []
    assert await redis.hget(keys.lead("L1"), "breached") == b"1"
