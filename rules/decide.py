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
from rules.selection import RepState, select, verdict
from rules.trace import RouteStep, Trace

__all__ = ["Assignment", "Decision", "Queued", "RepState", "RouteStep", "Trace", "decide", "facts_for"]


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
    facts, account, _ = _facts(lead, book)
    return facts, account


def _facts(lead: Lead, book: CompiledRulebook) -> tuple[Facts, NamedAccount | None, frozenset[str]]:
    """The facts conditions read, the named account, and the segments that hold."""
    account = book.accounts.match(lead)
    # Every segment is evaluated (the trace lists those that hold), each after the
    # segments it refers to, so conditions read them from a set.
    holding: set[str] = set()
    facts = Facts(lead, book.territories.of(lead), account.id if account else None, holding.__contains__)
    for segment_id, holds in book.segment_tests:
        if holds(facts):
            holding.add(segment_id)
    return facts, account, frozenset(holding)


def decide(lead: Lead, book: CompiledRulebook, state: RepState, now: datetime) -> Decision:
    facts, account, segments = _facts(lead, book)
    plan = book.plan(facts, segments)
    steps: list[RouteStep] = []
    result: Decision | None = None
    for compiled, skipped in plan.routes:
        if skipped is None:  # the plan did not rule the route out: its other checks decide
            why_not = compiled.rest.first_failure(facts)
            skipped = None if why_not is None else compiled.skipped_step(why_not)
        if skipped is not None:
            steps.append(skipped)
            continue
        route = compiled.route
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
    trace = Trace(plan.territories, plan.segments, facts.named_account, tuple(steps))
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
    if isinstance(target, TeamTarget):  # the usual target first
        return _team(
            route, target.team, target.strategy, target.skills, target.skills_from, lead, book, state, now
        )
    if isinstance(target, QueueTarget):
        queued = Queued(target.queue, route, f"route {route} queues", now, _EMPTY)
        return RouteStep(route, True, "matched", "queued"), queued
    if isinstance(target, RepTarget):
        return _single_rep(route, target.rep, "rep", book, state, now)
    assert isinstance(target, OwnerTarget)
    return _owner(route, lead, account, book, state, now)


def _owner(
    route: str,
    lead: Lead,
    account: NamedAccount | None,
    book: CompiledRulebook,
    state: RepState,
    now: datetime,
) -> _Placement:
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
        rep.capacity, rep.daily_cap, rep.local_day(now).isoformat(), now, _EMPTY,
    )  # fmt: skip


_EMPTY = Trace((), (), None, ())
