"""Scenario `sla`: SLA timers in Redis at scale.

Loads `timers` open breach timers straight into the production layout
(`router/redis_keys.py`: bucketed `due` sorted sets, the `untouched` index, the lead
hashes with the fields claim.lua reads), measuring Redis memory after each part.
Then runs the sweeper's Redis part, `RedisTimers.claim` + `ack` with the production
interval, batch and lease, while `rate` timers per second fall due, then while
`burst` fall due at the same instant, and times `RedisTimers.touch` on open timers.

What it leaves out, on purpose: publishing (a no-op, no Kafka) and the watermark
(the cutoff is now, not min(now, watermark) - grace). The real sweeper declares a
breach at least `grace` after its deadline; the figures here are what Redis and one
sweeper process add on top.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr
from redis.asyncio import Redis

from monitors.sweeper import CLAIM_LOOPS, PUBLISH_DEPTH
from monitors.timers import DueTimer, RedisTimers
from router.devinfra.process import PortInUseError, free_port
from router.devinfra.redis_server import RedisServer
from router.redis_client import make_redis
from router.redis_keys import RedisKeys, bucket_of
from router.settings import RedisSettings, SlaSettings

TARGET_STEADY_P99 = 1.0  # s, breach lateness with 1,000,000 open timers at 1,000/s due
TARGET_BURST_P99 = 2.0  # s, for a 100,000 burst
TARGET_BYTES = 200  # Redis memory per open timer
CHUNK = 1000  # members per ZADD / leads per loader script call
PIPELINE = 20  # commands per round trip while loading
REPS, TEAMS = 200, 10
FIRST_TOUCH_MS = 300_000
ARM_MARGIN_S = 1.0  # between re-arming the measured timers and their first deadline
TOUCH_SECONDS = 2.0  # per touch measurement (fewer if the open leads run out)
TOUCH_TASKS = 50

# The lead record as assign.lua leaves it, reduced to what claim.lua and touch.lua read.
_LOAD_LEADS = """
-- ARGV: 1 lead key prefix, 2 retention seconds, then id, rep, team, assigned_ms, due_ms per lead
for i = 3, #ARGV, 5 do
  local key = ARGV[1] .. ARGV[i]
  redis.call('HSET', key, 'status', 'assigned', 'attempt', '1', 'rep', ARGV[i + 1], 'team', ARGV[i + 2],
    'assigned_ms', ARGV[i + 3], 'due_ms', ARGV[i + 4], 'policy', 'default')
  redis.call('EXPIRE', key, ARGV[2])
end
"""
# Move open timers to a new deadline, keeping the record's due_ms in step with the score.
_REARM = """
-- KEYS: every bucket's due timers; ARGV: 1 lead key prefix, 2 first-touch ms,
-- then id, bucket (1-based), due_ms per lead
for i = 3, #ARGV, 3 do
  redis.call('ZADD', KEYS[tonumber(ARGV[i + 1])], 'XX', ARGV[i + 2], 'breach:1:' .. ARGV[i])
  redis.call('HSET', ARGV[1] .. ARGV[i], 'due_ms', ARGV[i + 2], 'assigned_ms', ARGV[i + 2] - ARGV[2])
end
"""


@dataclass(frozen=True, slots=True)
class SlaOptions:
    timers: int = 1_000_000
    burst: int = 100_000
    rate: float = 1000.0
    seconds: float = 20.0
    buckets: int = 6

    @property
    def steady(self) -> int:
        return round(self.rate * self.seconds)

    def problem(self) -> str | None:
        """Why these sizes cannot be run, or None."""
        if min(self.timers, self.burst, self.buckets) < 1 or self.rate <= 0 or self.seconds <= 0:
            return "--timers, --burst, --buckets, --rate and --seconds must be positive"
        if self.steady + self.burst + 2 > self.timers:
            return (
                f"--timers {self.timers} leaves no open timers to touch: it needs more than "
                f"--rate x --seconds + --burst = {self.steady + self.burst}"
            )
        return None


@dataclass(frozen=True, slots=True)
class Spread:
    count: int
    p50: float
    p99: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        ranked = sorted(values)
        if not ranked:
            return cls(0, math.nan, math.nan, math.nan)

        def rank(q: float) -> float:
            return ranked[max(0, math.ceil(q * len(ranked)) - 1)]

        return cls(len(ranked), rank(0.5), rank(0.99), ranked[-1])

    def text(self) -> str:
        return f"p50 {_dur(self.p50)}, p99 {_dur(self.p99)}, max {_dur(self.max)} (n={self.count:,})"


@dataclass(frozen=True, slots=True)
class Cpu:
    """Share of one core used by redis-server and by this process over a phase."""

    redis: float
    bench: float

    def text(self) -> str:
        return f"redis-server {self.redis:.0%} of a core, sweeper/bench process {self.bench:.0%}"


@dataclass(frozen=True, slots=True)
class TouchRun:
    count: int
    seconds: float
    met: int  # touches that stopped a clock
    cpu: Cpu

    def text(self) -> str:
        return f"{self.count / self.seconds:,.0f}/s (n={self.count:,})"


@dataclass
class _Claims:
    due_ms: list[int] = field(default_factory=list)
    claimed_at: list[float] = field(default_factory=list)
    acked_at: list[float] = field(default_factory=list)
    members: set[str] = field(default_factory=set)
    duplicates: int = 0
    progress: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, batch: Sequence[tuple[DueTimer, float]], acked_at: float) -> None:
        for timer, at in batch:
            if timer.member in self.members:
                self.duplicates += 1
            self.members.add(timer.member)
            self.due_ms.append(timer.clock.due_ms)
            self.claimed_at.append(at)
            self.acked_at.append(acked_at)
        self.progress.set()

    async def wait(self, count: int, deadline: float) -> None:
        """Until `count` timers were claimed and acked, or `deadline` (epoch s) passed."""
        while len(self.due_ms) < count and (remaining := deadline - time.time()) > 0:
            self.progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.progress.wait(), remaining)

    def lateness(self, select: Callable[[int], bool]) -> list[float]:
        return [at - due / 1000 for due, at in zip(self.due_ms, self.claimed_at, strict=True) if select(due)]


@dataclass(frozen=True, slots=True)
class SlaResult:
    options: SlaOptions
    sla: SlaSettings
    server: str
    id_length: int
    load_seconds: float
    bytes_timer: float
    bytes_index: float
    bytes_record: float
    steady: Spread
    steady_cpu: Cpu
    burst: Spread
    burst_clear_seconds: float
    burst_cpu: Cpu
    claimed: int
    duplicates: int
    forks: int
    touch_sequential: TouchRun
    touch_concurrent: TouchRun
    load: tuple[float, float]  # 1-minute load average before the sweeper started, after the touches

    @property
    def expected(self) -> int:
        return self.options.steady + self.options.burst

    def lines(self) -> list[str]:
        o, sla, grace = self.options, self.sla, self.sla.grace_seconds
        per_lead = self.bytes_timer + self.bytes_index + self.bytes_record
        seq, conc = self.touch_sequential, self.touch_concurrent

        def row(figure: str, measured: str, target: str) -> str:
            return f"  {figure:<44} {measured:<52} {target}".rstrip()

        return [
            f"sla: {o.timers:,} open breach timers in {o.buckets} buckets (lead ids of {self.id_length} "
            f"chars), {self.server}",
            f"  sweeper: RedisTimers.claim + ack every {sla.sweep_interval_seconds:g} s, batch "
            f"{sla.claim_batch} per bucket, lease {sla.claim_lease_seconds:g} s (SlaSettings defaults), "
            "one process",
            "  publish is a no-op (no Kafka) and the cutoff is now: the real sweeper also waits for the",
            f"  activities watermark and a grace of {grace:g} s, so its lateness is at least that much more",
            f"  1-minute load average {self.load[0]:.1f} before, {self.load[1]:.1f} after, on "
            f"{os.cpu_count()} cores (other work on the machine slows every figure)",
            row("figure", "measured", "target"),
            row("Redis memory per open timer (due zset entry)", f"{self.bytes_timer:,.0f} B",
                _verdict(f"< {TARGET_BYTES} B", self.bytes_timer < TARGET_BYTES)),
            row("  + untouched index entry", f"{self.bytes_index:,.0f} B", ""),
            row("  + lead record (7-field hash with TTL)", f"{self.bytes_record:,.0f} B", ""),
            row("  = per open lead", f"{per_lead:,.0f} B", ""),
            row("load (direct, pipelined)", f"{o.timers:,} leads in {self.load_seconds:.1f} s "
                f"({o.timers / self.load_seconds:,.0f}/s)", ""),
            row(f"steady {o.rate:,g}/s due for {o.seconds:g} s: lateness", self.steady.text(),
                _verdict(f"p99 < {TARGET_STEADY_P99:g} s", self.steady.p99 + grace < TARGET_STEADY_P99)),
            row("  p99 + grace", _dur(self.steady.p99 + grace), ""),
            row("  CPU", self.steady_cpu.text(), ""),
            row(f"burst {o.burst:,} due at once: all claimed+acked", _dur(self.burst_clear_seconds), ""),
            row("  lateness", self.burst.text(),
                _verdict(f"p99 < {TARGET_BURST_P99:g} s", self.burst.p99 + grace < TARGET_BURST_P99)),
            row("  p99 + grace", _dur(self.burst.p99 + grace), ""),
            row("  CPU", self.burst_cpu.text(), ""),
            row("claimed (steady + burst)", f"{self.claimed:,} of {self.expected:,}, "
                f"{self.duplicates} duplicates, {self.forks} forks while measuring", ""),
            row("touch, sequential", seq.text(), ""),
            row("  CPU", seq.cpu.text(), ""),
            row(f"touch, {TOUCH_TASKS} concurrent tasks", conc.text(), ""),
            row("  CPU", conc.cpu.text(), ""),
            row("  clocks stopped (met)", f"{seq.met + conc.met:,} of {seq.count + conc.count:,}", ""),
        ]  # fmt: skip


def _dur(seconds: float) -> str:
    if math.isnan(seconds):
        return "-"
    return f"{seconds * 1000:,.0f} ms" if seconds < 1 else f"{seconds:,.2f} s"


def _verdict(target: str, ok: bool) -> str:
    return f"{target}: {'ok' if ok else 'MISSED'}"


def run(
    options: SlaOptions, redis: RedisSettings | None = None, progress: Callable[[str], None] | None = None
) -> SlaResult:
    """Run the scenario against `redis` (its URL and TLS settings), or a private
    redis-server started for it."""
    say = progress or (lambda _: None)
    if redis is not None:
        shared = "redis-server at --redis-url (shared: memory figures include other writers)"
        return asyncio.run(_run(options, redis, shared, say, clean_up=True))
    with tempfile.TemporaryDirectory(prefix="leadrouter-bench-") as tmp:
        server = _private_server(Path(tmp))
        try:
            private = "private redis-server, appendonly everysec"
            own = RedisSettings(url=SecretStr(server.url))
            return asyncio.run(_run(options, own, private, say, clean_up=False))
        finally:
            server.stop()


def _private_server(workdir: Path) -> RedisServer:
    for attempt in range(3):
        server = RedisServer(workdir, port=free_port(), owner_pid=os.getpid())
        try:
            server.start()
        except PortInUseError:
            if attempt == 2:
                raise
            continue
        return server
    raise AssertionError("unreachable")


@contextlib.asynccontextmanager
async def _client(conn: RedisSettings) -> AsyncIterator[Redis]:
    # No socket timeouts, as before: a pipelined load of a million timers takes a while.
    client = make_redis(conn, socket_timeout=None, socket_connect_timeout=None)
    try:
        yield client
    finally:
        await client.aclose()


async def _run(
    options: SlaOptions, conn: RedisSettings, server: str, say: Callable[[str], None], *, clean_up: bool
) -> SlaResult:
    keys = RedisKeys(f"bench-sla-{uuid.uuid4().hex[:8]}")
    sla = SlaSettings()
    async with _client(conn) as redis:
        try:
            info = await redis.info("server")
            server = f"redis {info['redis_version']}, {server}"
            return await _measure(options, conn, redis, keys, sla, server, say)
        finally:
            if clean_up:
                say("deleting the benchmark's keys")
                await delete_keys(redis, keys.prefix)


async def _measure(
    o: SlaOptions, conn: RedisSettings, redis: Redis, keys: RedisKeys, sla: SlaSettings, server: str,
    say: Callable[[str], None],
) -> SlaResult:  # fmt: skip
    ids = [f"bench-{i:07d}" for i in range(o.timers)]
    buckets = [bucket_of(lead, o.buckets) for lead in ids]
    far_ms = int(time.time() * 1000) + 3_600_000
    step = max(1, 86_400_000 // o.timers)  # the far deadlines spread over a day
    due = [far_ms + i * step for i in range(o.timers)]

    say(f"loading {o.timers:,} timers")
    base = await _used_memory(redis)
    started = time.perf_counter()
    async with _client(conn) as loader:
        await _load_timers(loader, keys, ids, buckets, due, o.buckets)
    loaded = time.perf_counter() - started
    with_timers = await _used_memory(redis)
    async with _client(conn) as loader:
        await _load_index(loader, keys, ids, due)
    with_index = await _used_memory(redis)
    say(f"loading {o.timers:,} lead records")
    started = time.perf_counter()
    async with _client(conn) as loader:
        await _load_records(loader, keys, ids, due)
    loaded += time.perf_counter() - started
    with_records = await _used_memory(redis)
    await _quiet_persistence(redis)

    timers = RedisTimers(redis, keys, RedisSettings().retention_seconds)
    timers.buckets = o.buckets
    claims = _Claims()
    load_before = os.getloadavg()[0]
    forks = int((await redis.info("stats"))["total_forks"])
    measured = o.steady + o.burst
    t0_ms, burst_ms = await _arm_window(o, redis, keys, ids[:measured], buckets[:measured])
    stop = asyncio.Event()
    sweeper = asyncio.create_task(_sweep(timers, sla, stop, claims), name="bench-sweeper")
    try:
        say(f"steady: {o.rate:,g} timers/s fall due for {o.seconds:g} s")
        await _sleep_until(t0_ms / 1000)
        mark = await _cpu_mark(redis)
        await claims.wait(o.steady, (burst_ms - 500) / 1000)
        steady_cpu = await _cpu_since(redis, mark)
        say(f"burst: {o.burst:,} timers fall due at once")
        await _sleep_until(burst_ms / 1000 - 0.05)
        mark = await _cpu_mark(redis)
        await claims.wait(measured, burst_ms / 1000 + 120)
        burst_cpu = await _cpu_since(redis, mark)
    finally:
        stop.set()
        await sweeper
    forks = int((await redis.info("stats"))["total_forks"]) - forks
    burst_acks = [a for d, a in zip(claims.due_ms, claims.acked_at, strict=True) if d == burst_ms]

    say("touch: sequential, then concurrent")
    open_leads = [(ids[i], _rep(i)) for i in range(measured, o.timers)]
    half = len(open_leads) // 2
    sequential = await _touches(redis, timers, open_leads[:half], 1)
    concurrent = await _touches(redis, timers, open_leads[half:], TOUCH_TASKS)
    load = (load_before, os.getloadavg()[0])
    n = o.timers
    return SlaResult(
        o, sla, server, len(ids[0]), loaded,
        (with_timers - base) / n, (with_index - with_timers) / n, (with_records - with_index) / n,
        Spread.of(claims.lateness(lambda d: d < burst_ms)), steady_cpu,
        Spread.of(claims.lateness(lambda d: d == burst_ms)),
        max(burst_acks) - burst_ms / 1000 if burst_acks else math.nan, burst_cpu,
        len(claims.due_ms), claims.duplicates, forks,
        sequential, concurrent, load,
    )  # fmt: skip


async def _arm_window(
    o: SlaOptions, redis: Redis, keys: RedisKeys, ids: Sequence[str], buckets: Sequence[int]
) -> tuple[int, int]:
    """Re-arm the measured timers, `steady` due evenly over the window from t0, then `burst`
    at once a second after it; returns (t0, burst) in epoch ms. Runs before the sweeper
    starts, so one that overruns t0 is simply done again with more time."""
    margin = ARM_MARGIN_S
    for _ in range(4):
        started = time.time()
        t0_ms = int((started + margin) * 1000)
        burst_ms = t0_ms + int(o.seconds * 1000) + 1000
        due = [t0_ms + int(i * 1000 / o.rate) for i in range(o.steady)] + [burst_ms] * o.burst
        await _rearm(redis, keys, ids, buckets, due, o.buckets)
        if time.time() * 1000 < t0_ms - 100:
            return t0_ms, burst_ms
        margin = ARM_MARGIN_S + 2 * (time.time() - started)
    raise RuntimeError("could not re-arm the measured timers ahead of their deadlines")


def _rep(i: int) -> str:
    return f"rep-{i % REPS:04d}"


async def _load_timers(
    redis: Redis, keys: RedisKeys, ids: Sequence[str], buckets: Sequence[int], due: Sequence[int], count: int
) -> None:
    """ZADD `breach:1:<lead>` into each lead's bucket, as assign.lua does, CHUNK members a command."""
    per_bucket: list[dict[str, int]] = [{} for _ in range(count)]
    for lead, bucket, at in zip(ids, buckets, due, strict=True):
        per_bucket[bucket][f"breach:1:{lead}"] = at
    async with redis.pipeline(transaction=False) as pipe:
        pending = 0
        for bucket, members in enumerate(per_bucket):
            items = list(members.items())
            for i in range(0, len(items), CHUNK):
                pipe.zadd(keys.due(bucket), dict(items[i : i + CHUNK]), nx=True)
                pending += 1
                if pending == PIPELINE:
                    await pipe.execute()
                    pending = 0
        await pipe.execute()


async def _load_index(redis: Redis, keys: RedisKeys, ids: Sequence[str], due: Sequence[int]) -> None:
    """The `untouched` index assign.lua keeps: lead -> assigned_ms."""
    async with redis.pipeline(transaction=False) as pipe:
        for i in range(0, len(ids), CHUNK):
            chunk = zip(ids[i : i + CHUNK], due[i : i + CHUNK], strict=True)
            pipe.zadd(keys.untouched, {lead: at - FIRST_TOUCH_MS for lead, at in chunk}, nx=True)
            if (i // CHUNK + 1) % PIPELINE == 0:
                await pipe.execute()
        await pipe.execute()


async def _load_records(redis: Redis, keys: RedisKeys, ids: Sequence[str], due: Sequence[int]) -> None:
    """Lead hashes with the fields claim.lua and touch.lua read, and the reps' open counts."""
    script = redis.register_script(_LOAD_LEADS)
    retention = RedisSettings().retention_seconds
    open_counts: dict[str, int] = {}
    async with redis.pipeline(transaction=False) as pipe:
        for i in range(0, len(ids), CHUNK):
            args: list[str | int] = [keys.lead_prefix(), retention]
            for j in range(i, min(i + CHUNK, len(ids))):
                rep = _rep(j)
                open_counts[rep] = open_counts.get(rep, 0) + 1
                args += [ids[j], rep, f"team-{j % REPS % TEAMS}", due[j] - FIRST_TOUCH_MS, due[j]]
            await script(keys=[], args=args, client=pipe)
            if (i // CHUNK + 1) % PIPELINE == 0:
                await pipe.execute()
        pipe.hset(keys.open, items=[x for pair in open_counts.items() for x in pair])
        await pipe.execute()


async def _rearm(
    redis: Redis, keys: RedisKeys, ids: Sequence[str], buckets: Sequence[int], due: Sequence[int], count: int
) -> None:
    """Move open timers to new deadlines (the lead records' due_ms with them)."""
    script = redis.register_script(_REARM)
    bucket_keys = [keys.due(bucket) for bucket in range(count)]
    async with redis.pipeline(transaction=False) as pipe:
        for i in range(0, len(ids), CHUNK):
            args: list[str | int] = [keys.lead_prefix(), FIRST_TOUCH_MS]
            for j in range(i, min(i + CHUNK, len(ids))):
                args += [ids[j], buckets[j] + 1, due[j]]
            await script(keys=bucket_keys, args=args, client=pipe)
        await pipe.execute()


async def _sweep(timers: RedisTimers, sla: SlaSettings, stop: asyncio.Event, claims: _Claims) -> None:
    """Sweeper.run: CLAIM_LOOPS sweep loops at once."""
    await asyncio.gather(*(_sweep_loop(timers, sla, stop, claims) for _ in range(CLAIM_LOOPS)))


async def _sweep_loop(timers: RedisTimers, sla: SlaSettings, stop: asyncio.Event, claims: _Claims) -> None:
    """Sweeper.run and sweep_once with the cutoff at now and publishing left out: a full
    claim is acked while the next claim runs, up to PUBLISH_DEPTH batches at once."""
    lease_ms = int(sla.claim_lease_seconds * 1000)
    acking: set[asyncio.Task[None]] = set()

    async def ack(batch: list[tuple[DueTimer, float]], now_ms: int) -> None:
        # Here the real sweeper publishes and awaits the broker's acknowledgements.
        await timers.ack([(timer.member, False) for timer, _ in batch], now_ms)
        claims.add(batch, time.time())

    while not stop.is_set():
        for task in [t for t in acking if t.done()]:
            acking.discard(task)
            task.result()
        now_ms = int(time.time() * 1000)
        claimed = await timers.claim_buckets(dict.fromkeys(range(timers.buckets), now_ms), now_ms, lease_ms,
                                             sla.claim_batch)  # fmt: skip
        claimed_at = time.time()
        batch: list[tuple[DueTimer, float]] = [(timer, claimed_at) for found in claimed for timer in found]
        if batch:
            acking.add(asyncio.create_task(ack(batch, now_ms)))
            if len(batch) >= sla.claim_batch:
                if len(acking) >= PUBLISH_DEPTH:
                    await asyncio.wait(acking, return_when=asyncio.FIRST_COMPLETED)
                continue  # more are due: sweep again at once
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=sla.sweep_interval_seconds)
    if acking:
        await asyncio.wait(acking)


async def _touches(
    redis: Redis, timers: RedisTimers, leads: Sequence[tuple[str, str]], tasks: int
) -> TouchRun:
    """Touch each lead once (by its rep) from `tasks` tasks for TOUCH_SECONDS or until all are."""
    pending = iter(leads)
    done = met = 0
    deadline = time.perf_counter() + TOUCH_SECONDS

    async def toucher() -> None:
        nonlocal done, met
        for lead, rep in pending:  # shared: every lead is touched by one task only
            result = await timers.touch(lead, rep, int(time.time() * 1000))
            done += 1
            met += result.outcome == "met"
            if time.perf_counter() >= deadline:
                return

    mark = await _cpu_mark(redis)
    await asyncio.gather(*(toucher() for _ in range(tasks)))
    seconds = max(time.perf_counter() - mark[2], 1e-9)
    return TouchRun(done, seconds, met, await _cpu_since(redis, mark))


async def _cpu_mark(redis: Redis) -> tuple[float, float, float]:
    return await _redis_cpu(redis), time.process_time(), time.perf_counter()


async def _cpu_since(redis: Redis, mark: tuple[float, float, float]) -> Cpu:
    redis_cpu, process, started = mark
    wall = time.perf_counter() - started
    return Cpu((await _redis_cpu(redis) - redis_cpu) / wall, (time.process_time() - process) / wall)


async def _redis_cpu(redis: Redis) -> float:
    info = await redis.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


async def _sleep_until(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - time.time()))


async def _used_memory(redis: Redis) -> int:
    """INFO used_memory once it settles (a closed loader's buffers, incremental rehashing)."""
    last = -1
    for _ in range(20):
        now = int((await redis.info("memory"))["used_memory"])
        if abs(now - last) < 4096:
            return now
        last = now
        await asyncio.sleep(0.25)
    return last


async def _quiet_persistence(redis: Redis) -> None:
    """Let an AOF rewrite the load set off finish, so its fork does not land in the measurements."""
    for _ in range(600):
        info = await redis.info("persistence")
        if not int(info.get("aof_rewrite_in_progress", 0)) and not int(info.get("aof_rewrite_scheduled", 0)):
            return
        await asyncio.sleep(0.1)


async def delete_keys(redis: Redis, prefix: str) -> None:
    """Every key under `prefix`, hash-tagged ones included: a bench cleans up after itself."""
    for pattern in (f"{prefix}:*", f"{{{prefix}:*"):
        batch: list[bytes] = []
        async for key in redis.scan_iter(match=pattern, count=10_000):
            batch.append(key)
            if len(batch) >= 10_000:
                await redis.unlink(*batch)
                batch = []
        if batch:
            await redis.unlink(*batch)
