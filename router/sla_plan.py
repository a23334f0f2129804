"""From a decision to its SLA timeline: the policy, the timers to arm, the fields to keep."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from router.rulebook_source import Rules
from rules.decide import Assignment, facts_for
from rules.events import Lead
from rules.fields import routing_digest
from rules.policies import SlaPlan, as_fields


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class Armed:
    plan: SlaPlan
    timers: list[tuple[str, int]]
    fields: dict[str, str]
    keep_lead: bool  # the policy may reassign: the lead must stay available to route again


def arm(rules: Rules, lead: Lead, decision: Assignment, attempt: int, created_at: datetime | None) -> Armed:
    book = rules.policies
    if book.policies:
        facts, _ = facts_for(lead, rules.compiled)
        policy = book.select(decision.route, decision.team, facts)
    else:
        policy = book.default  # no policy to match: the lead's facts are not needed
    plan = rules.policies.plan(policy, decision.decided_at, created_at)
    lead_id = lead.id
    timers = [(f"breach:{attempt}:{lead_id}", epoch_ms(plan.due))]
    if plan.warn_at is not None:
        timers.append((f"warn:{attempt}:{lead_id}", epoch_ms(plan.warn_at)))
    timers += [(f"esc{i}:{attempt}:{lead_id}", epoch_ms(at)) for i, at, _ in plan.escalations]
    fields = dict(as_fields(plan))
    fields["esc"] = str(len(plan.escalations))
    fields["route_digest"] = routing_digest(lead)
    if created_at is not None:
        fields["created_ms"] = str(epoch_ms(created_at))
    if plan.warn_at is not None:
        fields["warn_ms"] = str(epoch_ms(plan.warn_at))
    keep = any(action == "reassign" for _, _, action in plan.escalations)
    return Armed(plan, timers, fields, keep)
