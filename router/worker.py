"""Compose and run a worker process: the router, the monitor, or both.

Explicit lifecycle: every client is opened here and closed in `finally`; every
task is kept and awaited; the first task to fail stops the others and the
process exits non-zero so its supervisor restarts it (no half-alive worker).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from redis.exceptions import RedisError

from monitors.http import make_app, start_http
from monitors.metrics import Metrics
from monitors.notifier import AlertIntake
from monitors.ownership import OwnershipListener, PartitionOwnership
from monitors.sweeper import Sweeper
from monitors.timers import RedisTimers
from monitors.touch import TouchProcessor
from monitors.watermark import GroupWatermark
from monitors.webhook_outbox import Burst, WebhookOutbox
from monitors.webhooks import WebhookDeliverer
from router import redis_client
from router.assignments import AssignmentStore
from router.consume import ConsumeLoop, Processor
from router.credentials import check_kafka, check_redis
from router.kafka import make_consumer, make_producer
from router.logs import log
from router.outbox import OutboxPublisher
from router.queue_drain import QueueDrainer
from router.redis_keys import RedisKeys
from router.rep_status import RepStatusUpdater
from router.routing import RoutingProcessor
from router.rulebook_source import RulebookSource
from router.settings import Settings

Role = Literal["router", "monitor", "all"]
logger = logging.getLogger("leadrouter.worker")

# A loop that has not completed a poll for this long is not ready.
STALL_SECONDS = 30.0
# How often readiness pings Redis; an idle router would otherwise not notice it is gone.
REDIS_PROBE_SECONDS = 1.0


def make_redis(settings: Settings) -> Redis:
    return redis_client.make_redis(settings.redis, health_check_interval=10)


class Worker:
    """The parts of one worker process, built from settings and run together."""

    def __init__(self, settings: Settings, role: Role, registry: CollectorRegistry) -> None:
        self.settings = settings
        self.role = role
        self.registry = registry
        self.metrics = Metrics(registry, per_rep=settings.metrics.per_rep)
        default_sla = timedelta(seconds=settings.sla.first_touch_seconds)
        self.rules = RulebookSource(settings.rulebook, self.metrics, role, default_sla)
        topics = settings.topics
        inputs = {"router": (topics.leads, topics.reps), "monitor": (topics.activities, topics.assignments)}
        primed = inputs["router"] + inputs["monitor"] if role == "all" else inputs[role]
        current = self.rules.current
        policies = tuple(
            dict.fromkeys([*(p.id for p in current.book.sla_policies), current.policies.default.id])
        )
        self.metrics.prime(current.book, primed, settings.sla.first_touch_seconds, policies)
        self.keys = RedisKeys(settings.redis.prefix)
        self.redis = make_redis(settings)
        self.producer = make_producer(settings.kafka)
        self.consumers: list[AIOKafkaConsumer] = []
        self.loops: list[ConsumeLoop] = []
        self.sweepers: list[Sweeper] = []
        self.deliverers: list[WebhookDeliverer] = []
        self.background: list[tuple[str, Callable[[asyncio.Event], Coroutine[Any, Any, None]]]] = []
        self.watermarks: list[GroupWatermark] = []
        # Everything that shards SLA timers by the activities topic's partitions.
        self.bucketed: list[AssignmentStore | RedisTimers] = []
        self.redis_ok = False
        if role in ("router", "all"):
            self._build_router()
        if role in ("monitor", "all"):
            self._build_monitor()

    def _loop(self, name: str, consumer: AIOKafkaConsumer, processor: Processor, **kw: Any) -> ConsumeLoop:
        kafka = self.settings.kafka
        self.consumers.append(consumer)
        return ConsumeLoop(
            name, consumer, self.producer, processor, self.settings.topics, self.metrics,
            kafka.poll_timeout_seconds, kafka.max_poll_records, **kw,
        )  # fmt: skip

    def _build_router(self) -> None:
        topics = self.settings.topics
        consumer = make_consumer(
            self.settings.kafka, "router", topics.name(topics.leads), topics.name(topics.reps)
        )
        store = AssignmentStore(
            self.redis, self.keys, self.settings.redis.retention_seconds, self.metrics,
            (topics.name(topics.assignments), topics.name(topics.routing_decisions)),
        )  # fmt: skip
        self.bucketed.append(store)
        outbox = OutboxPublisher(self.redis, self.keys, self.producer, self.metrics)
        drainer = QueueDrainer(
            store, lambda: self.rules.current, outbox, self.metrics, topics.name(topics.assignments), _utcnow
        )
        self.background += [("outbox", outbox.run), ("queue", drainer.run)]
        reps = RepStatusUpdater(
            self.redis, self.keys, lambda: self.rules.compiled, self.metrics, drainer.wake.set
        )
        processor = RoutingProcessor(
            self.settings, lambda: self.rules.current, store, self.metrics, _utcnow, reps
        )
        self.loops.append(self._loop("router", consumer, processor))

    def _build_monitor(self) -> None:
        topics = self.settings.topics
        watched = [topics.name(topics.activities), topics.name(topics.assignments)]
        # A short fetch wait keeps the watermark fresh; a short heartbeat lets a
        # rebalance (during which other monitors apply our partitions) end sooner.
        consumer = make_consumer(
            self.settings.kafka, "monitor", fetch_max_wait_ms=100, heartbeat_interval_ms=500
        )
        timers = RedisTimers(self.redis, self.keys, self.settings.redis.retention_seconds, self.metrics)
        self.bucketed.append(timers)
        processor = TouchProcessor(self.settings, timers, self.metrics, lambda: self.rules.current)
        group = f"{self.settings.kafka.group_prefix}-monitor"
        timeout = self.settings.sla.owner_timeout_seconds
        loop = self._loop("monitor", consumer, processor)

        def reading() -> set[TopicPartition]:
            # A loop that has not finished a poll lately (stuck, or its group
            # rebalancing) reads nothing, as far as the others are concerned.
            return consumer.assignment() if time.monotonic() - loop.last_progress <= timeout else set()

        ownership = PartitionOwnership(
            self.redis, self.keys.monitors, reading, beat_seconds=timeout / 3, fresh_seconds=timeout
        )
        self.background.append(("ownership", ownership.run))
        consumer.subscribe(watched, listener=OwnershipListener(ownership))
        watermark = GroupWatermark(
            self.settings.kafka, group, watched, self.metrics, processor.apply_quietly, ownership.owned
        )
        self.watermarks.append(watermark)
        self.background.append(("watermark", watermark.run))
        self.loops.append(loop)
        self.sweepers.append(
            Sweeper(self.settings, timers, watermark, self.producer, lambda: self.rules.current, self.metrics)
        )
        if self.settings.webhooks.endpoints or self.settings.sla.auto_away_after_misses:
            self._build_notifier()

    def _build_notifier(self) -> None:
        """Alerts from `sla-events` to webhooks and auto-away, in their own consumer group."""
        settings = self.settings
        hooks = settings.webhooks
        outbox = None
        if hooks.endpoints:
            burst = Burst(hooks.burst_threshold, int(hooks.burst_window_seconds * 1000))
            outbox = WebhookOutbox(
                self.redis, settings.redis.prefix, burst, settings.redis.retention_seconds, self.metrics
            )
            deliverer = WebhookDeliverer(hooks, outbox, self.metrics, lambda: self.rules.current)
            self.deliverers.append(deliverer)
            self.background.append(("webhooks", deliverer.run))
        consumer = make_consumer(settings.kafka, "notifier", settings.topics.name(settings.topics.sla_events))
        intake = AlertIntake(settings, self.redis, outbox, self.metrics, lambda: self.rules.current, _utcnow)
        self.loops.append(self._loop("notifier", consumer, intake))
        self.metrics.prime_notifier(self.rules.book, settings.topics.sla_events, bool(hooks.endpoints))

    async def probe_redis(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(self.redis.ping(), timeout=REDIS_PROBE_SECONDS)
                self.redis_ok = True
            except (RedisError, OSError, TimeoutError):
                self.redis_ok = False
            self.metrics.ready.labels(self.role).set(1 if self.readiness()[0] else 0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=REDIS_PROBE_SECONDS)

    def readiness(self) -> tuple[bool, dict[str, str]]:
        now = time.monotonic()
        checks = {"redis": "ok" if self.redis_ok else "unreachable"}
        for loop in self.loops:
            fresh = now - loop.last_progress <= STALL_SECONDS
            checks[loop.name] = "ok" if loop.healthy and fresh else "stalled or retrying"
        for sweeper in self.sweepers:
            fresh = now - sweeper.last_sweep <= STALL_SECONDS
            checks["sweeper"] = "ok" if sweeper.healthy and fresh else "stalled or retrying"
        for deliverer in self.deliverers:
            # A receiver that is down is not our failure (it shows in the failure
            # metrics); the deliverer not getting to Redis is.
            fresh = now - deliverer.last_round <= STALL_SECONDS
            checks["webhooks"] = "ok" if deliverer.healthy and fresh else "stalled or retrying"
        return bool(checks) and all(v == "ok" for v in checks.values()), checks

    async def run(self, stop: asyncio.Event, on_http_port: asyncio.Future[int] | None = None) -> None:
        runner = None
        tasks: list[asyncio.Task[None]] = []
        try:
            # A rejected password is fatal here, not retried for ever as an outage.
            await check_kafka(self.settings.kafka)
            await check_redis(self.redis, self.settings.redis)
            await self.producer.start()
            await self._set_buckets()
            token = self.settings.http.bearer_token
            app = make_app(self.registry, self.readiness, token.get_secret_value() if token else None)
            runner, port = await start_http(app, self.settings.http.host, self.settings.http.port)
            if on_http_port is not None:
                on_http_port.set_result(port)
            for consumer in self.consumers:
                await consumer.start()
            for watermark in self.watermarks:
                await watermark.start()
            # Everything built so far (the compiled rulebook, clients, pydantic schemas)
            # lives as long as the process: out of the collector's reach, a full
            # collection no longer walks it and stalls the loop for tens of ms.
            gc.collect()
            gc.freeze()
            log(logger, "worker.started", role=self.role, rulebook=self.rules.version, metrics_port=port)
            tasks = [asyncio.create_task(loop.run(stop), name=loop.name) for loop in self.loops]
            tasks += [asyncio.create_task(s.run(stop), name="sweeper") for s in self.sweepers]
            tasks += [asyncio.create_task(s.refresh_gauges(stop), name="gauges") for s in self.sweepers]
            tasks.append(asyncio.create_task(self.probe_redis(stop), name="redis-probe"))
            tasks += [asyncio.create_task(run(stop), name=name) for name, run in self.background]
            tasks.append(asyncio.create_task(self.rules.watch(stop, self._reload_signal()), name="rulebook"))
            await _until_stop_or_failure(tasks, stop)
        finally:
            stop.set()
            for task in tasks:
                task.cancel()
            for consumer in self.consumers:
                await consumer.stop()
            for watermark in self.watermarks:
                await watermark.stop()
            await self.producer.stop()
            await self.redis.aclose()
            if runner is not None:
                await runner.cleanup()
            log(logger, "worker.stopped", role=self.role)

    async def _set_buckets(self) -> None:
        """SLA timers are bucketed by the lead's partition on the activities topic."""
        topic = self.settings.topics.name(self.settings.topics.activities)
        try:
            partitions = await asyncio.wait_for(self.producer.partitions_for(topic), timeout=30)
        except (TimeoutError, KafkaError):
            partitions = None
        if not partitions:
            raise RuntimeError(
                f"topic {topic!r} not found: create the topics first (leadrouter dev up, or --create-topics)"
            )
        for holder in self.bucketed:
            holder.buckets = len(partitions)

    def _reload_signal(self) -> asyncio.Event:
        """An event set by SIGHUP (where signals can be handled), to reload at once."""
        wake = asyncio.Event()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, wake.set)
        return wake


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def _until_stop_or_failure(tasks: list[asyncio.Task[None]], stop: asyncio.Event) -> None:
    """Wait for a stop request or for any task to end; re-raise a task's failure."""
    stopper = asyncio.create_task(stop.wait(), name="stop")
    done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        if task is not stopper and not task.cancelled() and (exc := task.exception()) is not None:
            raise exc


async def run_worker(
    settings: Settings,
    role: Role,
    stop: asyncio.Event,
    registry: CollectorRegistry | None = None,
    on_http_port: asyncio.Future[int] | None = None,
) -> None:
    worker = Worker(settings, role, registry if registry is not None else CollectorRegistry())
    await worker.run(stop, on_http_port)
