"""Assigns queued leads, first in first out, as soon as someone can take them.

A lead queued because every rep who could take it was busy or away waits on a
retry queue in Redis (ordered by when it was queued). Every second, and at once
when a rep becomes available, the oldest waiting leads are decided again against
the current state; those that now find a rep are assigned with the same atomic
compare-and-set as new leads, and their events go out through the outbox. A lead
that still finds nobody keeps its place; the ones behind it may still go to
other pools (first in, first out within what can be placed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from monitors.metrics import Metrics
from router.assignments import AssignmentStore
from router.codec import decode_lead_event, encode
from router.consume import TRANSIENT
from router.errors import InvalidEvent
from router.logs import log
from router.outbox import OutboxPublisher
from router.outputs import assignment_event, decision_event
from rules.compiled import CompiledRulebook
from rules.decide import Assignment, decide
from rules.sla import first_touch_due

logger = logging.getLogger("leadrouter.queue")

BATCH = 100
MAX_CAS_ATTEMPTS = 8
# Without a freed place or a returning rep, waiting leads are still retried this
# often: time alone changes who can take them (working hours, daily caps, absences).
FULL_PASS_SECONDS = 10.0


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class QueueDrainer:
    def __init__(
        self,
        store: AssignmentStore,
        rules: Callable[[], CompiledRulebook],
        outbox: OutboxPublisher,
        metrics: Metrics,
        clock: Callable[[], datetime],
        sla: timedelta,
        interval: float = 1.0,
    ) -> None:
        self._store = store
        self._rules = rules
        self._outbox = outbox
        self._metrics = metrics
        self._clock = clock
        self._sla = sla
        self._interval = interval
        self._freed_seen: int | None = None
        self._last_pass = 0.0
        self.wake = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self._maybe_drain()
            except TRANSIENT as exc:
                self._metrics.retries.labels("queue").inc()
                log(logger, "queue.retry", logging.WARNING, error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=self._interval)

    async def _maybe_drain(self) -> None:
        """Decide waiting leads again only when something may have changed for them."""
        woken = self.wake.is_set()
        self.wake.clear()
        freed = await self._store.freed()
        woken, self._freed_seen = woken or freed != self._freed_seen, freed
        if woken or time.monotonic() - self._last_pass >= FULL_PASS_SECONDS:
            self._last_pass = time.monotonic()
            await self.drain_once()

    async def drain_once(self) -> int:
        """Try the oldest waiting leads once; the number assigned."""
        waiting, oldest_ms = await self._store.waiting(BATCH)
        now_ms = epoch_ms(self._clock())
        self._metrics.oldest_waiting.set(0 if oldest_ms is None else max(0, now_ms - oldest_ms) / 1000)
        assigned = 0
        for lead_id, raw in waiting:
            if raw is None:
                await self._store.drop_waiting(lead_id)  # its record expired
                continue
            if await self._try(lead_id, raw):
                assigned += 1
        if assigned:
            self._outbox.wake.set()
        self._metrics.leads_waiting.set(await self._store.waiting_count())
        return assigned

    async def _try(self, lead_id: str, raw: bytes) -> bool:
        try:
            event = decode_lead_event(lead_id.encode(), raw)
        except InvalidEvent:
            await self._store.drop_waiting(lead_id)  # validated once already; cannot happen
            return False
        book = self._rules()
        for _ in range(MAX_CAS_ATTEMPTS):
            now = self._clock()
            _, state = await self._store.read(lead_id, book, now)
            decision = decide(event.lead, book, state, now)
            if not isinstance(decision, Assignment):
                return False
            due = first_touch_due(now, self._sla)
            payload = encode(assignment_event(event, decision, book.version, now, due))
            trace = encode(decision_event(lead_id, decision, book.version))
            result = await self._store.commit(
                lead_id, decision, payload, trace=trace, attempt=1,
                assigned_ms=epoch_ms(now), due_ms=epoch_ms(due), requeue=True,
            )  # fmt: skip
            if result.status == "conflict":
                continue
            if result.status != "ok":
                return False
            waited = max(0.0, now.timestamp() - event.occurred_at.timestamp())
            self._metrics.leads_dequeued.labels(decision.team, decision.route).inc()
            self._metrics.leads_routed.labels(decision.team, decision.route).inc()
            log(logger, "lead.dequeued", lead_id=lead_id, rep_id=decision.rep_id, team=decision.team,
                route=decision.route, waited_seconds=round(waited, 3))  # fmt: skip
            return True
        return False
