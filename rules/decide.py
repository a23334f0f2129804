"""Routing decision: a pure function of (lead, rulebook, rep state, now).

The caller reads the shared rep state (round-robin cursors, open-lead counts)
from Redis, calls `decide`, and commits the result atomically only if the state
it read is still current (compare-and-set); on a conflict it reads again and
decides again. So the decision itself never needs a lock or a clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from rules.events import Lead
from rules.rulebook import Match, QueueTarget, Rulebook


@dataclass(frozen=True, slots=True)
class RepState:
    """Shared state the decision reads: open leads per rep, cursor per team."""

    open_leads: Mapping[str, int] = field(default_factory=dict)
    cursors: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Assignment:
    rep_id: str
    team: str
    route: str
    # Compare-and-set: commit only while the team's cursor still equals
    # `cursor_before`, then store `cursor_after`.
    cursor_before: int
    cursor_after: int
    decided_at: datetime
    explanation: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Queued:
    queue: str
    route: str
    reason: str
    decided_at: datetime
    explanation: tuple[str, ...]


Decision = Assignment | Queued


def matches(when: Match, lead: Lead) -> tuple[bool, str]:
    """Whether a route's conditions hold, with a PII-free reason."""
    if when.country is not None:
        if lead.country is None:
            return False, "no country"
        if lead.country not in when.country:
            return False, f"country {lead.country} not in route"
        return True, f"country {lead.country} matched"
    return True, "catch-all"


def _pick_round_robin(
    rulebook: Rulebook, team: str, state: RepState
) -> tuple[str, int, int] | tuple[None, str]:
    members = rulebook.members(team)
    if not members:
        return None, "team has no members"
    raw = state.cursors.get(team, 0)
    start = raw % len(members)
    skipped = []
    for step in range(len(members)):
        index = (start + step) % len(members)
        rep = rulebook.rep(members[index])
        if rep.status != "available":
            skipped.append(f"{rep.id} away")
        elif state.open_leads.get(rep.id, 0) >= rep.capacity:
            skipped.append(f"{rep.id} at capacity {rep.capacity}")
        else:
            # The stored cursor is compared as read (`raw`), so the commit fails
            # if any other worker moved it meanwhile.
            return rep.id, raw, (index + 1) % len(members)
    return None, "nobody available (" + ", ".join(skipped) + ")"


def decide(lead: Lead, rulebook: Rulebook, state: RepState, now: datetime) -> Decision:
    """The first route that matches and can place the lead wins.

    A team route with nobody available falls through to the next route; a lead
    that no route places is queued (never dropped) on the default queue.
    """
    trail: list[str] = []
    for route in rulebook.routes:
        ok, why = matches(route.when, lead)
        if not ok:
            trail.append(f"route {route.id}: skipped, {why}")
            continue
        if isinstance(route.assign, QueueTarget):
            trail.append(f"route {route.id}: {why}, queued on {route.assign.queue}")
            return Queued(route.assign.queue, route.id, "route queues", now, tuple(trail))
        team = route.assign.team
        picked = _pick_round_robin(rulebook, team, state)
        if picked[0] is None:
            trail.append(f"route {route.id}: {why}, team {team}: {picked[1]}; falling through")
            continue
        rep_id, before, after = picked
        trail.append(f"route {route.id}: {why}, team {team} round_robin picked {rep_id}")
        return Assignment(rep_id, team, route.id, before, after, now, tuple(trail))
    reason = "no route could place the lead"
    trail.append(reason)
    return Queued(rulebook.default_queue, "(none)", reason, now, tuple(trail))
