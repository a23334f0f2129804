"""The shared routing state in Redis: read it, then commit a decision atomically."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any, Literal

from redis.asyncio import Redis

from monitors.metrics import Metrics
from monitors.timing import RedisTimer
from router.redis_keys import RedisKeys
from rules.compiled import CompiledRulebook
from rules.decide import Assignment, Decision, Queued
from rules.selection import RepState

_ASSIGN = resources.files("router").joinpath("lua/assign.lua").read_text()
# Daily counts outlive the longest local day anywhere (UTC-12 to UTC+14) with margin.
DAILY_TTL_SECONDS = 3 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Existing:
    event: bytes
    published: bool


@dataclass(frozen=True, slots=True)
class CommitResult:
    status: Literal["ok", "exists", "conflict", "gone", "still_queued"]
    existing: Existing | None = None
    conflict: str | None = None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _raw(value: bytes | str | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


def _counts(raw: dict[Any, Any]) -> dict[str, int]:
    return {_text(k): int(v) for k, v in raw.items()}


def _pool_state(raw: dict[Any, Any]) -> tuple[int, int | None, dict[str, int]]:
    fields = {_text(k): int(v) for k, v in raw.items()}
    weights = {k[2:]: v for k, v in fields.items() if k.startswith("w:")}
    return fields.get("version", 0), fields.get("cursor"), weights


class AssignmentStore:
    def __init__(
        self,
        redis: Redis,
        keys: RedisKeys,
        retention_seconds: int,
        metrics: Metrics | None = None,
        outbox_topics: tuple[str, str] = ("assignments", "routing-decisions"),
    ) -> None:
        self._timed = RedisTimer(metrics)
        self._redis = redis
        self._keys = keys
        self._retention = retention_seconds
        self._outbox_topics = outbox_topics
        self._assign = redis.register_script(_ASSIGN)

    async def read(
        self, lead_id: str, book: CompiledRulebook, now: datetime
    ) -> tuple[Existing | None, RepState]:
        """The lead's existing decision, if any, and the rep state a decision needs."""
        teams = tuple(book.teams)
        days = sorted({rep.local_day(now).isoformat() for rep in book.reps.values()})
        with self._timed("read_state"):
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hmget(self._keys.lead(lead_id), ["event", "published"])
                for team in teams:
                    pipe.hgetall(self._keys.pool(team))
                pipe.hgetall(self._keys.open)
                pipe.hgetall(self._keys.last_assigned)
                pipe.hgetall(self._keys.status)
                for day in days:
                    pipe.hgetall(self._keys.daily(day))
                results = await pipe.execute()
        (event, published), rest = results[0], results[1:]
        pools, rest = rest[: len(teams)], rest[len(teams) :]
        open_leads, last, status, daily = rest[0], rest[1], rest[2], rest[3:]
        existing = Existing(event, published == b"1") if event is not None else None
        versions, cursors, weights = {}, {}, {}
        for team, raw in zip(teams, pools, strict=True):
            versions[team], cursor, weights[team] = _pool_state(raw)
            if cursor is not None:
                cursors[team] = cursor
        per_day = dict(zip(days, (_counts(d) for d in daily), strict=True))
        today = {r: per_day[rep.local_day(now).isoformat()].get(r, 0) for r, rep in book.reps.items()}
        state = RepState(
            open_leads=_counts(open_leads),
            cursors=cursors,
            weights=weights,
            last_assigned_ms=_counts(last),
            assigned_today=today,
            status={_text(k): _text(v) for k, v in status.items()},
            versions=versions,
        )
        return existing, state

    async def commit(
        self,
        lead_id: str,
        decision: Decision,
        event: bytes,
        *,
        trace: bytes = b"",
        attempt: int,
        assigned_ms: int,
        due_ms: int,
        lead_event: bytes = b"",
        requeue: bool = False,
    ) -> CommitResult:
        """Record a decision. `requeue` assigns a lead waiting on the retry queue and
        hands its events to the outbox; otherwise the caller publishes them."""
        k = self._keys
        tail: list[str | int | bytes] = [
            trace, "requeue" if requeue else "new",
            "1" if isinstance(decision, Queued) and decision.retry else "0",
            lead_event, *self._outbox_topics,
        ]  # fmt: skip
        if isinstance(decision, Assignment):
            a = decision
            pool_key = k.pool(a.pool) if a.pool is not None else k.pool("(none)")
            keys = [k.lead(lead_id), pool_key, k.open, k.due, k.last_assigned, k.daily(a.local_day)]
            weights = [x for rep, w in (a.weights_after or {}).items() for x in (rep, w)]
            args: list[str | int | bytes] = [
                "assigned", a.rep_id, a.team, a.route, attempt, assigned_ms, due_ms, event,
                "" if a.pool_version is None else a.pool_version,
                "" if a.cursor_after is None else a.cursor_after,
                a.capacity, "" if a.daily_cap is None else a.daily_cap,
                self._retention, lead_id, DAILY_TTL_SECONDS, *tail, *weights,
            ]  # fmt: skip
        else:
            q = decision
            keys = [k.lead(lead_id), k.pool("(none)"), k.open, k.due, k.last_assigned, k.daily("(none)")]
            args = ["queued", "", q.queue, q.route, attempt, assigned_ms, due_ms, event,
                    "", "", 0, "", self._retention, lead_id, DAILY_TTL_SECONDS, *tail]  # fmt: skip
        keys += [k.retry, k.outbox]
        with self._timed("assign"):
            result = await self._assign(keys=keys, args=args)
        kind = result[0].decode()
        if kind == "exists":
            return CommitResult("exists", Existing(result[1], result[2] == b"1"))
        if kind == "conflict":
            return CommitResult("conflict", conflict=result[1].decode())
        if kind in ("gone", "still_queued"):
            return CommitResult(kind)
        return CommitResult("ok")

    async def waiting(self, limit: int) -> tuple[list[tuple[str, bytes | None]], int | None]:
        """The oldest leads on the retry queue with their lead events (first in, first
        out), and when the oldest was queued (epoch ms)."""
        with self._timed("retry_queue"):
            raw_ids: list[tuple[bytes, float]] = await self._redis.zrange(  # type: ignore[assignment]
                self._keys.retry, 0, limit - 1, withscores=True
            )
            ids = [_text(i) for i, _ in raw_ids]
            async with self._redis.pipeline(transaction=False) as pipe:
                for lead_id in ids:
                    pipe.hget(self._keys.lead(lead_id), "lead")
                events = await pipe.execute()
        oldest = int(raw_ids[0][1]) if raw_ids else None
        return [(i, _raw(e)) for i, e in zip(ids, events, strict=True)], oldest

    async def freed(self) -> int:
        """A counter that moves whenever a first touch frees capacity somewhere."""
        return int(await self._redis.get(self._keys.freed) or 0)

    async def drop_waiting(self, lead_id: str) -> None:
        """Forget a queued lead whose record is gone (expired): nothing left to assign."""
        await self._redis.zrem(self._keys.retry, lead_id)

    async def waiting_count(self) -> int:
        return int(await self._redis.zcard(self._keys.retry))

    async def trace(self, lead_id: str) -> tuple[bytes | None, bytes | None]:
        """The published assignment event and the full decision trace of a lead."""
        with self._timed("read_trace"):
            event, trace = await self._redis.hmget(self._keys.lead(lead_id), ["event", "trace"])
        return _raw(event), _raw(trace)

    async def mark_published(self, lead_ids: Iterable[str]) -> None:
        with self._timed("mark_published"):
            async with self._redis.pipeline(transaction=False) as pipe:
                for lead_id in lead_ids:
                    pipe.hset(self._keys.lead(lead_id), "published", "1")
                await pipe.execute()
