"""Scenario `pipeline`: leads through Kafka and Redis, from publish to assignment.

One router process (`leadrouter worker --role router`, a subprocess: its own core
when there is one) on topics and Redis keys of its own, against the configured
broker and Redis. The bench process publishes `lead.created` events and reads the
`assignments` topic back, timing each lead from the `send` call to the moment its
assignment (or queue) event was read:

- max: `count` leads published as fast as the producer takes them; the rate is
  count / (last assignment read - first publish).
- fixed rates: `rate` leads a second for `duration` seconds each; latency p50, p99
  and max publish -> assignment read.

Then the same stream goes through the ceiling, `router.bench.bare` (a bare aiokafka
consume-and-produce loop with the router's Kafka client settings, copying each
record to an output topic) on topics of the same partition count on the same
broker, and leadrouter's rate is reported as a share of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import SecretStr
from redis.asyncio import Redis

from router.bench.sla import delete_keys
from router.bench.synthetic import leads, rulebook
from router.devinfra import ensure_topics, free_port
from router.kafka import client_options
from router.redis_client import make_redis
from router.settings import KafkaSettings, RedisSettings, TopicSettings

TARGET_SHARE = 0.5  # of the bare aiokafka ceiling, one process
TARGET_P99 = 0.050  # s, publish -> assignment at 1,000 leads/s
TARGET_RATE = 1000.0
WARMUP = 300  # leads through each system before anything is timed
TEMPLATES = 5000  # distinct synthetic leads; ids are unique per event
SETTLE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class PipelineOptions:
    count: int = 20_000
    rates: tuple[float, ...] = (100.0, 1000.0, 5000.0)
    duration: float = 10.0
    partitions: int = 6
    drain_seconds: float = 120.0  # longest wait for the last assignments of a phase
    ceiling: bool = True

    def problem(self) -> str | None:
        if self.count < 1 or self.duration <= 0 or self.partitions < 1 or self.drain_seconds <= 0:
            return "--count, --duration, --partitions and --drain-seconds must be positive"
        if not self.rates or min(self.rates) <= 0:
            return "--rates must be positive numbers"
        return None


@dataclass(frozen=True, slots=True)
class Latency:
    count: int
    expected: int
    p50: float
    p99: float
    max: float
    rate: float  # leads read back per second over the phase

    @classmethod
    def of(cls, values: Sequence[float], expected: int, seconds: float) -> Latency:
        ranked = sorted(values)
        if not ranked:
            return cls(0, expected, math.nan, math.nan, math.nan, 0.0)

        def rank(q: float) -> float:
            return ranked[max(0, math.ceil(q * len(ranked)) - 1)]

        return cls(len(ranked), expected, rank(0.5), rank(0.99), ranked[-1], len(ranked) / seconds)

    def text(self) -> str:
        missing = f", {self.expected - self.count:,} MISSING" if self.count < self.expected else ""
        return f"p50 {_ms(self.p50)}, p99 {_ms(self.p99)}, max {_ms(self.max)}{missing}"


@dataclass(frozen=True, slots=True)
class SystemRun:
    """One system's figures: the max phase, then one Latency per fixed rate."""

    name: str
    max_rate: float
    max_count: int
    max_latency: Latency
    max_cpu: float  # share of one core used by the system's process in the max phase
    cpu_per_item: float  # CPU seconds of the system's process per lead in the max phase
    redis_cpu: float
    rates: tuple[tuple[float, Latency], ...]


@dataclass(frozen=True, slots=True)
class PipelineResult:
    options: PipelineOptions
    router: SystemRun
    ceiling: SystemRun | None
    load: tuple[float, float]
    rulebook: str

    @property
    def share(self) -> float | None:
        if self.ceiling is None or not self.ceiling.max_rate:
            return None
        return self.router.max_rate / self.ceiling.max_rate

    def lines(self) -> list[str]:
        o, r, c = self.options, self.router, self.ceiling

        def row(figure: str, mine: str, ceiling: str, target: str = "") -> str:
            return f"  {figure:<30} {mine:<40} {ceiling:<40} {target}".rstrip()

        lines = [
            f"pipeline: one router process (subprocess) vs a bare aiokafka consume-and-produce loop,"
            f" same broker, topics of {o.partitions} partitions",
            f"  rulebook: {self.rulebook}",
            "  latency: from the producer's send call to the assignment read back by this bench process",
            f"  1-minute load average {self.load[0]:.1f} before, {self.load[1]:.1f} after, on "
            f"{os.cpu_count()} cores shared by Kafka, redis-server, the system under test and this",
            "  bench process (publisher + reader): other work on the machine slows every figure",
            row("figure", "leadrouter", "bare aiokafka (ceiling)" if c else "(ceiling not run)", "target"),
            row(
                f"max sustained ({o.count:,} leads)",
                f"{r.max_rate:,.0f} leads/s",
                f"{c.max_rate:,.0f} records/s" if c else "",
            ),
        ]
        if (share := self.share) is not None:
            lines.append(
                row("  share of the ceiling", f"{share:.0%}", "", _verdict(">= 50%", share >= TARGET_SHARE))
            )
        lines += [
            row("  latency while saturated", r.max_latency.text(), c.max_latency.text() if c else ""),
            row("  CPU of the process", _core(r.max_cpu), _core(c.max_cpu) if c else ""),
            row("  CPU per lead", _us(r.cpu_per_item), _us(c.cpu_per_item) if c else ""),
            row("  CPU of redis-server", _core(r.redis_cpu), _core(c.redis_cpu) if c else ""),
        ]
        ceiling_rates = dict(c.rates) if c else {}
        for rate, latency in r.rates:
            target = ""
            if rate == TARGET_RATE:
                target = _verdict(
                    "p99 < 50 ms", latency.p99 < TARGET_P99 and latency.count == latency.expected
                )
            other = ceiling_rates.get(rate)
            lines.append(
                row(
                    f"{rate:,g}/s for {o.duration:g} s (n={latency.expected:,})",
                    latency.text(),
                    other.text() if other else "",
                    target,
                )
            )
            if latency.count and latency.rate < rate * 0.9:
                lines.append(row("  read back at", f"{latency.rate:,.0f}/s: fell behind", ""))
        return lines


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f} us"


def _core(share: float) -> str:
    return f"{share:.0%} of a core"


def _verdict(target: str, ok: bool) -> str:
    return f"{target}: {'ok' if ok else 'MISSED'}"


def _ms(seconds: float) -> str:
    if math.isnan(seconds):
        return "-"
    if seconds >= 1:
        return f"{seconds:,.2f} s"
    return f"{seconds * 1000:,.1f} ms"


def bench_rulebook() -> dict[str, Any]:
    """The synthetic 200-rep, 50-route, 2,000-account rulebook, with room for every lead:
    capacities far above the run's size and no working hours or daily caps, so each
    lead is assigned on its merits (leads nobody covers go to the triage queue)."""
    book = rulebook()
    for rep in book["reps"]:
        rep["capacity"] = 10_000_000
        rep.pop("hours", None)
        rep.pop("daily_cap", None)
    return book


class _Reader:
    """Reads an output topic and notes when each key was first seen."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer = consumer
        self.seen: dict[bytes, float] = {}
        self.progress = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            batches = await self.consumer.getmany(timeout_ms=100, max_records=5000)
            at = time.time()
            for records in batches.values():
                for record in records:
                    self.seen.setdefault(record.key, at)
            if batches:
                self.progress.set()

    async def wait_for(self, keys: Sequence[bytes], deadline: float) -> None:
        remaining = list(keys)
        while remaining and (left := deadline - time.time()) > 0:
            remaining = [k for k in remaining if k not in self.seen]
            if not remaining:
                return
            self.progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.progress.wait(), min(left, 1.0))


class _Leads:
    def __init__(self, run: str) -> None:
        self.run = run
        self.templates = [lead.model_dump(mode="json", exclude_none=True) for lead, _ in leads(TEMPLATES)]

    def event(self, phase: str, i: int) -> tuple[bytes, bytes]:
        lead_id = f"{self.run}-{phase}-{i:07d}"
        lead = {**self.templates[i % TEMPLATES], "id": lead_id}
        occurred = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"
        event = {"event_id": f"{lead_id}-c", "type": "lead.created", "occurred_at": occurred, "lead": lead}
        return lead_id.encode(), orjson.dumps(event)


@dataclass
class _System:
    """The system under test: one process per command, all on the same topics."""

    name: str
    commands: list[list[str]]
    env: dict[str, str]
    source: str
    sink: str
    log_dir: Path
    http_ports: list[int] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list, repr=False)

    def log(self, i: int) -> Path:
        return self.log_dir / f"{self.name.replace(' ', '-')}-{i}.log"

    def start(self) -> None:
        for i, command in enumerate(self.commands):
            with self.log(i).open("wb") as log:
                self.procs.append(
                    subprocess.Popen(  # noqa: S603 - this interpreter, our own module
                        command, env=self.env, stdout=log, stderr=subprocess.STDOUT
                    )
                )

    def check(self) -> None:
        for i, proc in enumerate(self.procs):
            if proc.poll() is not None:
                tail = self.log(i).read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{self.name} exited {proc.returncode}:\n{tail}")

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def cpu_seconds(self) -> float:
        """CPU time of every process of the system so far."""
        total = 0.0
        for proc in self.procs:
            try:
                fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                return math.nan
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total


async def _redis_cpu(redis: Redis) -> float:
    info = await redis.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


async def _measure(
    system: _System, stream: _Leads, o: PipelineOptions, kafka: KafkaSettings, redis: Redis,
    say: Callable[[str], None],
) -> SystemRun:  # fmt: skip
    options = client_options(kafka)
    producer = AIOKafkaProducer(**options, acks="all", linger_ms=1, max_batch_size=262_144)
    consumer = AIOKafkaConsumer(
        system.sink, **options, auto_offset_reset="earliest", fetch_max_wait_ms=100,
        max_partition_fetch_bytes=4_194_304,
    )  # fmt: skip
    await producer.start()
    await consumer.start()
    reader = _Reader(consumer)
    stop = asyncio.Event()
    reading = asyncio.create_task(reader.run(stop))
    try:
        system.start()
        await _wait_ready(system)
        say(f"{system.name}: warming up")
        keys = [await _send(producer, system.source, stream.event("warm", i), {}) for i in range(WARMUP)]
        await producer.flush()
        await reader.wait_for(keys, time.time() + 90)
        system.check()
        if any(k not in reader.seen for k in keys):
            raise RuntimeError(f"{system.name}: warm-up leads not read back within 90 s")
        if len(system.procs) > 1:
            await asyncio.sleep(SETTLE_SECONDS)  # the group's last rebalance, after every member joined

        say(f"{system.name}: {o.count:,} leads as fast as they go")
        sent: dict[bytes, float] = {}
        cpu0, redis0 = system.cpu_seconds(), await _redis_cpu(redis)
        started = time.time()
        for i in range(o.count):
            await _send(producer, system.source, stream.event("max", i), sent)
        await producer.flush()
        await reader.wait_for(list(sent), time.time() + o.drain_seconds)
        read = [reader.seen[k] for k in sent if k in reader.seen]
        last = max(read) if read else time.time()
        wall = max(last - started, 1e-9)
        cpu_seconds = system.cpu_seconds() - cpu0
        cpu = cpu_seconds / wall
        redis_cpu = (await _redis_cpu(redis) - redis0) / wall
        max_latency = Latency.of(
            [reader.seen[k] - t for k, t in sent.items() if k in reader.seen], o.count, wall
        )
        system.check()

        rates = []
        for rate in o.rates:
            say(f"{system.name}: {rate:,g} leads/s for {o.duration:g} s")
            await asyncio.sleep(1.0)  # let the previous phase's tail settle
            sent = {}
            started = time.time()
            await _paced(producer, system.source, stream, f"r{rate:g}", rate, o.duration, sent)
            await reader.wait_for(list(sent), time.time() + o.drain_seconds)
            read = [reader.seen[k] for k in sent if k in reader.seen]
            span = max((max(read) if read else time.time()) - started, 1e-9)
            latencies = [reader.seen[k] - t for k, t in sent.items() if k in reader.seen]
            rates.append((rate, Latency.of(latencies, len(sent), span)))
            system.check()
        return SystemRun(
            system.name,
            max_latency.count / wall,
            o.count,
            max_latency,
            cpu,
            cpu_seconds / o.count,
            redis_cpu,
            tuple(rates),
        )
    finally:
        system.stop()
        stop.set()
        await reading
        await consumer.stop()
        await producer.stop()


async def _send(
    producer: AIOKafkaProducer, topic: str, kv: tuple[bytes, bytes], sent: dict[bytes, float]
) -> bytes:
    key, value = kv
    sent[key] = time.time()
    await producer.send(topic, value=value, key=key)
    return key


async def _paced(
    producer: AIOKafkaProducer, topic: str, stream: _Leads, phase: str, rate: float, duration: float,
    sent: dict[bytes, float],
) -> None:  # fmt: skip
    total = round(rate * duration)
    started = time.perf_counter()
    i = 0
    while i < total:
        due = min(total, int((time.perf_counter() - started) * rate) + 1)
        while i < due:
            await _send(producer, topic, stream.event(phase, i), sent)
            i += 1
        await asyncio.sleep(0.001)
    await producer.flush()


def _env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADROUTER_")}
    env.update({f"LEADROUTER_{k.upper()}": v for k, v in settings.items()})
    env["LEADROUTER_LOG__FORMAT"] = "json"
    return env


_KAFKA_CONNECTION = (
    "bootstrap_servers", "security_protocol", "sasl_mechanism", "sasl_username", "sasl_password",
    "ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_password", "ssl_check_hostname",
)  # fmt: skip
_REDIS_CONNECTION = ("url", "ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_password", "ssl_check_hostname")


def connection_env(kafka: KafkaSettings, redis: RedisSettings) -> dict[str, str]:
    """The settings (for `_env`) that connect a subprocess as `kafka` and `redis` do:
    address, SASL and TLS. The rest of the environment's LEADROUTER_* stays out."""
    env: dict[str, str] = {}
    sections: tuple[tuple[str, KafkaSettings | RedisSettings, tuple[str, ...]], ...] = (
        ("kafka", kafka, _KAFKA_CONNECTION),
        ("redis", redis, _REDIS_CONNECTION),
    )
    for section, model, names in sections:
        for name in names:
            value = getattr(model, name)
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            env[f"{section}__{name}"] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
            return int(resp.status) == 200
    except OSError:
        return False


async def _wait_ready(system: _System, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    waiting = list(system.http_ports)
    while waiting and time.monotonic() < deadline:
        system.check()
        waiting = [port for port in waiting if not await asyncio.to_thread(_ready, port)]
        if waiting:
            await asyncio.sleep(0.2)
    if waiting:
        raise RuntimeError(
            f"{system.name} not ready within {seconds:.0f} s:\n{system.log(0).read_text()[-3000:]}"
        )


def _routers(
    copies: int, run: str, topics: TopicSettings, connection: dict[str, str], redis_prefix: str,
    book_path: Path, log_dir: Path,
) -> _System:  # fmt: skip
    ports = [free_port() for _ in range(copies)]
    worker = [sys.executable, "-m", "router.cli", "worker", "--role", "router", "--http-port"]
    env = _env(**connection, kafka__group_prefix=f"bench-{run}", redis__prefix=redis_prefix,
               topics__prefix=topics.prefix, topics__partitions=str(topics.partitions),
               rulebook=str(book_path))  # fmt: skip
    return _System(
        "leadrouter", [[*worker, str(port)] for port in ports], env, topics.name(topics.leads),
        topics.name(topics.assignments), log_dir, ports,
    )  # fmt: skip


async def run_async(
    o: PipelineOptions, kafka: KafkaSettings, redis_conn: RedisSettings, say: Callable[[str], None]
) -> PipelineResult:
    run = uuid.uuid4().hex[:8]
    topics = TopicSettings(prefix=f"bench-{run}-", partitions=o.partitions)
    bare_in, bare_out = f"bench-{run}-bare-leads", f"bench-{run}-bare-out"
    created = {**topics.all_topics(), bare_in: o.partitions, bare_out: o.partitions}
    redis_prefix = f"bench-pipeline-{run}"
    connection = connection_env(kafka, redis_conn)
    say(f"creating topics bench-{run}-*")
    await ensure_topics(kafka.bootstrap_servers, created, options=client_options(kafka))
    redis = make_redis(redis_conn)
    load_before = os.getloadavg()[0]
    stream = _Leads(run)
    with tempfile.TemporaryDirectory(prefix="leadrouter-bench-") as tmp:
        book_path = Path(tmp) / "rulebook.yaml"
        book_path.write_text(yaml.safe_dump(bench_rulebook(), sort_keys=False))
        router = _routers(1, run, topics, connection, redis_prefix, book_path, Path(tmp))
        bare = _System(
            "bare aiokafka",
            [[sys.executable, "-m", "router.bench.bare", f"bench-{run}", bare_in, bare_out]],
            _env(**connection), bare_in, bare_out, Path(tmp),
        )  # fmt: skip
        try:
            mine = await _measure(router, stream, o, kafka, redis, say)
            ceiling = await _measure(bare, stream, o, kafka, redis, say) if o.ceiling else None
        finally:
            router.stop()
            bare.stop()
            await delete_keys(redis, redis_prefix)
            await redis.aclose()
            await _delete_topics(kafka, list(created))
    book = bench_rulebook()
    described = (
        f"synthetic, {len(book['reps'])} reps, {len(book['routes'])} routes, "
        f"{len(book['named_accounts']):,} named accounts (capacities raised, no hours or daily caps)"
    )
    return PipelineResult(o, mine, ceiling, (load_before, os.getloadavg()[0]), described)


async def _delete_topics(kafka: KafkaSettings, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(**client_options(kafka))
    try:
        await admin.start()
        await admin.delete_topics(names)
    except Exception:  # noqa: BLE001, S110 - best effort: a leftover bench topic is harmless
        pass
    finally:
        await admin.close()


def run(
    o: PipelineOptions, kafka: KafkaSettings, redis: RedisSettings, say: Callable[[str], None]
) -> PipelineResult:
    return asyncio.run(run_async(o, kafka, redis, say))


@dataclass(frozen=True, slots=True)
class ScaleResult:
    partitions: int
    count: int
    rate: float
    duration: float
    runs: tuple[tuple[int, SystemRun], ...]  # (router processes, figures)
    load: tuple[float, float]

    def lines(self) -> list[str]:
        counts = ", ".join(str(n) for n, _ in self.runs)

        def row(*cells: str) -> str:
            widths = (10, 18, 20, 14)
            head = "".join(f"{c:<{w}}" for c, w in zip(cells, widths, strict=False))
            return f"  {head}{cells[-1] if len(cells) > len(widths) else ''}".rstrip()

        lines = [
            f"scale: {counts} router processes (subprocesses, one consumer group) on topics of "
            f"{self.partitions} partitions, {self.count:,} leads as fast as they go, then "
            f"{self.rate:,g} leads/s for {self.duration:g} s",
            f"  1-minute load average {self.load[0]:.1f} before, {self.load[1]:.1f} after, on "
            f"{os.cpu_count()} cores shared by Kafka, redis-server, the routers and this bench process",
            row(
                "routers",
                "max sustained",
                "CPU (all routers)",
                "CPU per lead",
                f"latency at {self.rate:,g}/s",
            ),
        ]
        for n, run in self.runs:
            latency = run.rates[0][1] if run.rates else None
            lines.append(
                row(str(n), f"{run.max_rate:,.0f} leads/s", _core(run.max_cpu).replace(" of a core", " core"),
                    _us(run.cpu_per_item), latency.text() if latency else "")
            )  # fmt: skip
        return lines


async def run_scale_async(
    processes: Sequence[int], o: PipelineOptions, kafka: KafkaSettings, redis_conn: RedisSettings,
    say: Callable[[str], None],
) -> ScaleResult:  # fmt: skip
    redis = make_redis(redis_conn)
    connection = connection_env(kafka, redis_conn)
    load_before = os.getloadavg()[0]
    runs = []
    try:
        for copies in processes:
            run = uuid.uuid4().hex[:8]
            topics = TopicSettings(prefix=f"bench-{run}-", partitions=o.partitions)
            redis_prefix = f"bench-pipeline-{run}"
            created = topics.all_topics()
            say(f"{copies} router process(es): creating topics bench-{run}-*")
            await ensure_topics(kafka.bootstrap_servers, created, options=client_options(kafka))
            with tempfile.TemporaryDirectory(prefix="leadrouter-bench-") as tmp:
                book_path = Path(tmp) / "rulebook.yaml"
                book_path.write_text(yaml.safe_dump(bench_rulebook(), sort_keys=False))
                routers = _routers(copies, run, topics, connection, redis_prefix, book_path, Path(tmp))
                routers.name = f"{copies} router(s)"
                try:
                    runs.append((copies, await _measure(routers, _Leads(run), o, kafka, redis, say)))
                finally:
                    routers.stop()
                    await delete_keys(redis, redis_prefix)
                    await _delete_topics(kafka, list(created))
    finally:
        await redis.aclose()
    rate = o.rates[0] if o.rates else 0.0
    return ScaleResult(
        o.partitions, o.count, rate, o.duration, tuple(runs), (load_before, os.getloadavg()[0])
    )


def run_scale(
    processes: Sequence[int], o: PipelineOptions, kafka: KafkaSettings, redis: RedisSettings,
    say: Callable[[str], None],
) -> ScaleResult:  # fmt: skip
    return asyncio.run(run_scale_async(processes, o, kafka, redis, say))
