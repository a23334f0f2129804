"""Routes leads again: waiting leads when someone can take them, and leads an
SLA escalation takes from their rep.

A lead queued because every rep who could take it was busy or away waits on a
retry queue in Redis (ordered by when it was queued). Every second, and at once
when a rep becomes available, the oldest waiting leads are decided again against
the current state; those that now find a rep are assigned with the same atomic
compare-and-set as new leads, and their events go out through the outbox. A lead
that still finds nobody keeps its place; the ones behind it may still go to
other pools (first in, first out within what can be placed).

A reassigning escalation leaves a request in Redis; the lead is routed again as
attempt + 1, excluding every rep who already had it, and `lead.reassigned` plus
the new `lead.assigned` go out through the outbox. Once the policy's attempts are
used up, the lead goes to the policy's exhausted queue instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime

from monitors.metrics import Metrics
from router.assignments import AssignmentStore, ReassignContext
from router.codec import decode_lead_event, encode
from router.consume import TRANSIENT
from router.errors import InvalidEvent
from router.logs import log
from router.outbox import OutboxPublisher
from router.placement import place
from router.rulebook_source import Rules
from rules.decide import Assignment
from rules.events import LeadReassigned, derived_event_id

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
        rules: Callable[[], Rules],
        outbox: OutboxPublisher,
        metrics: Metrics,
        assignments_topic: str,
        clock: Callable[[], datetime],
        interval: float = 1.0,
    ) -> None:
        self._store = store
        self._rules = rules
        self._outbox = outbox
        self._assignments_topic = assignments_topic
        self._metrics = metrics
        self._clock = clock
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
        await self.reassign_once()
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
        rules = self._rules()
        for _ in range(MAX_CAS_ATTEMPTS):
            now = self._clock()
            _, state = await self._store.read(lead_id, rules.compiled, now)
            placed = await place(self._store, rules, event, raw, state, now, mode="requeue")
            if placed.result.status == "conflict":
                continue
            decision = placed.decision
            if placed.result.status != "ok" or not isinstance(decision, Assignment):
                return False
            waited = max(0.0, now.timestamp() - event.occurred_at.timestamp())
            self._metrics.leads_dequeued.labels(decision.team, decision.route).inc()
            self._metrics.leads_routed.labels(decision.team, decision.route).inc()
            log(logger, "lead.dequeued", lead_id=lead_id, rep_id=decision.rep_id, team=decision.team,
                route=decision.route, waited_seconds=round(waited, 3))  # fmt: skip
            return True
        return False

    async def reassign_once(self) -> int:
        """Route again the leads an escalation asked for; the number handled."""
        handled = 0
        for lead_id in await self._store.reassign_requests(BATCH):
            context = await self._store.reassign_context(lead_id)
            if context is None:
                # Moot (touched meanwhile, expired), unless it changed since the read:
                # the drop checks again, atomically, and keeps it then.
                why = await self._store.drop_reassign(lead_id)
                if why is None:
                    log(logger, "reassign.deferred", lead_id=lead_id, status="changed")
                elif why != "served":  # served: another router reassigned it since our read
                    log(logger, "reassign.dropped", lead_id=lead_id, why=why)
                continue
            if await self._reassign(lead_id, context):
                handled += 1
        if handled:
            self._outbox.wake.set()
        return handled

    async def _reassign(self, lead_id: str, context: ReassignContext) -> bool:
        try:
            event = decode_lead_event(lead_id.encode(), context.lead_event)
        except InvalidEvent as exc:
            # Validated when it was first routed, so this cannot happen; if it does,
            # the request can never be served: say so rather than retry it for ever.
            await self._store.discard_reassign(lead_id)
            log(logger, "reassign.dropped", logging.ERROR, lead_id=lead_id, why=exc.reason)
            return False
        rules = self._rules()
        policy = rules.policies.by_id(context.policy)
        attempt = context.attempt + 1
        exhausted = policy.exhausted_queue if attempt > policy.max_attempts else None
        for _ in range(MAX_CAS_ATTEMPTS):
            now = self._clock()
            reassigned = LeadReassigned(
                event_id=derived_event_id(lead_id, attempt, "lead.reassigned"), lead_id=lead_id,
                from_rep_id=context.rep, from_team=context.team, attempt=attempt,
                reason="first-touch SLA missed" if exhausted is None else "SLA attempts exhausted",
                reassigned_at=now,
            )  # fmt: skip
            record = (self._assignments_topic, lead_id, encode(reassigned).decode())
            _, state = await self._store.read(lead_id, rules.compiled, now)
            try:
                placed = await place(
                    self._store, rules, event, context.lead_event, state, now, mode="reassign",
                    attempt=attempt, exclude=context.assignees, exhausted_queue=exhausted, outbox=(record,),
                )  # fmt: skip
            except TRANSIENT as exc:
                # The commit may still run (a frozen Redis runs it when it thaws): then
                # the request is gone with no line below; this one names the lead.
                log(logger, "reassign.interrupted", logging.WARNING, lead_id=lead_id, attempt=attempt,
                    error=repr(exc))  # fmt: skip
                raise
            if placed.result.status == "conflict":
                continue
            if placed.result.status != "ok":
                # Kept for the next round ('gone': e.g. the current decision is not
                # announced yet); said once a round, so a stuck request shows.
                log(logger, "reassign.deferred", lead_id=lead_id, status=placed.result.status)
                return False
            decision = placed.decision
            to = decision.rep_id if isinstance(decision, Assignment) else f"queue {decision.queue}"
            self._metrics.leads_reassigned.labels(context.team).inc()
            log(logger, "lead.reassigned", lead_id=lead_id, from_rep=context.rep, to=to, attempt=attempt)
            return True
        log(logger, "reassign.deferred", lead_id=lead_id, status="conflict")
        return False
