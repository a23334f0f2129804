"""First-touch clocks in Redis: touch, claim due timers with a lease, acknowledge.

The router arms a timer in the same atomic step as the assignment
(`router/lua/assign.lua`). Here, monitors stop clocks on a touch and sweep due
timers: claim (one Lua call) -> publish `sla.breached` -> ack. A monitor killed
between claim and ack delays that alert by the lease, never loses it; consumers
deduplicate on the deterministic event id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Literal

from redis.asyncio import Redis

from monitors.metrics import Metrics
from monitors.timing import RedisTimer
from router.redis_keys import RedisKeys, bucket_of


def _script(name: str) -> str:
    return resources.files("monitors").joinpath(f"lua/{name}.lua").read_text()


@dataclass(frozen=True, slots=True)
class Clock:
    """A lead's SLA clock as stored with its assignment (times in epoch ms)."""

    lead_id: str
    rep_id: str
    team: str
    attempt: int
    assigned_ms: int
    due_ms: int
    policy: str = "default"
    clock_ms: int | None = None  # when the clock started (assignment or lead creation)


@dataclass(frozen=True, slots=True)
class DueTimer:
    """A claimed timer: what fell due (warn, breach or esc<N>) for which clock."""

    member: str
    kind: str
    clock: Clock
    bucket: int = 0


@dataclass(frozen=True, slots=True)
class TouchResult:
    outcome: Literal["met", "pending", "nothing", "queued", "other_rep", "not_counted", "duplicate"]
    clock: Clock | None = None
    touched_ms: int | None = None
    breached: bool = False  # the breach was already published: a late arrival
    created_ms: int | None = None  # when the lead was created, for speed to lead


class RedisTimers:
    def __init__(
        self, redis: Redis, keys: RedisKeys, retention_seconds: int, metrics: Metrics | None = None
    ) -> None:
        self._timed = RedisTimer(metrics)
        self._redis = redis
        self._keys = keys
        self._retention = retention_seconds
        self._touch = redis.register_script(_script("touch"))
        self._claim = redis.register_script(_script("claim"))
        self._ack = redis.register_script(_script("ack"))
        # Timer buckets: the partition count of the activities topic (set at start-up).
        self.buckets = 1
        self._claimed: dict[str, int] = {}  # member -> bucket, from claim until ack

    async def touch(
        self, lead_id: str, rep_id: str, touched_ms: int, channel: str = "call", direction: str = "outbound"
    ) -> TouchResult:
        """Apply a touch; `rep_id=""` settles a touch that arrived before the assignment."""
        k = self._keys
        bucket = bucket_of(lead_id, self.buckets)
        with self._timed("touch"):
            raw = await self._touch(
                keys=[
                    k.lead(lead_id),
                    k.open,
                    k.due(bucket),
                    k.inflight(bucket),
                    k.pending(lead_id),
                    k.freed,
                    k.untouched,
                ],
                args=[rep_id, touched_ms, lead_id, self._retention, channel, direction],
            )
        outcome = raw[0].decode()
        if outcome != "met":
            return TouchResult(outcome)
        rep, team, attempt, assigned, due, touched, policy, clock_ms, breached, created = (
            v.decode() for v in raw[1:]
        )
        clock = Clock(lead_id, rep, team, int(attempt), int(assigned), int(due), policy, int(clock_ms))
        created_ms = int(created) if created else None
        return TouchResult("met", clock, int(touched), breached == "1", created_ms)

    async def settle(self, lead_id: str) -> TouchResult:
        return await self.touch(lead_id, "", 0)

    async def claim(
        self, cutoff_ms: int, now_ms: int, lease_ms: int, limit: int, bucket: int = 0
    ) -> list[DueTimer]:
        return (await self.claim_buckets({bucket: cutoff_ms}, now_ms, lease_ms, limit))[0]

    async def claim_buckets(
        self, cutoffs: Mapping[int, int], now_ms: int, lease_ms: int, limit: int
    ) -> list[list[DueTimer]]:
        """Claim due timers in several buckets (bucket -> cutoff) in one round trip;
        up to `limit` per bucket, in the order given."""
        with self._timed("claim"):
            async with self._redis.pipeline(transaction=False) as pipe:
                for bucket, cutoff_ms in cutoffs.items():
                    await self._claim(
                        keys=[self._keys.due(bucket), self._keys.inflight(bucket)],
                        args=[cutoff_ms, now_ms, now_ms + lease_ms, limit, self._keys.lead_prefix()],
                        client=pipe,
                    )
                answers = await pipe.execute()
        return [self._timers(raw, bucket) for bucket, raw in zip(cutoffs, answers, strict=True)]

    def _timers(self, raw: list[bytes], bucket: int) -> list[DueTimer]:
        if len(self._claimed) > 1_000_000:  # claims never acked (a failed publish), forgotten
            self._claimed.clear()
        out = []
        for i in range(0, len(raw), 6):
            member, rep, team, assigned, due, policy = (v.decode() for v in raw[i : i + 6])
            kind, attempt, lead = member.split(":", 2)
            clock = Clock(lead, rep, team, int(attempt), int(assigned), int(due), policy or "default")
            out.append(DueTimer(member, kind, clock, bucket))
            # ack and extend need the bucket again: remember it rather than hash again.
            self._claimed[member] = bucket
        return out

    def _bucket(self, member: str) -> int:
        bucket = self._claimed.get(member)
        return bucket_of(member.split(":", 2)[2], self.buckets) if bucket is None else bucket

    async def extend(self, members: Sequence[str], until_ms: int) -> None:
        """Renew the lease of claimed timers still being published (only those still claimed)."""
        by_bucket: dict[int, dict[str, int]] = {}
        for member in members:
            by_bucket.setdefault(self._bucket(member), {})[member] = until_ms
        with self._timed("claim"):
            async with self._redis.pipeline(transaction=False) as pipe:
                for bucket, mapping in by_bucket.items():
                    pipe.zadd(self._keys.inflight(bucket), mapping, xx=True)
                await pipe.execute()

    async def ack(self, timers: Sequence[tuple[str, bool]], now_ms: int) -> None:
        """Mark published alerts (`member`, `reassign?`) alerted and release their claims."""
        by_bucket: dict[int, list[str | int]] = {}
        for member, reassign in timers:
            bucket = self._bucket(member)
            by_bucket.setdefault(bucket, []).extend([member, "1" if reassign else "0"])
        with self._timed("ack"):
            async with self._redis.pipeline(transaction=False) as pipe:
                for bucket, pairs in by_bucket.items():
                    await self._ack(
                        keys=[self._keys.inflight(bucket), self._keys.reassign],
                        args=[self._keys.lead_prefix(), now_ms, *pairs],
                        client=pipe,
                    )
                await pipe.execute()
        for member, _ in timers:
            self._claimed.pop(member, None)

    async def mark_met_published(self, lead_ids: Sequence[str]) -> None:
        with self._timed("mark_published"):
            async with self._redis.pipeline(transaction=False) as pipe:
                for lead_id in lead_ids:
                    pipe.hset(self._keys.lead(lead_id), "met_published", "1")
                await pipe.execute()

    async def untouched(self, retention_seconds: int, now_ms: int) -> tuple[int, int | None]:
        """How many assigned leads await a first touch, and when the oldest was assigned."""
        key = self._keys.untouched
        async with self._redis.pipeline(transaction=False) as pipe:
            # Records expire after the retention; their entries here go with them.
            pipe.zremrangebyscore(key, "-inf", now_ms - retention_seconds * 1000)
            pipe.zcard(key)
            pipe.zrange(key, 0, 0, withscores=True)
            _, count, oldest = await pipe.execute()
        return int(count), int(oldest[0][1]) if oldest else None

    async def at_risk(self, now_ms: int, horizon_ms: int, limit: int = 10_000) -> int:
        """Untouched leads whose deadline falls within the next `horizon_ms` (counted up
        to `limit` per bucket: a gauge, not an inventory)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for bucket in range(self.buckets):
                pipe.zrangebyscore(self._keys.due(bucket), now_ms, now_ms + horizon_ms, start=0, num=limit)
            found = await pipe.execute()
        return sum(1 for members in found for m in members if m.startswith(b"breach:"))

    async def open_by_rep(self) -> dict[str, int]:
        with self._timed("open_counts"):
            raw = await self._redis.hgetall(self._keys.open)
        return {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}
