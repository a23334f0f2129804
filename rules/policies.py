"""SLA policies: how fast a lead must be touched, on which clock, and what happens if not.

    sla_policies:
      - id: enterprise-inbound
        routes: [emea-enterprise]          # selectors: all given must hold; none = any lead
        teams: [emea]
        when: {segment: ent}               # any condition, like a route's
        first_touch: 5m
        warn_before: 1m
        calendar: {kind: business_hours, timezone: Europe/Berlin, hours: {...}, holiday_country: DE}
        clock_starts: assigned             # or lead_created
        touch: {channels: [call, email], directions: [outbound], by: assigned_rep}
        escalation:
          - {after: 0s, action: notify_rep}
          - {after: 2m, action: notify_contact}
          - {after: 5m, action: reassign}
        max_attempts: 3
        exhausted_queue: sla-exhausted

The first policy whose selectors hold wins; without one, the default policy applies
(a 24x7 clock with the configured first-touch target). `plan` turns a policy and a
start time into the timeline of a lead: warn point, deadline, escalation steps.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from rules.calendar import Calendar, CalendarSpec, compile_calendar
from rules.conditions import Checks, Condition, Facts, Name, compile_condition
from rules.events import Channel, Direction

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$")


def parse_duration(value: Any) -> Any:
    """`90`, `90s`, `5m`, `1h30m` -> timedelta; anything else is left for pydantic to reject."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if isinstance(value, str):
        if re.fullmatch(r"\d+(?:\.\d+)?", value.strip()):
            return timedelta(seconds=float(value))
        match = _DURATION.match(value.strip())
        if match and any(match.groups()):
            hours, minutes, seconds = match.groups()
            return timedelta(hours=int(hours or 0), minutes=int(minutes or 0), seconds=float(seconds or 0))
        raise ValueError(f"invalid duration {value!r}: use e.g. 90s, 5m, 1h30m or a number of seconds")
    return value


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Action = Literal["notify_rep", "notify_contact", "reassign"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TouchRule(_Strict):
    """Which activities stop the clock."""

    channels: tuple[Channel, ...] = ("call", "email", "sms", "meeting", "chat")
    directions: tuple[Direction, ...] = ("outbound",)
    by: Literal["assigned_rep", "any_rep"] = "assigned_rep"


class EscalationStep(_Strict):
    after: Duration = Field(description="wall-clock time after the breach")
    action: Action


class SlaPolicy(_Strict):
    id: Name
    routes: tuple[Name, ...] | None = None
    teams: tuple[Name, ...] | None = None
    when: Condition | None = None
    first_touch: Duration = timedelta(minutes=5)
    warn_before: Duration | None = None
    calendar: CalendarSpec = Field(default_factory=CalendarSpec)
    clock_starts: Literal["assigned", "lead_created"] = "assigned"
    touch: TouchRule = Field(default_factory=TouchRule)
    escalation: tuple[EscalationStep, ...] = ()
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 3
    exhausted_queue: Name = "sla-exhausted"

    @model_validator(mode="after")
    def _check(self) -> SlaPolicy:
        if self.first_touch <= timedelta(0):
            raise ValueError("first_touch must be positive")
        if self.warn_before is not None and not timedelta(0) < self.warn_before < self.first_touch:
            raise ValueError("warn_before must be positive and shorter than first_touch")
        afters = [step.after for step in self.escalation]
        if afters != sorted(afters) or any(a < timedelta(0) for a in afters):
            raise ValueError("escalation steps must be in order of `after`, none negative")
        return self

    def applies(self, route: str, team: str, facts: Facts, when: Checks | None = None) -> bool:
        """Whether the policy's selectors hold; `when` is its condition, compiled."""
        if self.routes is not None and route not in self.routes:
            return False
        if self.teams is not None and team not in self.teams:
            return False
        if self.when is None:
            return True
        return (when or compile_condition(self.when)).holds(facts)


def default_policy(first_touch: timedelta) -> SlaPolicy:
    """What applies when no policy of the rulebook does: 24x7, the configured target."""
    return SlaPolicy(id="default", first_touch=first_touch)


@dataclass(frozen=True, slots=True)
class SlaPlan:
    """A lead's timeline under its policy. Times are aware and in UTC."""

    policy: SlaPolicy
    clock_start: datetime
    due: datetime
    warn_at: datetime | None
    escalations: tuple[tuple[int, datetime, Action], ...]


class PolicyBook:
    """The policies of a rulebook, with their calendars compiled once."""

    def __init__(self, policies: tuple[SlaPolicy, ...], default: SlaPolicy) -> None:
        self.policies = policies
        self.default = default
        self._calendars: dict[str, Calendar] = {p.id: compile_calendar(p.calendar) for p in policies}
        self._when = {p.id: compile_condition(p.when) for p in policies if p.when is not None}
        self._calendars.setdefault(default.id, compile_calendar(default.calendar))

    def select(self, route: str, team: str, facts: Facts) -> SlaPolicy:
        for policy in self.policies:
            if policy.applies(route, team, facts, self._when.get(policy.id)):
                return policy
        return self.default

    def by_id(self, policy_id: str) -> SlaPolicy:
        for policy in self.policies:
            if policy.id == policy_id:
                return policy
        return self.default

    def calendar(self, policy: SlaPolicy) -> Calendar:
        if policy.id not in self._calendars:
            self._calendars[policy.id] = compile_calendar(policy.calendar)
        return self._calendars[policy.id]

    def plan(self, policy: SlaPolicy, assigned_at: datetime, created_at: datetime | None) -> SlaPlan:
        """The deadline adds working time only; warnings sit `warn_before` of working
        time ahead of it; escalations run on wall-clock time after the deadline."""
        start = (
            created_at if policy.clock_starts == "lead_created" and created_at is not None else assigned_at
        )
        start = min(start, assigned_at)  # a lead cannot be due before it was created
        calendar = self.calendar(policy)
        due = calendar.add_working_time(start, policy.first_touch)
        warn_at = None
        if policy.warn_before is not None:
            warn_at = calendar.add_working_time(start, policy.first_touch - policy.warn_before)
        steps = tuple((i, due + step.after, step.action) for i, step in enumerate(policy.escalation))
        return SlaPlan(policy, start, due, warn_at, steps)

    def business_seconds(self, policy: SlaPolicy, start: datetime, end: datetime) -> float:
        return self.calendar(policy).working_time_between(start, end).total_seconds()


def touch_counts(rule: TouchRule, channel: str, direction: str) -> bool:
    return channel in rule.channels and direction in rule.directions


def as_fields(plan: SlaPlan) -> Mapping[str, str]:
    """What the monitor needs of a plan, as strings for the lead's Redis record."""
    rule = plan.policy.touch
    return {
        "policy": plan.policy.id,
        "clock_ms": str(int(plan.clock_start.timestamp() * 1000)),
        "touch_by": rule.by,
        "touch_channels": "," + ",".join(rule.channels) + ",",
        "touch_directions": "," + ",".join(rule.directions) + ",",
    }
