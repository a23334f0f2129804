"""SLA policies: selection, the timeline of a lead, validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from rules.compiled import compile_rulebook
from rules.decide import facts_for
from rules.events import Lead
from rules.policies import PolicyBook, SlaPolicy, default_policy, parse_duration, touch_counts
from rules.rulebook import RulebookError, parse_rulebook

NY = ZoneInfo("America/New_York")
BUSINESS = {
    "kind": "business_hours",
    "timezone": "America/New_York",
    "hours": {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        (90, 90),
        ("90s", 90),
        ("5m", 300),
        ("1h30m", 5400),
        ("1h", 3600),
        ("2.5s", 2.5),
        (0.5, 0.5),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    """Durations read as people write them."""
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["5 minutes", "m", "", "1d", "-5m"])
def test_bad_durations(text: str) -> None:
    """Anything else is an error that says what is expected."""
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def book(policies: list[dict[str, object]]) -> PolicyBook:
    return PolicyBook(
        tuple(SlaPolicy.model_validate(p) for p in policies), default_policy(timedelta(minutes=5))
    )


def test_friday_evening_lead_is_due_monday_morning() -> None:
    """A 5-minute business-hours SLA started 16:58 on a Friday is due 09:03 on Monday."""
    policies = book([{"id": "b", "calendar": BUSINESS}])
    start = datetime(2026, 11, 20, 16, 58, tzinfo=NY)
    plan = policies.plan(policies.by_id("b"), start, None)
    assert plan.due == datetime(2026, 11, 23, 9, 3, tzinfo=NY)
    assert policies.business_seconds(plan.policy, start, plan.due) == 300


def test_warning_sits_before_the_deadline_in_working_time() -> None:
    """warn_before is working time: 1 minute before a Monday 09:03 deadline is 09:02."""
    policies = book([{"id": "b", "calendar": BUSINESS, "warn_before": "1m"}])
    plan = policies.plan(policies.by_id("b"), datetime(2026, 11, 20, 16, 58, tzinfo=NY), None)
    assert plan.warn_at == datetime(2026, 11, 23, 9, 2, tzinfo=NY)


def test_clock_can_start_at_lead_creation() -> None:
    """clock_starts: lead_created measures from the lead event, not the assignment."""
    policies = book([{"id": "c", "clock_starts": "lead_created", "first_touch": "5m"}])
    created = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    plan = policies.plan(policies.by_id("c"), created + timedelta(seconds=30), created)
    assert plan.clock_start == created
    assert plan.due == created + timedelta(minutes=5)


def test_escalations_follow_the_deadline_on_wall_clock_time() -> None:
    """Escalation steps are wall-clock offsets after the deadline, in order."""
    steps = [{"after": "0s", "action": "notify_rep"}, {"after": "2m", "action": "notify_contact"},
             {"after": "5m", "action": "reassign"}]  # fmt: skip
    policies = book([{"id": "e", "first_touch": "5m", "escalation": steps}])
    start = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    plan = policies.plan(policies.by_id("e"), start, None)
    due = start + timedelta(minutes=5)
    assert plan.escalations == (
        (0, due, "notify_rep"), (1, due + timedelta(minutes=2), "notify_contact"),
        (2, due + timedelta(minutes=5), "reassign"),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"id": "x", "first_touch": "0s"}, "first_touch must be positive"),
        ({"id": "x", "first_touch": "1m", "warn_before": "2m"}, "warn_before must be positive and shorter"),
        (
            {
                "id": "x",
                "escalation": [
                    {"after": "2m", "action": "reassign"},
                    {"after": "1m", "action": "notify_rep"},
                ],
            },
            "in order",
        ),
        ({"id": "x", "escalation": [{"after": "1m", "action": "page"}]}, "action"),
        ({"id": "x", "touch": {"by": "anyone"}}, "by"),
        ({"id": "x", "calendar": {"kind": "business_hours", "timezone": "Mars/Base"}}, "timezone"),
    ],
)
def test_invalid_policies(policy: dict[str, object], message: str) -> None:
    """A policy that cannot work is rejected with a reason."""
    with pytest.raises(ValidationError, match=message):
        SlaPolicy.model_validate(policy)


RULEBOOK = """
version: p1
segments: [{id: ent, when: {field: company.employees, gte: 1000}}]
reps: [{id: a, teams: [t]}, {id: b, teams: [u]}]
teams: [{id: t}, {id: u}]
routes: [{id: r1, when: {country: US}, assign: {team: t}}, {id: r2, assign: {team: u}}]
sla_policies:
  - {id: enterprise, when: {segment: ent}, first_touch: 2m}
  - {id: us-team, routes: [r1], teams: [t], first_touch: 10m}
"""


@pytest.mark.parametrize(
    ("lead", "route", "team", "policy"),
    [
        ({"id": "1", "company": {"employees": 5000}, "country": "US"}, "r1", "t", "enterprise"),
        ({"id": "2", "country": "US"}, "r1", "t", "us-team"),
        ({"id": "3", "country": "US"}, "r1", "u", "default"),
        ({"id": "4"}, "r2", "u", "default"),
    ],
)
def test_first_matching_policy_wins(lead: dict[str, object], route: str, team: str, policy: str) -> None:
    """Policies are tried in order; all of a policy's selectors must hold; else the default."""
    rulebook = parse_rulebook(RULEBOOK)
    compiled = compile_rulebook(rulebook)
    policies = PolicyBook(rulebook.sla_policies, default_policy(timedelta(minutes=5)))
    facts, _ = facts_for(Lead.model_validate(lead), compiled)
    assert policies.select(route, team, facts).id == policy


def test_policy_references_are_checked() -> None:
    """A policy naming an unknown route, team or segment is a rulebook error with its path."""
    bad = RULEBOOK.replace("routes: [r1]", "routes: [nope]").replace("{segment: ent}", "{segment: big}")
    with pytest.raises(RulebookError) as info:
        parse_rulebook(bad)
    problems = " | ".join(info.value.problems)
    assert "sla_policies[1].routes[0] (line 9): unknown route 'nope'" in problems
    assert "sla_policies[0].when.segment (line 8): unknown segment 'big'" in problems


@pytest.mark.parametrize(
    ("channel", "direction", "counts"),
    [("call", "outbound", True), ("call", "inbound", False), ("meeting", "outbound", False)],
)
def test_touch_rules(channel: str, direction: str, counts: bool) -> None:
    """Only the policy's channels and directions stop the clock."""
    rule = SlaPolicy.model_validate({"id": "x", "touch": {"channels": ["call", "email"]}}).touch
    assert touch_counts(rule, channel, direction) is counts
