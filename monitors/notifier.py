"""Reads `sla-events` (its own consumer group) and acts on each alert once:
takes it into the team's webhook outbox, and counts a rep's missed SLAs for
auto-away. Offsets are committed only after Redis has the alert, so neither a
crash nor a Redis outage loses one."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from importlib import resources

from redis.asyncio import Redis

from monitors.metrics import Metrics
from monitors.timing import RedisTimer
from monitors.webhook_outbox import WebhookOutbox
from router.codec import decode_sla_event, encode
from router.consume import Outbox, Record
from router.logs import log
from router.rulebook_source import Rules
from router.settings import Settings
from rules.events import RepStatusEvent, SlaBreached, SlaMet, derived_event_id
from rules.notify import AlertEvent

logger = logging.getLogger("leadrouter.notifier")
_MISSED = resources.files("monitors").joinpath("lua/missed.lua").read_text()
OTHER_TEAM = "(other)"  # the metric label of a team the rulebook does not know


class AlertIntake:
    """The notifier's per-record logic (a consume-loop processor)."""

    def __init__(
        self,
        settings: Settings,
        redis: Redis,
        outbox: WebhookOutbox | None,
        metrics: Metrics,
        rules: Callable[[], Rules],
        clock: Callable[[], datetime],
    ) -> None:
        self._webhooks = settings.webhooks
        self._outbox = outbox
        self._metrics = metrics
        self._rules = rules
        self._clock = clock
        self._away_after = settings.sla.auto_away_after_misses
        self._reps_topic = settings.topics.name(settings.topics.reps)
        self._prefix = settings.redis.prefix
        self._seen_ttl = settings.redis.retention_seconds
        self._missed = redis.register_script(_MISSED)
        self._timed = RedisTimer(metrics)

    def begin_batch(self) -> None:
        pass

    async def after_publish(self) -> None:
        pass

    async def process(self, record: Record, out: Outbox) -> None:
        event = decode_sla_event(record.key, record.value)
        if self._away_after:
            await self._count_misses(event, out)
        if isinstance(event, SlaMet) or self._outbox is None:
            return
        endpoint = self._webhooks.endpoint(event.team)
        if endpoint is None or event.type not in endpoint.kinds:
            return
        now_ms = int(self._clock().timestamp() * 1000)
        breach = isinstance(event, SlaBreached)
        outcome = await self._outbox.enqueue(event.team, event.alert_id, record.value or b"", breach, now_ms)
        self._metrics.webhook_alerts.labels(self._team_label(event.team), outcome).inc()
        log(logger, "webhook.enqueued", lead_id=event.lead_id, team=event.team, alert=event.type,
            alert_id=event.alert_id, outcome=outcome)  # fmt: skip

    def _team_label(self, team: str) -> str:
        return team if any(t.id == team for t in self._rules().book.teams) else OTHER_TEAM

    async def _count_misses(self, event: SlaMet | AlertEvent, out: Outbox) -> None:
        """A breach counts a miss (once per alert id); a touch in time resets the count.

        At the configured count the rep is set away through the reps topic, where
        every status change goes, so routers stop assigning and the change is on record.
        """
        if isinstance(event, SlaMet):
            if not event.within_sla:
                return
            reset, alert_id = 1, event.alert_id
        elif isinstance(event, SlaBreached):
            reset, alert_id = 0, event.alert_id
        else:
            return
        book = self._rules().book
        if all(r.id != event.rep_id for r in book.reps):
            return  # a rep no longer in the rulebook: nobody to set away
        keys = [f"{self._prefix}:missed", f"{self._prefix}:missed:seen:{alert_id}"]
        with self._timed("missed_sla"):
            misses = int(await self._missed(keys=keys, args=[event.rep_id, reset, self._seen_ttl,
                                                             self._away_after]))  # fmt: skip
        if misses < self._away_after:
            return
        assert isinstance(event, SlaBreached)
        away = RepStatusEvent(
            event_id=derived_event_id(event.rep_id, 0, f"auto-away:{alert_id}"),
            type="rep.status",
            occurred_at=event.detected_at,
            rep_id=event.rep_id,
            status="away",
            reason=f"missed {misses} first-touch SLAs in a row",
        )
        await out.send(self._reps_topic, event.rep_id.encode(), encode(away))
        self._metrics.reps_auto_away.labels(self._team_label(event.team)).inc()
        log(logger, "rep.auto_away", logging.WARNING, rep_id=event.rep_id, team=event.team, misses=misses)
