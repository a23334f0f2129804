"""Choosing a rep from a pool: who can take a lead now, and whose turn it is.

Eligibility, in the order a trace reports it: live status, out of office, out of
hours, missing skill, at capacity, at daily cap. Among the eligible:

- round_robin: the first eligible rep at or after the team's cursor; the cursor
  then points past the picked rep. A rep skipped while away gets the next turn
  that comes round after their return: no starving, no double turn.
- weighted: smooth weighted round robin (the nginx algorithm): each eligible rep
  gains its weight, the highest wins and pays back the total, so a weight-2 rep
  gets two of every three leads against a weight-1 rep, interleaved.
- least_loaded: fewest leads awaiting first touch; ties go to whoever waited
  longest since their last assignment, then to member order.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from rules.compiled import CompiledRep, CompiledRulebook
from rules.rulebook import Strategy
from rules.trace import Verdict

__all__ = ["Pick", "RepState", "Verdict", "select", "verdict"]


@dataclass(frozen=True, slots=True)
class RepState:
    """Shared state a decision reads (kept in Redis by the router)."""

    open_leads: Mapping[str, int] = field(default_factory=dict)
    cursors: Mapping[str, int] = field(default_factory=dict)  # team -> round-robin cursor
    weights: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # team -> rep -> current
    last_assigned_ms: Mapping[str, int] = field(default_factory=dict)  # rep -> epoch ms
    assigned_today: Mapping[str, int] = field(default_factory=dict)  # rep -> count, rep's local day
    status: Mapping[str, str] = field(default_factory=dict)  # rep -> live status (reps topic)
    versions: Mapping[str, int] = field(default_factory=dict)  # team -> version, for compare-and-set


@dataclass(frozen=True, slots=True)
class Pick:
    rep_id: str
    cursor_after: int | None = None
    weights_after: Mapping[str, int] | None = None


def verdict(rep: CompiledRep, state: RepState, now: datetime, skills: frozenset[str]) -> Verdict | None:
    """Why `rep` cannot take a lead now, or None if it can."""
    status = state.status.get(rep.id, rep.status)
    if status != "available":
        return status if status in ("away", "offline") else "away"
    if rep.absences and rep.absent(now):
        return "out_of_office"
    if rep.hours is not None and not rep.hours.is_open(now):
        return "out_of_hours"
    if skills and not skills <= rep.skills:
        return "missing_skill"
    if state.open_leads.get(rep.id, 0) >= rep.capacity:
        return "at_capacity"
    cap = rep.daily_cap
    if cap is not None and state.assigned_today.get(rep.id, 0) >= cap:
        return "daily_cap"
    return None


def select(
    book: CompiledRulebook,
    team: str,
    strategy: Strategy,
    members: Sequence[str],
    state: RepState,
    now: datetime,
    skills: frozenset[str] = frozenset(),
) -> tuple[Pick | None, tuple[tuple[str, Verdict], ...]]:
    """Pick a rep from `members` (in rotation order); verdicts for every member."""
    reps = book.reps
    verdicts: list[tuple[str, Verdict]] = []
    eligible: list[int] = []
    for index, rep_id in enumerate(members):
        why = verdict(reps[rep_id], state, now, skills)
        if why is None:
            eligible.append(index)
            why = "not_their_turn"  # unless picked, below
        verdicts.append((rep_id, why))
    pick = None
    if eligible:
        if strategy == "round_robin":
            pick = _round_robin(members, eligible, state.cursors.get(team, 0))
        elif strategy == "weighted":
            pick = _weighted(book, members, eligible, state.weights.get(team, {}))
        else:
            pick = _least_loaded(members, eligible, state)
        for index in eligible:
            if members[index] == pick.rep_id:
                verdicts[index] = (pick.rep_id, "picked")
    return pick, tuple(verdicts)


def _round_robin(members: Sequence[str], eligible: list[int], cursor: int) -> Pick:
    """The first eligible member at or after the cursor, wrapping round."""
    position = bisect_left(eligible, cursor % len(members))  # `eligible` is in member order
    index = eligible[position] if position < len(eligible) else eligible[0]
    return Pick(members[index], cursor_after=(index + 1) % len(members))


def _weighted(
    book: CompiledRulebook, members: Sequence[str], eligible: list[int], current: Mapping[str, int]
) -> Pick:
    reps = book.reps
    after: dict[str, int] = {}
    total = 0
    for index in eligible:
        rep_id = members[index]
        if rep_id not in after:  # listed twice: one turn, one weight
            weight = reps[rep_id].weight
            after[rep_id] = current.get(rep_id, 0) + weight
            total += weight
    # Highest current weight wins; ties go to member order (dicts keep insertion order).
    winner = max(after, key=after.__getitem__)
    after[winner] -= total
    return Pick(winner, weights_after=after)


def _least_loaded(members: Sequence[str], eligible: list[int], state: RepState) -> Pick:
    """Fewest open leads; ties go to the longest wait since the last assignment, then member order."""
    open_leads, last_assigned = state.open_leads, state.last_assigned_ms
    best, lowest = -1, (0, 0)
    for index in eligible:
        rep_id = members[index]
        load = (open_leads.get(rep_id, 0), last_assigned.get(rep_id, -1))
        if best < 0 or load < lowest:
            best, lowest = index, load
    return Pick(members[best])
