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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from rules.compiled import CompiledRep, CompiledRulebook
from rules.rulebook import Strategy

Verdict = str  # picked | away | offline | out_of_office | out_of_hours | missing_skill | ...


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
    status = state.status.get(rep.rep.id, rep.rep.status)
    if status != "available":
        return status if status in ("away", "offline") else "away"
    if rep.absent(now):
        return "out_of_office"
    if not rep.in_hours(now):
        return "out_of_hours"
    if not skills <= rep.skills:
        return "missing_skill"
    if state.open_leads.get(rep.rep.id, 0) >= rep.rep.capacity:
        return "at_capacity"
    cap = rep.rep.daily_cap
    if cap is not None and state.assigned_today.get(rep.rep.id, 0) >= cap:
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
    verdicts: dict[str, Verdict] = {}
    eligible: list[int] = []
    for index, rep_id in enumerate(members):
        why = verdict(book.reps[rep_id], state, now, skills)
        if why is None:
            eligible.append(index)
        else:
            verdicts[rep_id] = why
    pick = None
    if eligible:
        if strategy == "round_robin":
            pick = _round_robin(members, eligible, state.cursors.get(team, 0))
        elif strategy == "weighted":
            pick = _weighted(book, members, eligible, state.weights.get(team, {}))
        else:
            pick = _least_loaded(members, eligible, state)
        for index in eligible:
            verdicts[members[index]] = "picked" if members[index] == pick.rep_id else "not_their_turn"
    return pick, tuple((rep_id, verdicts[rep_id]) for rep_id in members)


def _round_robin(members: Sequence[str], eligible: list[int], cursor: int) -> Pick:
    start = cursor % len(members)
    index = min(eligible, key=lambda i: (i - start) % len(members))
    return Pick(members[index], cursor_after=(index + 1) % len(members))


def _weighted(
    book: CompiledRulebook, members: Sequence[str], eligible: list[int], current: Mapping[str, int]
) -> Pick:
    weights = {members[i]: book.reps[members[i]].rep.weight for i in eligible}
    after = {rep_id: current.get(rep_id, 0) + weight for rep_id, weight in weights.items()}
    # Highest current weight wins; ties go to member order (dicts keep insertion order).
    winner = max(after, key=lambda rep_id: after[rep_id])
    after[winner] -= sum(weights.values())
    return Pick(winner, weights_after=after)


def _least_loaded(members: Sequence[str], eligible: list[int], state: RepState) -> Pick:
    def load(index: int) -> tuple[int, int, int]:
        rep_id = members[index]
        return (state.open_leads.get(rep_id, 0), state.last_assigned_ms.get(rep_id, -1), index)

    return Pick(members[min(eligible, key=load)])
