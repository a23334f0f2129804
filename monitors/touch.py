"""The monitor's per-record logic: activities stop clocks, assignments settle
touches that arrived before them. Each first touch publishes one `sla.met`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from monitors.metrics import Metrics
from monitors.timers import RedisTimers, TouchResult
from router.codec import decode_activity, decode_assignment, encode
from router.consume import Outbox, Record
from router.errors import InvalidEvent
from router.logs import log
from router.rulebook_source import Rules
from router.settings import Settings
from rules.events import SlaMet, derived_event_id
from rules.sla import response_seconds

logger = logging.getLogger("leadrouter.monitor")


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


class TouchProcessor:
    def __init__(
        self, settings: Settings, timers: RedisTimers, metrics: Metrics, rules: Callable[[], Rules]
    ) -> None:
        self._rules = rules
        topics = settings.topics
        self._activities = topics.name(topics.activities)
        self._assignments = topics.name(topics.assignments)
        self._sla_topic = topics.name(topics.sla_events)
        self._timers = timers
        self._metrics = metrics
        # sla.met published in the current batch (marked in Redis only once the
        # broker acknowledged it): a copy of the touch in the same batch is a duplicate.
        self._met: set[str] = set()

    def begin_batch(self) -> None:
        self._met = set()

    async def process(self, record: Record, out: Outbox) -> None:
        if record.topic == self._activities:
            activity = decode_activity(record.key, record.value)
            touched_ms = int(activity.occurred_at.timestamp() * 1000)
            result = await self._timers.touch(
                activity.lead_id, activity.rep_id, touched_ms, activity.channel, activity.direction
            )
            if result.outcome == "pending":
                log(logger, "touch.pending", lead_id=activity.lead_id, channel=activity.channel)
        else:
            lead_id = self._assigned_lead(record)
            if lead_id is None:
                return
            result = await self._timers.settle(lead_id)
        if result.outcome == "met" and result.clock is not None and result.clock.lead_id in self._met:
            self._metrics.activities_ignored.labels("duplicate").inc()
        elif result.outcome == "met":
            await self._publish_met(result, out)
        elif result.outcome not in ("pending", "nothing"):
            self._metrics.activities_ignored.labels(result.outcome).inc()

    async def apply_quietly(self, record: Record) -> None:
        """Apply a record's effect on the clocks without publishing anything.

        For a partition whose owner stalled (see monitors/watermark.py): the owner,
        or the next one, processes the record again and publishes its `sla.met`,
        which stays unpublished in Redis until then. Bad records are the owner's to
        dead-letter.
        """
        try:
            if record.topic == self._activities:
                activity = decode_activity(record.key, record.value)
                touched_ms = int(activity.occurred_at.timestamp() * 1000)
                await self._timers.touch(
                    activity.lead_id, activity.rep_id, touched_ms, activity.channel, activity.direction
                )
            elif (lead_id := self._assigned_lead(record)) is not None:
                await self._timers.settle(lead_id)
        except InvalidEvent:
            return

    def _assigned_lead(self, record: Record) -> str | None:
        event = decode_assignment(record.key, record.value)
        return event.lead_id if event.type == "lead.assigned" else None

    async def _publish_met(self, result: TouchResult, out: Outbox) -> None:
        clock, touched_ms = result.clock, result.touched_ms
        assert clock is not None
        assert touched_ms is not None
        assigned_at, due_at, touched_at = (
            from_ms(clock.assigned_ms),
            from_ms(clock.due_ms),
            from_ms(touched_ms),
        )
        started_at = from_ms(clock.clock_ms if clock.clock_ms is not None else clock.assigned_ms)
        seconds = response_seconds(assigned_at, touched_at)
        policies = self._rules().policies
        business = policies.business_seconds(policies.by_id(clock.policy), started_at, touched_at)
        within = touched_ms <= clock.due_ms
        created = result.created_ms
        speed = None if created is None else max(0.0, (touched_ms - created) / 1000)
        # In time, but it reached us after the breach went out: the breach stands.
        late_arrival = within and result.breached
        event_id = derived_event_id(clock.lead_id, clock.attempt, "sla.met")
        met = SlaMet(
            event_id=event_id, alert_id=event_id, lead_id=clock.lead_id, rep_id=clock.rep_id, team=clock.team,
            attempt=clock.attempt, assigned_at=assigned_at, due_at=due_at, touched_at=touched_at,
            response_seconds=seconds, within_sla=within, policy=clock.policy,
            business_response_seconds=business, late_arrival=late_arrival, speed_to_lead_seconds=speed,
        )  # fmt: skip
        await out.send(self._sla_topic, clock.lead_id.encode(), encode(met))
        self._met.add(clock.lead_id)
        self._metrics.first_touch_seconds.labels(clock.team, clock.policy).observe(seconds)
        if speed is not None:
            self._metrics.speed_to_lead.labels(clock.team, clock.policy).observe(speed)
        self._metrics.rep_touch(clock.rep_id, seconds, within and not late_arrival)
        if late_arrival:
            self._metrics.late_arrivals.labels(clock.team, clock.policy).inc()
        elif within:
            self._metrics.sla_met.labels(clock.team, clock.policy).inc()
        log(logger, "sla.met", lead_id=clock.lead_id, rep_id=clock.rep_id, team=clock.team,
            response_seconds=round(seconds, 3), business_seconds=round(business, 3), within_sla=within,
            late_arrival=late_arrival)  # fmt: skip

    async def after_publish(self) -> None:
        met, self._met = self._met, set()
        if met:
            await self._timers.mark_met_published(sorted(met))
