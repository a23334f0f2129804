"""A rulebook compiled for fast decisions: indexes built once per (re)load.

Compiling does the work that does not depend on the lead: conditions become flat
lists of checks, each rep's verdict inputs sit in one slotted object, segments are
put in the order they depend on each other, and the trace steps of a route skipped
for a fixed reason are built once. What depends only on a lead's territories,
segments and named account (which routes to try, which of them their territory,
segment and named-account checks already rule out) is worked out for the first
lead with that combination and kept in a `RoutePlan`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from rules.accounts import AccountIndex
from rules.calendar import Calendar, CalendarSpec, compile_calendar
from rules.conditions import Checks, Condition, Facts, Test, as_test, compile_condition, compile_gated
from rules.rulebook import Rep, Route, Rulebook, Team
from rules.territories import TerritoryIndex
from rules.trace import RouteStep

# Leads share a few (territories, segments, named account) combinations; the cap only
# stops a long-lived process growing on odd inputs.
_PLAN_CACHE_SIZE = 1024


@dataclass(frozen=True, slots=True)
class CompiledRep:
    rep: Rep
    zone: ZoneInfo
    hours: Calendar | None
    # Out-of-office periods as [start, end) instants.
    absences: tuple[tuple[datetime, datetime], ...]
    skills: frozenset[str]
    # Copied from `rep`: a verdict reads them for every candidate of every lead.
    id: str
    status: str
    capacity: int
    daily_cap: int | None
    weight: int

    def local_day(self, now: datetime) -> date:
        return now.astimezone(self.zone).date()

    def absent(self, now: datetime) -> bool:
        return any(start <= now < end for start, end in self.absences)

    def in_hours(self, now: datetime) -> bool:
        return self.hours is None or self.hours.is_open(now)


@dataclass(frozen=True, slots=True)
class CompiledRoute:
    route: Route
    id: str
    when: Checks
    # `when` split (see `compile_gated`): `gate` is decided by a lead's territories,
    # segments and named account alone, so a `RoutePlan` evaluates it once for them all.
    gate: Checks
    rest: Checks
    # The step a decision records when the route is skipped, by reason (fixed reasons only).
    skipped: dict[str, RouteStep]

    def skipped_step(self, reason: str) -> RouteStep:
        step = self.skipped.get(reason)
        return RouteStep(self.id, False, reason) if step is None else step


@dataclass(frozen=True, slots=True)
class RoutePlan:
    """What the routes make of a lead's territories, segments and named account, the same
    for every lead that shares them: the trace's territories and segments, and the routes
    worth trying, in rulebook order, each with its skipped step if its gate fails."""

    territories: tuple[str, ...]  # sorted
    segments: tuple[str, ...]  # in rulebook order
    routes: tuple[tuple[CompiledRoute, RouteStep | None], ...]


PlanKey = tuple[frozenset[str], frozenset[str], bool]  # territories, segments, named account


@dataclass(frozen=True, slots=True)
class CompiledRulebook:
    book: Rulebook
    reps: dict[str, CompiledRep]
    teams: dict[str, Team]
    members: dict[str, tuple[str, ...]]
    first_team: dict[str, str]
    segments: dict[str, Condition]
    territories: TerritoryIndex
    accounts: AccountIndex
    # Route positions worth trying for a lead: routes without a top-level territory
    # condition, plus those whose territories the lead is in (in rulebook order).
    unbound_routes: tuple[int, ...]
    routes_by_territory: dict[str, tuple[int, ...]]
    # Derived from `book` above (and holding functions): left out of comparisons.
    routes: tuple[CompiledRoute, ...] = field(compare=False, repr=False)
    # Every segment's test, each after the segments it refers to.
    segment_tests: tuple[tuple[str, Test], ...] = field(compare=False, repr=False)
    _plans: dict[PlanKey, RoutePlan] = field(default_factory=dict, compare=False, repr=False)

    @property
    def version(self) -> str:
        return self.book.version

    def candidate_routes(self, territories: frozenset[str]) -> list[int]:
        found = set(self.unbound_routes)
        for territory in territories:
            found.update(self.routes_by_territory.get(territory, ()))
        return sorted(found)

    def plan(self, facts: Facts, segments: frozenset[str]) -> RoutePlan:
        """The plan for a lead with these facts, in these segments. Memoised: leads share
        a few combinations, and the plan reads nothing else of `facts`."""
        key = (facts.territories, segments, facts.named_account is not None)
        plan = self._plans.get(key)
        if plan is None:
            routes = [self.routes[i] for i in self.candidate_routes(facts.territories)]
            plan = RoutePlan(
                tuple(sorted(facts.territories)),
                tuple(s for s in self.segments if s in segments),
                tuple((r, _gate_step(r, facts)) for r in routes),
            )
            if len(self._plans) >= _PLAN_CACHE_SIZE:
                self._plans.clear()
            self._plans[key] = plan
        return plan


def _gate_step(route: CompiledRoute, facts: Facts) -> RouteStep | None:
    why_not = route.gate.first_failure(facts)
    return None if why_not is None else route.skipped_step(why_not)


def _instant(value: date | datetime, zone: ZoneInfo, *, end: bool) -> datetime:
    if isinstance(value, datetime):
        return value
    # A date is a whole local day: an absence `to` a date includes that day.
    day = date.fromordinal(value.toordinal() + 1) if end else value
    return datetime.combine(day, time(0), zone)


def _compile_rep(rep: Rep, default_zone: str, calendars: dict[tuple[str, str], Calendar]) -> CompiledRep:
    zone_name = rep.timezone or default_zone
    zone = ZoneInfo(zone_name)
    hours = None
    if rep.hours is not None:
        key = (zone_name, rep.hours.model_dump_json())
        if key not in calendars:  # reps with the same hours share one calendar
            calendars[key] = compile_calendar(
                CalendarSpec(kind="business_hours", timezone=zone_name, hours=rep.hours)
            )
        hours = calendars[key]
    absences = tuple(
        (_instant(p.start, zone, end=False), _instant(p.end, zone, end=True)) for p in rep.out_of_office
    )
    return CompiledRep(
        rep, zone, hours, absences, frozenset(rep.skills),
        rep.id, rep.status, rep.capacity, rep.daily_cap, rep.weight,
    )  # fmt: skip


def _compile_route(route: Route) -> CompiledRoute:
    gate, rest = compile_gated(route.when)
    when = Checks(gate.clauses + rest.clauses)
    skipped = {reason: RouteStep(route.id, False, reason) for reason in when.fixed_reasons()}
    return CompiledRoute(route, route.id, when, gate, rest, skipped)


def _segments_used(cond: Condition) -> Iterator[str]:
    yield from cond.segment or ()
    for part in (*(cond.all_ or ()), *(cond.any_ or ()), *((cond.not_,) if cond.not_ else ())):
        yield from _segments_used(part)


def _segment_order(segments: dict[str, Condition]) -> list[str]:
    """Segment ids, each after those it refers to (a rulebook has no cycles; were there
    one, the segment asked first while it is being evaluated reads as not holding)."""
    order: list[str] = []
    seen: set[str] = set()

    def visit(segment_id: str) -> None:
        if segment_id in seen or segment_id not in segments:
            return
        seen.add(segment_id)
        for used in _segments_used(segments[segment_id]):
            visit(used)
        order.append(segment_id)

    for segment_id in segments:
        visit(segment_id)
    return order


def compile_rulebook(book: Rulebook) -> CompiledRulebook:
    members = {t.id: book.members(t.id) for t in book.teams}
    first_team: dict[str, str] = {}
    for team_id, reps in members.items():
        for rep_id in reps:
            first_team.setdefault(rep_id, team_id)
    calendars: dict[tuple[str, str], Calendar] = {}
    unbound: list[int] = []
    by_territory: dict[str, list[int]] = {}
    for index, route in enumerate(book.routes):
        if route.when.territory is None:
            unbound.append(index)
        else:
            for territory in route.when.territory:
                by_territory.setdefault(territory, []).append(index)
    segments = {s.id: s.when for s in book.segments}
    return CompiledRulebook(
        book=book,
        reps={r.id: _compile_rep(r, book.timezone, calendars) for r in book.reps},
        teams={t.id: t for t in book.teams},
        members=members,
        first_team=first_team,
        segments=segments,
        territories=TerritoryIndex.build(book.territories),
        accounts=AccountIndex.build(book.named_accounts),
        unbound_routes=tuple(unbound),
        routes_by_territory={k: tuple(v) for k, v in by_territory.items()},
        routes=tuple(_compile_route(r) for r in book.routes),
        segment_tests=tuple((s, as_test(compile_condition(segments[s]))) for s in _segment_order(segments)),
    )
