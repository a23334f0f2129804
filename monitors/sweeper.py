"""The SLA sweeper: finds clocks past their deadline and publishes one breach each.

Every `sweep_interval` it claims due timers whose deadline is before
min(now, the monitors' watermark) - grace, publishes `sla.breached` for each,
waits for the broker's acknowledgement, then acks them in Redis. Any number of
monitor processes may sweep at once: the claim is atomic. When a claim comes
back full (a burst), the next claim runs while that batch is published and
acked, so Redis and this process work at the same time instead of taking turns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

from monitors.metrics import Metrics
from monitors.timers import DueTimer, RedisTimers
from monitors.touch import from_ms
from monitors.watermark import GroupWatermark
from router.codec import encode
from router.consume import TRANSIENT
from router.logs import log
from router.rulebook_source import Rules
from router.settings import Settings
from rules.events import SlaBreached, SlaEscalated, SlaWarning, derived_event_id

logger = logging.getLogger("leadrouter.sweeper")

GAUGE_REFRESH_SECONDS = 2.0
AT_RISK_MS = 60_000  # "at risk": due within the next minute
# Claimed batches being published at once: two keep Redis and this process both
# busy in a burst; more would only hold more claims under lease.
PUBLISH_DEPTH = 2
CLAIM_LOOPS = 2


class Sweeper:
    def __init__(
        self,
        settings: Settings,
        timers: RedisTimers,
        watermark: GroupWatermark,
        producer: AIOKafkaProducer,
        rules: Callable[[], Rules],
        metrics: Metrics,
    ) -> None:
        self._sla = settings.sla
        self._topic = settings.topics.name(settings.topics.sla_events)
        self._retention = settings.redis.retention_seconds
        self._timers = timers
        self._watermark = watermark
        self._producer = producer
        self._rules = rules
        self._metrics = metrics
        self._started = time.monotonic()
        self.last_sweep = time.monotonic()
        # Redis (claims) and Kafka (publishes) fail apart: each is unwell from a failure
        # until its next success, and an empty claim says nothing about Kafka.
        self._claims_ok = True
        self._publishes_ok = True

    async def refresh_gauges(self, stop: asyncio.Event) -> None:
        """Open/untouched/at-risk gauges, on their own schedule: reading them can take
        a few hundred milliseconds under load, which must not delay a breach."""
        while not stop.is_set():
            try:
                await self._refresh_gauges()
            except TRANSIENT as exc:
                log(logger, "gauges.retry", logging.WARNING, error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=GAUGE_REFRESH_SECONDS)

    async def run(self, stop: asyncio.Event) -> None:
        # Two claim loops: in a burst one claims while the other's reply is parsed and
        # its alerts built, so Redis is not idle while this process works (claims are
        # atomic, so two loops are as safe as two monitors).
        await asyncio.gather(*(self._sweep_loop(stop) for _ in range(CLAIM_LOOPS)))

    async def _sweep_loop(self, stop: asyncio.Event) -> None:
        delay = self._sla.sweep_interval_seconds
        publishing: set[asyncio.Task[None]] = set()
        try:
            while not stop.is_set():
                for task in [t for t in publishing if t.done()]:
                    publishing.discard(task)
                    task.result()  # a bug, not an outage: let the worker fail
                try:
                    alerts = await self.claim()
                    self._claims_ok = True
                    delay = self._sla.sweep_interval_seconds
                except TRANSIENT as exc:
                    self._claims_ok = False
                    self._failed(exc, "sweep.retry", backoff=delay)
                    delay = min(max(delay * 2, 0.1), 5.0)
                    alerts = []
                if alerts:
                    publishing.add(asyncio.create_task(self._publish_or_retry(alerts), name="sweep-publish"))
                if len(alerts) >= self._sla.claim_batch:
                    # A full batch: more may be due. Claim again at once, while it is published.
                    if len(publishing) >= PUBLISH_DEPTH:
                        await asyncio.wait(publishing, return_when=asyncio.FIRST_COMPLETED)
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)
        finally:
            if publishing:  # let claimed alerts go out and be acked rather than wait for their lease
                _, late = await asyncio.wait(publishing, timeout=self._sla.claim_lease_seconds)
                for task in late:
                    task.cancel()

    @property
    def healthy(self) -> bool:
        return self._claims_ok and self._publishes_ok

    def _failed(self, exc: BaseException, event: str, **fields: object) -> None:
        self._metrics.retries.labels("sweeper").inc()
        log(logger, event, logging.WARNING, error=repr(exc), **fields)

    async def _publish_or_retry(self, alerts: list[Alert]) -> None:
        try:
            await self.publish(alerts)
            self._publishes_ok = True
        except TRANSIENT as exc:  # unacked claims go back to due when their lease ends
            self._publishes_ok = False
            self._failed(exc, "sweep.publish_failed", alerts=len(alerts))

    def cutoff_ms(self, now_ms: int, bucket: int) -> int | None:
        """Deadlines up to this may breach in `bucket`: its partitions are read that far."""
        mark = self._watermark.mark(bucket)
        if mark is None:
            return None
        return min(now_ms, mark) - int(self._sla.grace_seconds * 1000)

    def _report_lag(self, now_ms: int) -> None:
        low = self._watermark.low_ms
        if low is None:
            # No breach can be declared until the watermark is known: show that as a
            # watermark lagging since start-up, not as a healthy zero.
            self._metrics.watermark_lag.set(time.monotonic() - self._started)
        else:
            self._metrics.watermark_lag.set(max(0.0, (now_ms - low) / 1000))

    async def sweep_once(self) -> int:
        """Claim what is due, publish it and ack it; the number of timers claimed."""
        alerts = await self.claim()
        if alerts:
            await self.publish(alerts)
        return len(alerts)

    async def claim(self) -> list[Alert]:
        """Claim due timers (under lease) in every bucket, as the alerts to publish."""
        now = time.time()
        now_ms = int(now * 1000)
        self.last_sweep = time.monotonic()
        self._report_lag(now_ms)
        cutoffs = {
            bucket: cutoff
            for bucket in range(self._timers.buckets)
            if (cutoff := self.cutoff_ms(now_ms, bucket)) is not None
        }
        lease_ms = int(self._sla.claim_lease_seconds * 1000)
        claimed = await self._timers.claim_buckets(cutoffs, now_ms, lease_ms, self._sla.claim_batch)
        timers = [timer for found in claimed for timer in found]
        if not timers:
            return []
        detected = datetime.now(UTC)
        rules = self._rules()
        return [alert(timer, detected, rules) for timer in timers]

    async def publish(self, alerts: list[Alert]) -> None:
        """Publish claimed alerts, wait for the broker, then ack them in Redis."""
        lease_ms = int(self._sla.claim_lease_seconds * 1000)
        keeper = asyncio.create_task(self._keep_leases([a.timer.member for a in alerts], lease_ms))
        try:
            futures = [
                await self._producer.send(
                    self._topic, key=a.timer.clock.lead_id.encode(), value=encode(a.event)
                )
                for a in alerts
            ]
            await asyncio.gather(*futures)
            await self._timers.ack([(a.timer.member, a.reassign) for a in alerts], int(time.time() * 1000))
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        for a in alerts:
            self._observe(a, a.detected)

    async def _keep_leases(self, members: list[str], lease_ms: int) -> None:
        """Renew the claims while they are published: the lease can then be short, and
        the alerts of a monitor killed meanwhile go out from another one soon after."""
        while True:
            await asyncio.sleep(lease_ms / 3000)
            try:
                await self._timers.extend(members, int(time.time() * 1000) + lease_ms)
            except TRANSIENT as exc:  # the publish fails too, or gets through: either way
                log(logger, "lease.renew_failed", logging.WARNING, error=repr(exc))

    def _observe(self, a: Alert, detected: datetime) -> None:
        clock = a.timer.clock
        who = {
            "lead_id": clock.lead_id,
            "rep_id": clock.rep_id,
            "team": clock.team,
            "attempt": str(clock.attempt),
        }
        if isinstance(a.event, SlaBreached):
            lateness = max(0.0, detected.timestamp() - clock.due_ms / 1000)
            self._metrics.sla_breached.labels(clock.team, clock.policy).inc()
            self._metrics.rep_breach(clock.rep_id)
            self._metrics.breach_lateness.observe(lateness)
            log(logger, "sla.breached", logging.WARNING, **who, late_by=round(lateness, 3))
        elif isinstance(a.event, SlaWarning):
            self._metrics.sla_warned.labels(clock.team, clock.policy).inc()
            log(logger, "sla.warning", logging.INFO, **who)
        else:
            self._metrics.sla_escalated.labels(clock.team, clock.policy, a.event.action).inc()
            log(
                logger,
                "sla.escalated",
                logging.WARNING,
                **who,
                step=str(a.event.level),
                action=a.event.action,
            )

    async def _refresh_gauges(self) -> None:
        now_ms = int(time.time() * 1000)
        count, oldest = await self._timers.untouched(self._retention, now_ms)
        self._metrics.untouched.set(count)
        self._metrics.oldest_untouched.set(0 if oldest is None else max(0, now_ms - oldest) / 1000)
        self._metrics.at_risk.set(await self._timers.at_risk(now_ms, AT_RISK_MS))
        book = self._rules().book
        by_team: dict[str, int] = {t.id: 0 for t in book.teams}
        for rep, count in (await self._timers.open_by_rep()).items():
            team = book.team_of(rep)
            if team is not None:
                by_team[team] = by_team.get(team, 0) + max(0, count)
        for team, count in by_team.items():
            self._metrics.open_leads.labels(team).set(count)


@dataclass(frozen=True, slots=True)
class Alert:
    timer: DueTimer
    event: SlaBreached | SlaWarning | SlaEscalated
    reassign: bool = False

    @property
    def detected(self) -> datetime:
        event = self.event
        if isinstance(event, SlaBreached):
            return event.detected_at
        return event.warned_at if isinstance(event, SlaWarning) else event.escalated_at


def alert(timer: DueTimer, now: datetime, rules: Rules) -> Alert:
    """The event a due timer publishes; ids are (lead, attempt, kind), so copies dedupe."""
    clock = timer.clock
    common = {
        "lead_id": clock.lead_id, "rep_id": clock.rep_id, "team": clock.team, "attempt": clock.attempt,
        "policy": clock.policy, "due_at": from_ms(clock.due_ms),
    }  # fmt: skip
    if timer.kind == "breach":
        event_id = derived_event_id(clock.lead_id, clock.attempt, "sla.breached")
        breached = SlaBreached(event_id=event_id, alert_id=event_id, assigned_at=from_ms(clock.assigned_ms),
                               detected_at=now, **common)  # fmt: skip
        return Alert(timer, breached)
    if timer.kind == "warn":
        event_id = derived_event_id(clock.lead_id, clock.attempt, "sla.warning")
        warning = SlaWarning(event_id=event_id, alert_id=event_id, assigned_at=from_ms(clock.assigned_ms),
                             warned_at=now, **common)  # fmt: skip
        return Alert(timer, warning)
    level = int(timer.kind.removeprefix("esc"))
    steps = rules.policies.by_id(clock.policy).escalation
    # The policy may have changed since the timer was armed: a step it no longer has
    # becomes a plain notification of the rep.
    action = steps[level].action if level < len(steps) else "notify_rep"
    contact = None
    if action == "notify_contact":
        team = next((t for t in rules.book.teams if t.id == clock.team), None)
        contact = team.escalation_contact if team is not None else None
    event_id = derived_event_id(clock.lead_id, clock.attempt, f"sla.escalated.{level}")
    escalated = SlaEscalated(event_id=event_id, alert_id=event_id, level=level, action=action,
                             contact=contact, escalated_at=now, **common)  # fmt: skip
    return Alert(timer, escalated, reassign=action == "reassign")
