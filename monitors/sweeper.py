"""The SLA sweeper: finds clocks past their deadline and publishes one breach each.

Every `sweep_interval` it claims due timers whose deadline is before
min(now, the monitors' watermark) - grace, publishes `sla.breached` for each,
waits for the broker's acknowledgement, then acks them in Redis. Any number of
monitor processes may sweep at once: the claim is atomic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

from monitors.metrics import Metrics
from monitors.timers import Clock, RedisTimers
from monitors.touch import from_ms
from monitors.watermark import Watermarks
from router.codec import encode
from router.consume import TRANSIENT
from router.logs import log
from router.settings import Settings
from rules.events import SlaBreached, derived_event_id
from rules.rulebook import Rulebook

logger = logging.getLogger("leadrouter.sweeper")

GAUGE_REFRESH_SECONDS = 2.0


class Sweeper:
    def __init__(
        self,
        settings: Settings,
        timers: RedisTimers,
        watermarks: Watermarks,
        partitions: Callable[[], dict[str, int] | None],
        producer: AIOKafkaProducer,
        rulebook: Callable[[], Rulebook],
        metrics: Metrics,
    ) -> None:
        self._sla = settings.sla
        self._topic = settings.topics.name(settings.topics.sla_events)
        self._timers = timers
        self._watermarks = watermarks
        self._partitions = partitions
        self._producer = producer
        self._rulebook = rulebook
        self._metrics = metrics
        self._gauges_at = 0.0
        self._started = time.monotonic()
        self.last_sweep = time.monotonic()
        self.healthy = True

    async def run(self, stop: asyncio.Event) -> None:
        delay = self._sla.sweep_interval_seconds
        while not stop.is_set():
            try:
                claimed = await self.sweep_once()
                self.healthy = True
                delay = self._sla.sweep_interval_seconds
                if claimed >= self._sla.claim_batch:
                    continue  # more are due: sweep again at once
            except TRANSIENT as exc:
                self.healthy = False
                self._metrics.retries.labels("sweeper").inc()
                log(logger, "sweep.retry", logging.WARNING, error=repr(exc), backoff=delay)
                delay = min(max(delay * 2, 0.1), 5.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)

    async def cutoff_ms(self, now_ms: int) -> int | None:
        partitions = self._partitions()
        low = await self._watermarks.low(partitions) if partitions else None
        if low is None:
            # No breach can be declared until every partition is read: show that as a
            # watermark lagging since start-up, not as a healthy zero.
            self._metrics.watermark_lag.set(time.monotonic() - self._started)
            return None
        self._metrics.watermark_lag.set(max(0.0, (now_ms - low) / 1000))
        return min(now_ms, low) - int(self._sla.grace_seconds * 1000)

    async def sweep_once(self) -> int:
        now = time.time()
        now_ms = int(now * 1000)
        if now - self._gauges_at >= GAUGE_REFRESH_SECONDS:
            await self._refresh_gauges()
            self._gauges_at = now
        self.last_sweep = time.monotonic()
        cutoff = await self.cutoff_ms(now_ms)
        if cutoff is None:
            return 0
        lease_ms = int(self._sla.claim_lease_seconds * 1000)
        clocks = await self._timers.claim(cutoff, now_ms, lease_ms, self._sla.claim_batch)
        if not clocks:
            return 0
        detected = datetime.now(UTC)
        futures = [await self._send(clock, detected) for clock in clocks]
        await asyncio.gather(*futures)
        await self._timers.ack([c.lead_id for c in clocks])
        for clock in clocks:
            lateness = max(0.0, detected.timestamp() - clock.due_ms / 1000)
            self._metrics.sla_breached.labels(clock.team).inc()
            self._metrics.breach_lateness.observe(lateness)
            log(
                logger,
                "sla.breached",
                logging.WARNING,
                lead_id=clock.lead_id,
                rep_id=clock.rep_id,
                team=clock.team,
                late_by=round(lateness, 3),
            )
        return len(clocks)

    async def _send(self, clock: Clock, detected: datetime) -> asyncio.Future[object]:
        event = SlaBreached(
            event_id=derived_event_id(clock.lead_id, clock.attempt, "sla.breached"),
            lead_id=clock.lead_id,
            rep_id=clock.rep_id,
            team=clock.team,
            attempt=clock.attempt,
            assigned_at=from_ms(clock.assigned_ms),
            due_at=from_ms(clock.due_ms),
            detected_at=detected,
        )
        fut: asyncio.Future[object] = await self._producer.send(
            self._topic, key=clock.lead_id.encode(), value=encode(event)
        )
        return fut

    async def _refresh_gauges(self) -> None:
        book = self._rulebook()
        by_team: dict[str, int] = {t.id: 0 for t in book.teams}
        for rep, count in (await self._timers.open_by_rep()).items():
            team = book.team_of(rep)
            if team is not None:
                by_team[team] = by_team.get(team, 0) + max(0, count)
        for team, count in by_team.items():
            self._metrics.open_leads.labels(team).set(count)
