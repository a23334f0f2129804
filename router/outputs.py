"""The events a routing decision publishes: the assignment (or queueing) and its trace."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from rules.decide import Assignment, Decision, Trace
from rules.events import (
    LeadAssigned,
    LeadEvent,
    LeadQueued,
    RoutingDecision,
    derived_event_id,
)


def assignment_event(
    event: LeadEvent,
    decision: Decision,
    version: str,
    now: datetime,
    due: datetime,
    attempt: int = 1,
    policy: str = "default",
) -> LeadAssigned | LeadQueued:
    lead_id = event.lead.id
    summary = decision.trace.summary()
    if isinstance(decision, Assignment):
        return LeadAssigned(
            event_id=derived_event_id(lead_id, attempt, "lead.assigned"),
            lead_id=lead_id,
            rep_id=decision.rep_id,
            team=decision.team,
            route=decision.route,
            rulebook_version=version,
            assigned_at=now,
            first_touch_due_at=due,
            attempt=attempt,
            lead_created_at=event.occurred_at,
            explanation=summary,
            policy=policy,
        )
    return LeadQueued(
        event_id=derived_event_id(lead_id, attempt, "lead.queued"),
        lead_id=lead_id,
        queue=decision.queue,
        route=decision.route,
        rulebook_version=version,
        queued_at=now,
        reason=decision.reason,
        attempt=attempt,
        explanation=summary,
    )


def assignment_event_json(
    event: LeadEvent,
    decision: Decision,
    version: str,
    now: datetime,
    due: datetime,
    attempt: int = 1,
    policy: str = "default",
) -> bytes:
    """`encode(assignment_event(...))`, byte for byte, without building the model: every
    value is ours or already validated (tests/unit/test_outputs_json.py keeps the two
    identical)."""
    lead_id = event.lead.id
    summary = decision.trace.summary()
    if isinstance(decision, Assignment):
        fields: dict[str, Any] = {
            "event_id": derived_event_id(lead_id, attempt, "lead.assigned"),
            "type": "lead.assigned",
            "lead_id": lead_id,
            "rep_id": decision.rep_id,
            "team": decision.team,
            "route": decision.route,
            "rulebook_version": version,
            "assigned_at": now,
            "first_touch_due_at": due,
            "attempt": attempt,
            "lead_created_at": event.occurred_at,
            "explanation": summary,
            "policy": policy,
        }
    else:
        fields = {
            "event_id": derived_event_id(lead_id, attempt, "lead.queued"),
            "type": "lead.queued",
            "lead_id": lead_id,
            "queue": decision.queue,
            "route": decision.route,
            "rulebook_version": version,
            "queued_at": now,
            "reason": decision.reason,
            "attempt": attempt,
            "explanation": summary,
        }
    return orjson.dumps(fields, option=orjson.OPT_UTC_Z)


def _steps(trace: Trace) -> list[dict[str, object]]:
    # Plain dicts, validated into RouteStep/CandidateVerdict by RoutingDecision in one
    # call: building a model per candidate (a score of them per decision) was a fifth
    # of the router's time per lead.
    return [
        {
            "route": s.route,
            "matched": s.matched,
            "reason": s.reason,
            "outcome": s.outcome,
            "candidates": [{"rep_id": r, "verdict": v} for r, v in s.candidates],
        }
        for s in trace.steps
    ]


def decision_event(lead_id: str, decision: Decision, version: str, attempt: int = 1) -> RoutingDecision:
    return RoutingDecision.model_validate(_decision_fields(lead_id, decision, version, attempt))


def decision_event_json(lead_id: str, decision: Decision, version: str, attempt: int = 1) -> bytes:
    """`encode(decision_event(...))`, byte for byte, without building the models: the
    trace is our own typed data, and validating a score of candidates per decision was
    the largest single cost of routing a lead (tests/unit/test_outputs.py keeps the two
    identical)."""
    return orjson.dumps(
        _decision_fields(lead_id, decision, version, attempt),
        option=orjson.OPT_UTC_Z,
    )


def _decision_fields(lead_id: str, decision: Decision, version: str, attempt: int) -> dict[str, Any]:
    """The routing.decision event as plain data, in the model's field order."""
    trace = decision.trace
    assigned = isinstance(decision, Assignment)
    return {
        "event_id": derived_event_id(lead_id, attempt, "routing.decision"),
        "type": "routing.decision",
        "lead_id": lead_id,
        "attempt": attempt,
        "decided_at": decision.decided_at,
        "rulebook_version": version,
        "outcome": "assigned" if assigned else "queued",
        "rep_id": decision.rep_id if isinstance(decision, Assignment) else None,
        "team": decision.team if isinstance(decision, Assignment) else None,
        "route": decision.route,
        "queue": None if isinstance(decision, Assignment) else decision.queue,
        "territories": list(trace.territories),
        "segments": list(trace.segments),
        "named_account": trace.named_account,
        "steps": _steps(trace),
    }
