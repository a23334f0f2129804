"""Routing decision: a pure function of (lead, compiled rulebook, rep state, now).

The caller reads the shared rep state from Redis, calls `decide`, and commits the
result atomically only if the state it read is still current (compare-and-set on
the pool's version); on a conflict it reads again and decides again. So the
decision itself never needs a lock or a clock.

Routes are tried in order: the first whose conditions hold and whose target (or
fallback) can place the lead wins. A lead no route places is queued, never dropped.
Every decision carries a trace: territories, segments, named account, and for
each route tried why it matched or not and each candidate's verdict. Traces name
reps, routes and fields, never a lead's contact details.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from rules.accounts import NamedAccount
from rules.compiled import CompiledRulebook
from rules.conditions import Facts
from rules.events import Lead
from rules.fields import field_value
from rules.rulebook import OwnerTarget, QueueTarget, RepTarget, Strategy, Target, TeamTarget
from rules.selection import RepState, Verdict, select, verdict

__all__ = ["Assignment", "Decision", "Queued", "RepState", "RouteStep", "Trace", "decide", "facts_for"]


@dataclass(frozen=True, slots=True)
class RouteStep:
    route: str
    matched: bool
    reason: str
    outcome: str = "skipped"  # skipped | assigned | queued | nobody_available | no_owner
    candidates: tuple[tuple[str, Verdict], ...] = ()


@dataclass(frozen=True, slots=True)
class Trace:
    territories: tuple[str, ...]
    segments: tuple[str, ...]
    named_account: str | None
    steps: tuple[RouteStep, ...]

    def summary(self) -> str:
        """The compact form that rides on the output event."""
        parts = []
        for step in self.steps:
            text = f"{step.route}: {step.reason}" if not step.matched else f"{step.route}: {step.outcome}"
            skipped = [
                f"{rep} {why}" for rep, why in step.candidates if why not in ("picked", "not_their_turn")
            ]
            if skipped:
                text += " (" + ", ".join(skipped) + ")"
            parts.append(text)
        return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class Assignment:
    rep_id: str
    team: str
    route: str
    strategy: str  # round_robin | weighted | least_loaded | owner | rep
    # Compare-and-set: commit only while the pool's version still equals this
    # (None: a single named rep, guarded by its capacity alone).
    pool: str | None
    pool_version: int | None
    cursor_after: int | None
    weights_after: Mapping[str, int] | None
    capacity: int
    daily_cap: int | None
    local_day: str
    decided_at: datetime
    trace: Trace

    @property
    def explanation(self) -> tuple[str, ...]:
        return (self.trace.summary(),)


@dataclass(frozen=True, slots=True)
class Queued:
    queue: str
    route: str
    reason: str
    decided_at: datetime
    trace: Trace

    @property
    def retry(self) -> bool:
        """Queued because the reps who could take it were busy or away, not by design:
        such leads are assigned first in, first out as soon as someone can take them."""
        return any(step.outcome == "nobody_available" for step in self.trace.steps)

    @property
    def explanation(self) -> tuple[str, ...]:
        return (self.trace.summary(),)


Decision = Assignment | Queued


def facts_for(lead: Lead, book: CompiledRulebook) -> tuple[Facts, NamedAccount | None]:
    cache: dict[str, bool] = {}
    territories = book.territories.of(lead)
    account = book.accounts.match(lead)

    def segment(segment_id: str) -> bool:
        if segment_id not in cache:
            cache[segment_id] = False  # guards against self-reference while evaluating
            cache[segment_id] = book.segments[segment_id].holds(facts)
        return cache[segment_id]

    facts = Facts(lead, territories, account.id if account else None, segment)
    return facts, account


def decide(lead: Lead, book: CompiledRulebook, state: RepState, now: datetime) -> Decision:
    facts, account = facts_for(lead, book)
    steps: list[RouteStep] = []
    result: Decision | None = None
    routes = book.book.routes
    for index in book.candidate_routes(facts.territories):
        route = routes[index]
        why_not = route.when.first_failure(facts)
        if why_not is not None:
            steps.append(RouteStep(route.id, False, why_not))
            continue
        for target in (route.assign, route.fallback):
            if target is None:
                continue
            outcome = _place(target, route.id, lead, account, book, state, now)
            steps.append(outcome[0])
            if outcome[1] is not None:
                result = outcome[1]
                break
        if result is not None:
            break
    trace = Trace(
        territories=tuple(sorted(facts.territories)),
        segments=tuple(s for s in book.segments if facts.segment(s)),
        named_account=facts.named_account,
        steps=tuple(steps),
    )
    if result is None:
        return Queued(book.book.default_queue, "(none)", "no route could place the lead", now, trace)
    # `result` was made in this call and is not shared yet: completing it in place
    # is safe, and much cheaper than dataclasses.replace on the hot path.
    object.__setattr__(result, "trace", trace)
    return result


_Placement = tuple[RouteStep, "Assignment | Queued | None"]


def _place(
    target: Target,
    route: str,
    lead: Lead,
    account: NamedAccount | None,
    book: CompiledRulebook,
    state: RepState,
    now: datetime,
) -> _Placement:
    if isinstance(target, QueueTarget):
        queued = Queued(target.queue, route, f"route {route} queues", now, _EMPTY)
        return RouteStep(route, True, "matched", "queued"), queued
    if isinstance(target, RepTarget):
        return _single_rep(route, target.rep, "rep", book, state, now)
    if isinstance(target, OwnerTarget):
        if account is None:
            return RouteStep(route, True, "matched", "no_owner"), None
        if account.owner.rep is not None:
            step, placed = _single_rep(route, account.owner.rep, "owner", book, state, now)
            if placed is not None:
                return step, placed
            team = book.first_team.get(account.owner.rep)
            if team is None:
                return step, None
            # The owner cannot take it: their team does, by its own strategy. The
            # step keeps the owner's verdict first, so the trace says why.
            team_step, placed = _team(route, team, None, (), None, lead, book, state, now)
            others = tuple(c for c in team_step.candidates if c[0] != account.owner.rep)
            return RouteStep(route, True, "matched", team_step.outcome, step.candidates + others), placed
        assert account.owner.team is not None
        return _team(route, account.owner.team, None, (), None, lead, book, state, now)
    assert isinstance(target, TeamTarget)
    return _team(
        route, target.team, target.strategy, target.skills, target.skills_from, lead, book, state, now
    )


def _single_rep(
    route: str, rep_id: str, strategy: str, book: CompiledRulebook, state: RepState, now: datetime
) -> _Placement:
    rep = book.reps[rep_id]
    why = verdict(rep, state, now, frozenset())
    if why is not None:
        return RouteStep(route, True, "matched", "nobody_available", ((rep_id, why),)), None
    step = RouteStep(route, True, "matched", "assigned", ((rep_id, "picked"),))
    team = book.first_team.get(rep_id, "(none)")
    return step, _assignment(rep_id, team, route, strategy, None, None, None, None, book, now)


def _team(
    route: str,
    team: str,
    strategy_override: Strategy | None,
    required: tuple[str, ...],
    skills_from: str | None,
    lead: Lead,
    book: CompiledRulebook,
    state: RepState,
    now: datetime,
) -> _Placement:
    strategy = strategy_override or book.teams[team].strategy
    skills = frozenset(required)
    if skills_from is not None:
        wanted = str(field_value(lead, skills_from) or "").strip().lower()
        if wanted:  # a blank value asks for no skill, rather than one nobody has
            skills = skills | {wanted}
    pick, verdicts = select(book, team, strategy, book.members[team], state, now, skills)
    if pick is None:
        return RouteStep(route, True, "matched", "nobody_available", verdicts), None
    step = RouteStep(route, True, "matched", "assigned", verdicts)
    version = state.versions.get(team, 0)
    return step, _assignment(
        pick.rep_id, team, route, strategy, team, version, pick.cursor_after, pick.weights_after, book, now
    )


def _assignment(
    rep_id: str,
    team: str,
    route: str,
    strategy: str,
    pool: str | None,
    version: int | None,
    cursor_after: int | None,
    weights_after: Mapping[str, int] | None,
    book: CompiledRulebook,
    now: datetime,
) -> Assignment:
    rep = book.reps[rep_id]
    return Assignment(
        rep_id, team, route, strategy, pool, version, cursor_after, weights_after,
        rep.rep.capacity, rep.rep.daily_cap, rep.local_day(now).isoformat(), now, _EMPTY,
    )  # fmt: skip


_EMPTY = Trace((), (), None, ())
