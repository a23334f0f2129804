"""The shared routing state in Redis: read it, then commit a decision atomically."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Literal

from redis.asyncio import Redis

from monitors.metrics import Metrics
from monitors.timing import RedisTimer
from router.redis_keys import RedisKeys
from rules.decide import Assignment, Decision, RepState

_ASSIGN = resources.files("router").joinpath("lua/assign.lua").read_text()


@dataclass(frozen=True, slots=True)
class Existing:
    event: bytes
    published: bool


@dataclass(frozen=True, slots=True)
class CommitResult:
    status: Literal["ok", "exists", "conflict"]
    existing: Existing | None = None
    conflict: str | None = None


class AssignmentStore:
    def __init__(
        self, redis: Redis, keys: RedisKeys, retention_seconds: int, metrics: Metrics | None = None
    ) -> None:
        self._timed = RedisTimer(metrics)
        self._redis = redis
        self._keys = keys
        self._retention = retention_seconds
        self._assign = redis.register_script(_ASSIGN)

    async def read(self, lead_id: str, teams: Sequence[str]) -> tuple[Existing | None, RepState]:
        """The lead's existing decision, if any, and the rep state a decision needs."""
        with self._timed("read_state"):
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hmget(self._keys.lead(lead_id), ["event", "published"])
                pipe.mget([self._keys.cursor(t) for t in teams])
                pipe.hgetall(self._keys.open)
                (event, published), cursors, open_leads = await pipe.execute()
        existing = Existing(event, published == b"1") if event is not None else None
        state = RepState(
            open_leads={k.decode(): int(v) for k, v in open_leads.items()},
            cursors={t: int(c) for t, c in zip(teams, cursors, strict=True) if c is not None},
        )
        return existing, state

    async def commit(
        self,
        lead_id: str,
        decision: Decision,
        event: bytes,
        *,
        attempt: int,
        assigned_ms: int,
        due_ms: int,
        capacity: int,
    ) -> CommitResult:
        if isinstance(decision, Assignment):
            status, rep, team = "assigned", decision.rep_id, decision.team
            before, after = decision.cursor_before, decision.cursor_after
        else:
            status, rep, team, before, after = "queued", "", decision.queue, 0, 0
        with self._timed("assign"):
            result = await self._assign(
                keys=[self._keys.lead(lead_id), self._keys.cursor(team), self._keys.open, self._keys.due],
                args=[status, rep, team, decision.route, attempt, assigned_ms, due_ms, event,
                      before, after, capacity, self._retention, lead_id],
            )  # fmt: skip
        kind = result[0].decode()
        if kind == "exists":
            return CommitResult("exists", Existing(result[1], result[2] == b"1"))
        if kind == "conflict":
            return CommitResult("conflict", conflict=result[1].decode())
        return CommitResult("ok")

    async def mark_published(self, lead_ids: Iterable[str]) -> None:
        with self._timed("mark_published"):
            async with self._redis.pipeline(transaction=False) as pipe:
                for lead_id in lead_ids:
                    pipe.hset(self._keys.lead(lead_id), "published", "1")
                await pipe.execute()
