"""A touch that lands while an escalation's reassignment is being decided wins.

The queue drainer reads the lead (untouched), decides, then commits the
reassignment; a touch can land in between (a Redis stall widens the gap). The
commit must then refuse: otherwise the touched lead moves to another rep and the
first rep's open count drops twice.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from monitors.timers import RedisTimers
from router.assignments import AssignmentStore
from router.redis_keys import RedisKeys
from rules.decide import Assignment, Trace

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TRACE = Trace((), (), None, ())


def assignment(rep: str, version: int, cursor_after: int) -> Assignment:
    return Assignment(rep, "t", "all", "round_robin", "t", version, cursor_after, None, 2, None,
                      "2026-11-23", NOW, TRACE)  # fmt: skip


async def test_a_touch_between_the_reassign_read_and_its_commit_wins(redis: Redis, redis_prefix: str) -> None:
    keys = RedisKeys(redis_prefix)
    store = AssignmentStore(redis, keys, 3600)
    timers = RedisTimers(redis, keys, 3600)
    await store.commit("L1", assignment("a", 0, 1), b"{}", attempt=1, assigned_ms=1_000, due_ms=5_000,
                       timers=[("breach:1:L1", 5_000)], lead_event=b"{}", keep_lead=True)  # fmt: skip
    await store.mark_published(["L1"])
    await redis.zadd(keys.reassign, {"L1": 6_000})  # the escalation asked for a new rep
    assert await store.reassign_context("L1") is not None, "untouched when the drainer read it"
    assert (await timers.touch("L1", "a", 6_500)).outcome == "met"  # the rep calls meanwhile

    result = await store.commit("L1", assignment("b", 1, 0), b"{}", attempt=2, assigned_ms=7_000,
                                due_ms=12_000, mode="reassign", timers=[("breach:2:L1", 12_000)])  # fmt: skip

    assert result.status == "gone"
    assert await redis.hmget(keys.lead("L1"), ["attempt", "rep", "touched_ms"]) == [b"1", b"a", b"6500"]
    assert await timers.open_by_rep() == {"a": 0}, "the touch freed rep a once; b got nothing"
    assert await redis.zscore(keys.due(0), "breach:2:L1") is None
    assert await store.reassign_context("L1") is None, "the drainer then drops the request"


async def test_a_decision_never_announced_is_not_replaced(redis: Redis, redis_prefix: str) -> None:
    """Found by the chaos suite: a router committed a decision, then could not publish
    it (killed, or Redis froze and ran the script after the router gave up). Its timers
    ran, the escalation reassigned the lead and marked the new event published, so the
    router's replay published nothing: attempt 1's lead.assigned was never sent. A
    reassignment (or requeue, or reroute) now waits until the replay has announced it."""
    keys = RedisKeys(redis_prefix)
    store = AssignmentStore(redis, keys, 3600)
    first = await store.commit("L2", assignment("a", 0, 1), b"attempt-1", attempt=1, assigned_ms=1_000,
                               due_ms=5_000, lead_event=b"{}", keep_lead=True)  # fmt: skip
    assert first.status == "ok"
    await redis.zadd(keys.reassign, {"L2": 6_000})

    async def reassign() -> str:
        result = await store.commit("L2", assignment("b", 1, 0), b"attempt-2", attempt=2, mode="reassign",
                                    assigned_ms=7_000, due_ms=12_000, lead_event=b"{}")  # fmt: skip
        return result.status

    assert await reassign() == "gone", "attempt 1 was never published: keep it for the replay"
    replay = await store.commit(
        "L2", assignment("a", 0, 1), b"again", attempt=1, assigned_ms=2_000, due_ms=6_000
    )
    assert replay.status == "exists"
    assert replay.existing is not None
    assert (replay.existing.event, replay.existing.published) == (b"attempt-1", False), (
        "the replay publishes it"
    )
    await store.mark_published(["L2"])
    assert await reassign() == "ok", "announced: now it can move"
    assert await redis.hmget(keys.lead("L2"), ["attempt", "rep", "event"]) == [b"2", b"b", b"attempt-2"]
