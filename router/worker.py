"""Compose and run a worker process: the router, the monitor, or both.

Explicit lifecycle: every client is opened here and closed in `finally`; every
task is kept and awaited; the first task to fail stops the others and the
process exits non-zero so its supervisor restarts it (no half-alive worker).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from monitors.http import make_app, start_http
from monitors.metrics import Metrics
from monitors.sweeper import Sweeper
from monitors.timers import RedisTimers
from monitors.touch import TouchProcessor
from monitors.watermark import Watermarks
from router.assignments import AssignmentStore
from router.consume import ConsumeLoop
from router.kafka import make_consumer, make_producer
from router.logs import log
from router.redis_keys import RedisKeys
from router.routing import RoutingProcessor
from router.settings import Settings
from rules.rulebook import Rulebook, parse_rulebook

Role = Literal["router", "monitor", "all"]
logger = logging.getLogger("leadrouter.worker")

# A loop that has not completed a poll for this long is not ready.
STALL_SECONDS = 30.0


def load_rulebook(path: Path) -> Rulebook:
    return parse_rulebook(path.read_text(encoding="utf-8"), str(path))


def make_redis(settings: Settings) -> Redis:
    return Redis.from_url(
        settings.redis.url.get_secret_value(),
        socket_timeout=settings.redis.socket_timeout_seconds,
        socket_connect_timeout=settings.redis.socket_timeout_seconds,
        health_check_interval=10,
    )


async def run_worker(
    settings: Settings,
    role: Role,
    stop: asyncio.Event,
    registry: CollectorRegistry | None = None,
    on_http_port: asyncio.Future[int] | None = None,
) -> None:
    rulebook = load_rulebook(settings.rulebook)
    registry = registry if registry is not None else CollectorRegistry()
    metrics = Metrics(registry)
    keys = RedisKeys(settings.redis.prefix)
    topics = settings.topics
    kafka = settings.kafka
    redis = make_redis(settings)
    producer = make_producer(kafka)
    loops: list[ConsumeLoop] = []
    sweepers: list[Sweeper] = []

    def readiness() -> tuple[bool, dict[str, str]]:
        now = time.monotonic()
        checks = {}
        for loop in loops:
            stalled = now - loop.last_progress > STALL_SECONDS
            checks[loop.name] = "ok" if loop.healthy and not stalled else "stalled or retrying"
        for sweeper in sweepers:
            stalled = now - sweeper.last_sweep > STALL_SECONDS
            checks["sweeper"] = "ok" if sweeper.healthy and not stalled else "stalled or retrying"
        return all(v == "ok" for v in checks.values()) and bool(checks), checks

    runner = None
    tasks: list[asyncio.Task[None]] = []
    consumers = []
    try:
        await producer.start()
        runner, port = await start_http(make_app(registry, readiness), settings.http.host, settings.http.port)
        if on_http_port is not None:
            on_http_port.set_result(port)
        log(logger, "worker.started", role=role, rulebook=rulebook.version, metrics_port=port)

        def clock() -> datetime:
            return datetime.now(UTC)

        if role in ("router", "all"):
            consumer = make_consumer(kafka, "router", topics.name(topics.leads))
            consumers.append(consumer)
            store = AssignmentStore(redis, keys, settings.redis.retention_seconds)
            processor = RoutingProcessor(settings, rulebook, store, metrics, clock)
            loops.append(
                ConsumeLoop(
                    "router",
                    consumer,
                    producer,
                    processor,
                    topics,
                    metrics,
                    kafka.poll_timeout_seconds,
                    kafka.max_poll_records,
                )
            )
        if role in ("monitor", "all"):
            watched = [topics.name(topics.activities), topics.name(topics.assignments)]
            # A short fetch wait keeps the watermark, and so breach detection, fresh.
            mconsumer = make_consumer(kafka, "monitor", *watched, fetch_max_wait_ms=100)
            consumers.append(mconsumer)
            timers = RedisTimers(redis, keys, settings.redis.retention_seconds)
            watermarks = Watermarks(redis, keys, watched)
            loops.append(
                ConsumeLoop(
                    "monitor",
                    mconsumer,
                    producer,
                    TouchProcessor(settings, timers, metrics),
                    topics,
                    metrics,
                    kafka.poll_timeout_seconds,
                    kafka.max_poll_records,
                    on_polled=watermarks.record,
                )
            )

            def partitions() -> dict[str, int] | None:
                counts = {t: len(mconsumer.partitions_for_topic(t) or ()) for t in watched}
                return counts if all(counts.values()) else None

            sweepers.append(Sweeper(settings, timers, watermarks, partitions, producer, rulebook, metrics))
        for consumer in consumers:
            await consumer.start()
        tasks = [asyncio.create_task(loop.run(stop), name=loop.name) for loop in loops]
        tasks += [asyncio.create_task(s.run(stop), name="sweeper") for s in sweepers]
        stopper = asyncio.create_task(stop.wait(), name="stop")
        done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            if task is not stopper and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        for consumer in consumers:
            await consumer.stop()
        await producer.stop()
        await redis.aclose()
        if runner is not None:
            await runner.cleanup()
        log(logger, "worker.stopped", role=role)
