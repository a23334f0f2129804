"""`leadrouter explain`: a routing decision in words.

Two sources, one printer: the decision the router stored in Redis for a lead
(`load_stored`), or a hypothetical one, a lead decided against a rulebook with
no leads open anywhere (`hypothetical`). Both are `RoutingDecision`s, the event
the router publishes on `routing-decisions`, so an explanation shows exactly
what the trace holds: ids of routes, territories, segments, accounts and reps,
never a lead's contact details.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from pydantic import Field, TypeAdapter, ValidationError

from router.assignments import AssignmentStore
from router.outputs import decision_event
from router.redis_client import make_redis
from router.redis_keys import RedisKeys
from router.settings import Settings
from rules.compiled import CompiledRulebook
from rules.decide import decide
from rules.events import Lead, LeadAssigned, LeadQueued, RoutingDecision
from rules.selection import RepState

VERDICTS = {
    "picked": "picked",
    "not_their_turn": "available, not their turn",
    "away": "away",
    "offline": "offline",
    "out_of_office": "out of office",
    "out_of_hours": "outside working hours",
    "missing_skill": "lacks a required skill",
    "at_capacity": "at capacity (open leads awaiting first touch)",
    "daily_cap": "reached the daily cap",
}
OUTCOMES = {
    "assigned": "assigned",
    "queued": "queued",
    "nobody_available": "nobody available, falling through",
    "no_owner": "not a named account, falling through",
    "skipped": "skipped",
}
_EVENT: TypeAdapter[LeadAssigned | LeadQueued] = TypeAdapter(
    Annotated[LeadAssigned | LeadQueued, Field(discriminator="type")]
)


@dataclass(frozen=True, slots=True)
class Stored:
    """What Redis holds for a lead: the full trace and/or the published event."""

    decision: RoutingDecision | None
    event: LeadAssigned | LeadQueued | None


class UnreadableRecord(Exception):
    """A stored record this version of leadrouter cannot parse."""


def hypothetical(book: CompiledRulebook, lead: Lead, at: datetime) -> RoutingDecision:
    """The decision for `lead` at `at` if no rep had an open lead, cursors at the start."""
    return decision_event(lead.id, decide(lead, book, RepState(), at), book.version)


async def load_stored(settings: Settings, lead_id: str) -> Stored | None:
    """The lead's stored decision, or None when Redis has no record of the lead."""
    redis = make_redis(settings.redis)
    try:
        store = AssignmentStore(redis, RedisKeys(settings.redis.prefix), settings.redis.retention_seconds)
        event, trace = await store.trace(lead_id)
    finally:
        await redis.aclose()
    if not event and not trace:
        return None
    try:
        decision = RoutingDecision.model_validate_json(trace) if trace else None
        published = _EVENT.validate_json(event) if event else None
    except ValidationError as exc:
        raise UnreadableRecord(
            f"lead {lead_id}: stored record not readable: {exc.error_count()} errors"
        ) from None
    return Stored(decision, published)


def explain(decision: RoutingDecision) -> list[str]:
    """A readable explanation, one line a fact, candidates indented under their route."""
    if decision.outcome == "assigned":
        head = f"assigned to {decision.rep_id} (team {decision.team}) by route {decision.route}"
    elif decision.route == "(none)":
        head = f"queued on {decision.queue}: no route could place it"
    else:
        head = f"queued on {decision.queue} by route {decision.route}"
    lines = [
        f"lead {decision.lead_id}: {head}",
        f"  decided at {decision.decided_at.isoformat()} by rulebook {decision.rulebook_version}"
        + (f" (attempt {decision.attempt})" if decision.attempt != 1 else ""),
        f"  territories:   {', '.join(decision.territories) or '(none)'}",
        f"  segments:      {', '.join(decision.segments) or '(none)'}",
        f"  named account: {decision.named_account or '(none)'}",
        "  routes tried, in order:",
    ]
    previous: str | None = None
    width = max((len(c.rep_id) for s in decision.steps for c in s.candidates), default=0)
    for n, step in enumerate(decision.steps, 1):
        if not step.matched:
            lines.append(f"    {n}. {step.route}: skipped, {step.reason}")
        else:
            again = " (its fallback)" if step.route == previous else ""
            lines.append(f"    {n}. {step.route}{again}: matched, {OUTCOMES.get(step.outcome, step.outcome)}")
        for candidate in step.candidates:
            why = VERDICTS.get(candidate.verdict, candidate.verdict)
            lines.append(f"         {candidate.rep_id:<{width}}  {why}")
        previous = step.route if step.matched else None
    if not decision.steps:
        lines.append("    (none)")
    return lines


def explain_event(event: LeadAssigned | LeadQueued) -> list[str]:
    """The compact explanation of an output event, when no full trace was stored."""
    if isinstance(event, LeadAssigned):
        head = f"assigned to {event.rep_id} (team {event.team}) by route {event.route}"
        at = event.assigned_at
    else:
        head = f"queued on {event.queue} by route {event.route}: {event.reason}"
        at = event.queued_at
    return [
        f"lead {event.lead_id}: {head}",
        f"  decided at {at.isoformat()} by rulebook {event.rulebook_version}",
        "  (no full trace stored; the summary published with the event:)",
        *(f"    {part}" for part in event.explanation.split("; ") if part),
    ]
