"""Decide, build the events, and commit: the one path every routing decision takes.

New leads (from Kafka), waiting leads (from the retry queue) and reassigned leads
(from an escalation) all go through `place`, so they share the decision, the SLA
plan, the atomic commit and the event shapes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from router.assignments import AssignmentStore, CommitResult
from router.outputs import assignment_event_json, decision_event_json
from router.rulebook_source import Rules
from router.sla_plan import Armed, arm, epoch_ms
from rules.decide import Assignment, Decision, Queued, decide
from rules.events import LeadEvent
from rules.selection import RepState


@dataclass(frozen=True, slots=True)
class Placed:
    decision: Decision
    result: CommitResult
    event: bytes
    trace: bytes
    armed: Armed | None


@dataclass(frozen=True, slots=True)
class Planned:
    """A decision with its events and SLA plan, ready to commit."""

    decision: Decision
    event: bytes
    trace: bytes
    armed: Armed | None
    commit: dict[str, Any]  # keyword arguments of AssignmentStore.commit after lead_id and decision


def plan(
    rules: Rules,
    event: LeadEvent,
    lead_event: bytes,
    state: RepState,
    now: datetime,
    *,
    mode: Literal["new", "requeue", "reassign", "reroute"] = "new",
    attempt: int = 1,
    exclude: frozenset[str] = frozenset(),
    exhausted_queue: str | None = None,
    outbox: tuple[tuple[str, str, str], ...] = (),
) -> Planned:
    """Decide for `event.lead` against `state` at `now`: the pure half of `place`.

    `exclude` takes reps out of this decision (earlier assignees on reassignment);
    `exhausted_queue` queues the lead there without deciding (attempts used up).
    """
    lead = event.lead
    decision: Decision
    if exhausted_queue is not None:
        empty = decide(lead, rules.compiled, state, now).trace
        decision = Queued(exhausted_queue, "(sla)", "SLA attempts exhausted", now, replace(empty, steps=()))
    else:
        if exclude:
            status = {**state.status, **dict.fromkeys(exclude, "excluded")}
            state = replace(state, status=status)
        decision = decide(lead, rules.compiled, state, now)
    armed = (
        arm(rules, lead, decision, attempt, event.occurred_at) if isinstance(decision, Assignment) else None
    )
    due = armed.plan.due if armed is not None else now
    policy = armed.plan.policy.id if armed is not None else "default"
    version = rules.book.version
    payload = assignment_event_json(event, decision, version, now, due, attempt, policy)
    trace = decision_event_json(lead.id, decision, version, attempt)
    commit = dict(
        trace=trace, attempt=attempt, assigned_ms=epoch_ms(now), due_ms=epoch_ms(due), lead_event=lead_event,
        mode=mode, timers=armed.timers if armed else (), fields=armed.fields if armed else None,
        keep_lead=armed.keep_lead if armed else False, outbox=outbox,
    )  # fmt: skip
    return Planned(decision, payload, trace, armed, commit)


async def place(
    store: AssignmentStore,
    rules: Rules,
    event: LeadEvent,
    lead_event: bytes,
    state: RepState,
    now: datetime,
    *,
    mode: Literal["new", "requeue", "reassign", "reroute"] = "new",
    attempt: int = 1,
    exclude: frozenset[str] = frozenset(),
    exhausted_queue: str | None = None,
    outbox: tuple[tuple[str, str, str], ...] = (),
) -> Placed:
    """Decide for `event.lead` against `state` at `now` and commit it (see `plan`)."""
    planned = plan(
        rules, event, lead_event, state, now, mode=mode, attempt=attempt, exclude=exclude,
        exhausted_queue=exhausted_queue, outbox=outbox,
    )  # fmt: skip
    result = await store.commit(event.lead.id, planned.decision, planned.event, **planned.commit)
    return Placed(planned.decision, result, planned.event, planned.trace, planned.armed)
