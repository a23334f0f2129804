"""The shared routing state in Redis: read it, then commit a decision atomically."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any, Literal

import orjson
from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from monitors.metrics import Metrics
from monitors.timing import RedisTimer
from router.redis_keys import RedisKeys, bucket_of
from rules.compiled import CompiledRulebook
from rules.decide import Assignment, Decision, Queued
from rules.selection import RepState

_ASSIGN = resources.files("router").joinpath("lua/assign.lua").read_text()
# Many decisions in one call: assign.lua's body as a function, applied in order,
# stopping after the first result that is not 'ok'. KEYS: the six keys every decision
# shares (open, last-assigned, retry, outbox, reassign, untouched), then four per
# decision (lead, pool, due, daily); ARGV: assign.lua's four per decision.
_ASSIGN_BATCH = f"""
local function assign(KEYS, ARGV)
{_ASSIGN}
end
local results = {{}}
for i = 0, #ARGV / 4 - 1 do
  local k, a = 6 + i * 4, i * 4
  local keys = {{KEYS[k + 1], KEYS[k + 2], KEYS[1], KEYS[k + 3], KEYS[2], KEYS[k + 4], KEYS[3], KEYS[4],
    KEYS[5], KEYS[6]}}
  local result = assign(keys, {{ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]}})
  results[#results + 1] = result
  if result[1] ~= 'ok' then break end
end
return results
"""
_SHARED_KEYS = (2, 4, 6, 7, 8, 9)  # positions in assign.lua's KEYS of the shared ones
_OWN_KEYS = (0, 1, 3, 5)
# Each lead's (event, published) in one command rather than one HMGET each.
_READ_LEADS = """
local out = {}
for i, key in ipairs(KEYS) do
  local fields = redis.call('HMGET', key, 'event', 'published')
  out[2 * i - 1], out[2 * i] = fields[1], fields[2]
end
return out
"""
_MARK_PUBLISHED = "for _, key in ipairs(KEYS) do redis.call('HSET', key, 'published', '1') end"
# Drop a reassignment request that can never be served, checking in the same step that
# it still cannot: between the drainer's read and this, the lead may have become
# reassignable (and a request read as moot made anew). KEYS: 1 lead hash, 2 requests;
# ARGV: 1 lead id. Returns why it was dropped ('served': no request left, another
# router served it), or nil (Lua false) when it is kept.
_DROP_REASSIGN = """
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 'served' end
local f = redis.call('HMGET', KEYS[1], 'status', 'touched_ms', 'lead', 'attempt')
local why
if not f[1] then why = 'no_record'
elseif f[1] ~= 'assigned' then why = 'not_assigned'
elseif f[2] then why = 'touched'
elseif not f[3] or not f[4] then why = 'no_lead_stored'
else return false end
redis.call('ZREM', KEYS[2], ARGV[1])
return why
"""
# Decisions per batch call: bounds how long one call holds Redis (about 20 us each).
BATCH_COMMIT = 100
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


def _result(result: list[Any]) -> CommitResult:
    kind = result[0].decode()
    if kind == "exists":
        return CommitResult("exists", Existing(result[1], result[2] == b"1"))
    if kind == "conflict":
        return CommitResult("conflict", conflict=result[1].decode())
    if kind in ("gone", "still_queued"):
        return CommitResult(kind)
    return CommitResult("ok")


@dataclass(frozen=True, slots=True)
class Commit:
    """One decision for `AssignmentStore.commit_many`: `kwargs` as `commit` takes them."""

    lead_id: str
    decision: Decision
    event: bytes
    kwargs: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ReassignContext:
    """What routing a lead again needs from its record."""

    attempt: int
    rep: str
    team: str
    policy: str
    assignees: frozenset[str]
    lead_event: bytes


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
        self._assign_batch = redis.register_script(_ASSIGN_BATCH)
        self._read_leads = redis.register_script(_READ_LEADS)
        self._mark_published = redis.register_script(_MARK_PUBLISHED)
        self._drop_reassign = redis.register_script(_DROP_REASSIGN)
        # Timer buckets: the partition count of the activities topic (set at start-up).
        self.buckets = 1

    async def read(
        self, lead_id: str, book: CompiledRulebook, now: datetime
    ) -> tuple[Existing | None, RepState]:
        """The lead's existing decision, if any, and the rep state a decision needs."""
        existing, state = await self.read_many((lead_id,), book, now)
        return existing[0], state

    async def read_many(
        self, lead_ids: Sequence[str], book: CompiledRulebook, now: datetime
    ) -> tuple[list[Existing | None], RepState]:
        """Each lead's existing decision, if any, and the rep state, in one round trip."""
        teams = tuple(book.teams)
        # Each rep's local day, worked out once per time zone (a few zones, many reps).
        zone_days: dict[object, str] = {}
        rep_days = {
            r: zone_days.get(rep.zone) or zone_days.setdefault(rep.zone, rep.local_day(now).isoformat())
            for r, rep in book.reps.items()
        }
        days = sorted(set(zone_days.values()))
        with self._timed("read_state"):
            try:
                results = await self._read_pipeline(lead_ids, teams, days)
            except NoScriptError:  # a restarted or flushed Redis: load it and read again
                await self._redis.script_load(_READ_LEADS)
                results = await self._read_pipeline(lead_ids, teams, days)
        flat = results[0]
        # The script returns Lua's false for a missing field: nil here, as HMGET's.
        leads = [(flat[i], flat[i + 1]) for i in range(0, 2 * len(lead_ids), 2)]
        pools, rest = results[1 : 1 + len(teams)], results[1 + len(teams) :]
        open_leads, last, status, daily = rest[0], rest[1], rest[2], rest[3:]
        existing = [
            Existing(event, published == b"1") if event is not None else None for event, published in leads
        ]
        versions, cursors, weights = {}, {}, {}
        for team, raw in zip(teams, pools, strict=True):
            versions[team], cursor, weights[team] = _pool_state(raw)
            if cursor is not None:
                cursors[team] = cursor
        per_day = dict(zip(days, (_counts(d) for d in daily), strict=True))
        today = {r: per_day[day].get(r, 0) for r, day in rep_days.items()}
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

    async def _read_pipeline(self, lead_ids: Sequence[str], teams: Sequence[str], days: Sequence[str]) -> Any:
        # EVALSHA by hand: a script registered on the pipeline costs a SCRIPT EXISTS
        # round trip on every execute.
        async with self._redis.pipeline(transaction=False) as pipe:
            if len(lead_ids) == 1:
                pipe.hmget(self._keys.lead(lead_ids[0]), ["event", "published"])
            else:
                pipe.evalsha(self._read_leads.sha, len(lead_ids), *(self._keys.lead(i) for i in lead_ids))
            for team in teams:
                pipe.hgetall(self._keys.pool(team))
            pipe.hgetall(self._keys.open)
            pipe.hgetall(self._keys.last_assigned)
            pipe.hgetall(self._keys.status)
            for day in days:
                pipe.hgetall(self._keys.daily(day))
            return await pipe.execute()

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
        mode: Literal["new", "requeue", "reassign", "reroute"] = "new",
        timers: Sequence[tuple[str, int]] = (),
        fields: Mapping[str, str] | None = None,
        keep_lead: bool = False,
        outbox: Sequence[tuple[str, str, str]] = (),
    ) -> CommitResult:
        """Record a decision, its SLA timers and plan `fields`, atomically.

        `requeue` assigns a lead waiting on the retry queue; `reassign` routes an
        assigned lead again as `attempt` (its previous attempt is `attempt - 1`).
        On both, the events (and any `outbox` records) go to the Redis outbox;
        on `new`, the caller publishes them.
        """
        keys, args = self._call(
            lead_id, decision, event, trace=trace, attempt=attempt, assigned_ms=assigned_ms,
            due_ms=due_ms, lead_event=lead_event, mode=mode, timers=timers, fields=fields,
            keep_lead=keep_lead, outbox=outbox,
        )  # fmt: skip
        with self._timed("assign"):
            result = await self._assign(keys=keys, args=args)
        return _result(result)

    async def commit_many(self, commits: Sequence[Commit]) -> list[CommitResult]:
        """Commit new decisions in order, as `commit` would one by one, stopping after the
        first that is not `ok`: the decisions after it were made on a state that assumed
        it, so they are returned to the caller undone (the list is shorter)."""
        done: list[CommitResult] = []
        for start in range(0, len(commits), BATCH_COMMIT):
            keys: list[str] = []
            args: list[bytes | str] = []
            chunk = commits[start : start + BATCH_COMMIT]
            for c in chunk:
                k, a = self._call(c.lead_id, c.decision, c.event, **c.kwargs)
                if not keys:
                    keys = [k[i] for i in _SHARED_KEYS]
                keys += [k[i] for i in _OWN_KEYS]
                args += a
            with self._timed("assign_batch"):
                raw = await self._assign_batch(keys=keys, args=args)
            done += [_result(r) for r in raw]
            if len(raw) < len(chunk) or done[-1].status != "ok":
                break
        return done

    def _call(
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
        mode: Literal["new", "requeue", "reassign", "reroute"] = "new",
        timers: Sequence[tuple[str, int]] = (),
        fields: Mapping[str, str] | None = None,
        keep_lead: bool = False,
        outbox: Sequence[tuple[str, str, str]] = (),
    ) -> tuple[list[str], list[bytes | str]]:
        """assign.lua's KEYS and ARGV for one decision."""
        k = self._keys
        spec: dict[str, object] = {
            "mode": mode, "lead": lead_id, "attempt": str(attempt), "previous_attempt": str(attempt - 1),
            "assigned_ms": str(assigned_ms), "due_ms": str(due_ms), "retention": str(self._retention),
            "daily_ttl": str(DAILY_TTL_SECONDS), "keep_lead": "1" if keep_lead else "0",
            "topics": list(self._outbox_topics), "outbox": [list(r) for r in outbox],
            "timers": [[member, str(score)] for member, score in timers], "fields": dict(fields or {}),
            "weights": {}, "version": "", "cursor": "", "capacity": "0", "daily_cap": "",
            "retry": "1" if isinstance(decision, Queued) and decision.retry else "0",
        }  # fmt: skip
        if isinstance(decision, Assignment):
            a = decision
            spec.update(
                status="assigned", rep=a.rep_id, team=a.team, route=a.route,
                version="" if a.pool_version is None else str(a.pool_version),
                cursor="" if a.cursor_after is None else str(a.cursor_after),
                weights={rep: str(w) for rep, w in (a.weights_after or {}).items()},
                capacity=str(a.capacity), daily_cap="" if a.daily_cap is None else str(a.daily_cap),
            )  # fmt: skip
            pool_key, daily_key = k.pool(a.pool or "(none)"), k.daily(a.local_day)
        else:
            spec.update(status="queued", rep="", team=decision.queue, route=decision.route)
            pool_key, daily_key = k.pool("(none)"), k.daily("(none)")
        keys = [
            k.lead(lead_id),
            pool_key,
            k.open,
            k.due(bucket_of(lead_id, self.buckets)),
            k.last_assigned,
            daily_key,
            k.retry,
            k.outbox,
            k.reassign,
            k.untouched,
        ]
        return keys, [orjson.dumps(spec), event, trace, lead_event]

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

    async def reassign_requests(self, limit: int) -> list[str]:
        with self._timed("reassign_queue"):
            raw: list[bytes] = await self._redis.zrange(self._keys.reassign, 0, limit - 1)  # type: ignore[assignment]
        return [_text(r) for r in raw]

    async def reassign_context(self, lead_id: str) -> ReassignContext | None:
        """The lead's current attempt, if it is still assigned and can be routed again."""
        fields = ["status", "attempt", "rep", "team", "policy", "assignees", "lead", "touched_ms"]
        raw = await self._redis.hmget(self._keys.lead(lead_id), fields)
        status, attempt, rep, team, policy, assignees, lead, touched = raw
        if status != b"assigned" or touched is not None or lead is None or attempt is None:
            return None
        return ReassignContext(
            int(attempt), _text(rep or b""), _text(team or b""), _text(policy or b"default"),
            frozenset(_text(assignees or b"").split(",")) - {""}, _raw(lead) or b"",
        )  # fmt: skip

    async def reroute_context(self, lead_id: str) -> tuple[int, str, str, str] | None:
        """(attempt, rep, team, routing digest) of an assigned, untouched lead, else None."""
        fields = ["status", "attempt", "rep", "team", "route_digest", "touched_ms"]
        status, attempt, rep, team, digest, touched = await self._redis.hmget(
            self._keys.lead(lead_id), fields
        )
        if status != b"assigned" or touched is not None or attempt is None or digest is None:
            return None
        return int(attempt), _text(rep or b""), _text(team or b""), _text(digest)

    async def drop_reassign(self, lead_id: str) -> str | None:
        """Drop the lead's request if it cannot be served (see `reassign_context`):
        why (no_record, not_assigned, touched, no_lead_stored; `served` when there was
        no request left to drop), or None if it is kept."""
        why = await self._drop_reassign(keys=[self._keys.lead(lead_id), self._keys.reassign], args=[lead_id])
        return None if why is None else _text(why)

    async def discard_reassign(self, lead_id: str) -> None:
        """Forget the lead's request whatever its state (its stored lead is unusable)."""
        await self._redis.zrem(self._keys.reassign, lead_id)

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
        keys = [self._keys.lead(lead_id) for lead_id in lead_ids]
        if keys:
            with self._timed("mark_published"):
                await self._mark_published(keys=keys)
