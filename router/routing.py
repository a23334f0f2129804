"""The routing worker's per-record logic: lead event in, assignment out.

Read shared state -> pure `decide` -> atomic compare-and-set commit -> publish.
A replayed lead finds its first decision in Redis: republished only if that
publish was never acknowledged, otherwise nothing is published at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from prometheus_client import Counter, Histogram

from monitors.metrics import Metrics
from router.assignments import AssignmentStore
from router.batch import Pending, Routed, route_new
from router.codec import decode_lead_event, encode
from router.consume import Outbox, Record
from router.errors import InvalidEvent, TransientError
from router.logs import log
from router.placement import Placed, place
from router.rep_status import RepStatusUpdater
from router.rulebook_source import Rules
from router.settings import Settings
from rules.decide import Assignment
from rules.events import LeadEvent, LeadReassigned, derived_event_id
from rules.fields import routing_digest

logger = logging.getLogger("leadrouter.router")

# Compare-and-set retries before the batch is retried as a whole: contention
# only comes from other routers moving the same team's cursor.
MAX_CAS_ATTEMPTS = 16


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class RoutingProcessor:
    def __init__(
        self,
        settings: Settings,
        rules: Callable[[], Rules],
        store: AssignmentStore,
        metrics: Metrics,
        clock: Callable[[], datetime],
        reps: RepStatusUpdater | None = None,
    ) -> None:
        self._rules = rules
        self._reps = reps
        self._store = store
        self._metrics = metrics
        self._clock = clock
        topics = settings.topics
        self._out_topic = topics.name(topics.assignments)
        self._trace_topic = topics.name(topics.routing_decisions)
        self._in_topic = topics.leads  # the base name: a closed label set
        self._reps_topic = topics.name(topics.reps)
        # Leads published in the current batch: Redis marks them published only
        # after the broker acknowledges the batch, so a copy of a lead's event in
        # the same batch must be recognised here.
        self._published: list[str] = []
        self._in_batch: set[str] = set()
        # New leads of the current batch already decided and committed by `prepare`.
        self._routed: dict[object, Routed] = {}
        # Metric children by label values (closed sets: event types, teams, routes, policies).
        self._received_metrics: dict[str, Counter] = {}
        self._routed_metrics: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}

    def _received(self, event_type: str) -> Counter:
        child = self._received_metrics.get(event_type)
        if child is None:
            child = self._received_metrics[event_type] = self._metrics.leads_received.labels(event_type)
        return child

    def begin_batch(self) -> None:
        self._published = []
        self._in_batch = set()
        self._routed = {}

    async def prepare(self, records: Sequence[Record]) -> None:
        """Decide and commit the batch's new leads together (router/batch.py); `process`
        then publishes them. Whatever this leaves, `process` handles record by record."""
        pending, ids = [], set()
        for record in records:
            if record.topic == self._reps_topic:
                continue
            try:
                event = decode_lead_event(record.key, record.value)
            except InvalidEvent:
                continue  # dead-lettered by `process`
            if event.lead.id not in ids:  # a copy in the same batch is a duplicate
                ids.add(event.lead.id)
                handle = (record.topic, record.partition, record.offset)
                pending.append(Pending(handle, event, record.value or b""))
        if pending:
            await route_new(self._store, self._rules(), pending, self._clock, MAX_CAS_ATTEMPTS, self._routed)

    async def process(self, record: Record, out: Outbox) -> None:
        if record.topic == self._reps_topic:
            if self._reps is not None:
                await self._reps.apply(record)
            return
        routed = self._routed.pop((record.topic, record.partition, record.offset), None)
        if routed is not None:
            self._received(routed.event.type).inc()
            await self._publish(routed.event, routed.placed, record, out, routed.now)
            return
        event = decode_lead_event(record.key, record.value)
        self._received(event.type).inc()
        lead_id = event.lead.id
        rules = self._rules()  # one rulebook for the whole decision, even across a reload
        for _ in range(MAX_CAS_ATTEMPTS):
            now = self._clock()
            existing, state = await self._store.read(lead_id, rules.compiled, now)
            if existing is None:
                placed = await place(self._store, rules, event, record.value or b"", state, now)
                if placed.result.status == "conflict":
                    continue
                if placed.result.status == "ok":
                    await self._publish(event, placed, record, out, now)
                    return
                existing = placed.result.existing
            assert existing is not None
            rerouting = event.type == "lead.updated" and rules.book.reroute_on_update
            if (
                rerouting
                and lead_id not in self._in_batch
                and await self._reroute(event, record.value or b"", rules)
            ):
                return
            if existing.published or lead_id in self._in_batch:
                self._metrics.duplicate_events.labels(self._in_topic).inc()
                log(logger, "lead.duplicate", lead_id=lead_id, event_id=event.event_id)
            else:
                # Decided before a crash, never acknowledged by Kafka: publish the
                # same bytes (same event_id) again. (The trace is best effort.)
                await out.send(self._out_topic, record.key, existing.event)
                self._published.append(lead_id)
                self._in_batch.add(lead_id)
            return
        raise TransientError(f"routing state kept changing for {MAX_CAS_ATTEMPTS} attempts")

    async def _publish(
        self, event: LeadEvent, placed: Placed, record: Record, out: Outbox, now: datetime
    ) -> None:
        await out.send(self._out_topic, record.key, placed.event)
        await out.send(self._trace_topic, record.key, placed.trace)
        self._published.append(event.lead.id)
        self._in_batch.add(event.lead.id)
        self._observe(event, placed, now)

    async def _reroute(self, event: LeadEvent, raw: bytes, rules: Rules) -> bool:
        """Route an untouched lead again when an update changed its routing fields.

        The new attempt's events go through the outbox (as a reassignment's do);
        False when there is nothing to do (touched, unchanged, or not assigned).
        """
        lead_id = event.lead.id
        for _ in range(MAX_CAS_ATTEMPTS):
            context = await self._store.reroute_context(lead_id)
            if context is None or context[3] == routing_digest(event.lead):
                return False
            attempt, rep, team, _ = context
            now = self._clock()
            moved = LeadReassigned(
                event_id=derived_event_id(lead_id, attempt + 1, "lead.reassigned"), lead_id=lead_id,
                from_rep_id=rep, from_team=team, attempt=attempt + 1, reason="routing fields changed",
                reassigned_at=now,
            )  # fmt: skip
            record = (self._out_topic, lead_id, encode(moved).decode())
            _, state = await self._store.read(lead_id, rules.compiled, now)
            placed = await place(
                self._store,
                rules,
                event,
                raw,
                state,
                now,
                mode="reroute",
                attempt=attempt + 1,
                outbox=(record,),
            )
            if placed.result.status == "conflict":
                continue
            if placed.result.status == "ok":
                log(logger, "lead.rerouted", lead_id=lead_id, from_rep=rep, attempt=attempt + 1)
                return True
            return False
        raise TransientError(f"routing state kept changing for {MAX_CAS_ATTEMPTS} attempts")

    async def after_publish(self) -> None:
        if self._published:
            # Cleared only once marked: a failed attempt is retried with the same leads.
            await self._store.mark_published(self._published)
            self._published = []

    def _observe(self, event: LeadEvent, placed: Placed, now: datetime) -> None:
        decision = placed.decision
        why = decision.trace.summary()
        if isinstance(decision, Assignment):
            policy = placed.armed.plan.policy.id if placed.armed is not None else "default"
            key = (decision.team, decision.route, policy)
            children = self._routed_metrics.get(key)
            if children is None:  # labels() costs more than the update: once per label set
                children = (
                    self._metrics.leads_routed.labels(decision.team, decision.route),
                    self._metrics.routing_seconds.labels(decision.team, policy),
                )
                self._routed_metrics[key] = children
            children[0].inc()
            children[1].observe(max(0.0, (now - event.occurred_at).total_seconds()))
            log(logger, "lead.routed", lead_id=event.lead.id, rep_id=decision.rep_id,
                team=decision.team, route=decision.route, strategy=decision.strategy, why=why)  # fmt: skip
        else:
            self._metrics.leads_queued.labels(decision.queue, decision.route).inc()
            log(logger, "lead.queued", logging.WARNING, lead_id=event.lead.id, queue=decision.queue, why=why)
