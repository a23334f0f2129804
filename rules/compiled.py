"""A rulebook compiled for fast decisions: indexes built once per (re)load."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from rules.accounts import AccountIndex
from rules.calendar import Calendar, CalendarSpec, compile_calendar
from rules.conditions import Condition
from rules.rulebook import Rep, Rulebook, Team
from rules.territories import TerritoryIndex


@dataclass(frozen=True, slots=True)
class CompiledRep:
    rep: Rep
    zone: ZoneInfo
    hours: Calendar | None
    # Out-of-office periods as [start, end) instants.
    absences: tuple[tuple[datetime, datetime], ...]
    skills: frozenset[str]

    def local_day(self, now: datetime) -> date:
        return now.astimezone(self.zone).date()

    def absent(self, now: datetime) -> bool:
        return any(start <= now < end for start, end in self.absences)

    def in_hours(self, now: datetime) -> bool:
        return self.hours is None or self.hours.is_open(now)


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

    @property
    def version(self) -> str:
        return self.book.version

    def candidate_routes(self, territories: frozenset[str]) -> list[int]:
        found = set(self.unbound_routes)
        for territory in territories:
            found.update(self.routes_by_territory.get(territory, ()))
        return sorted(found)


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
    return CompiledRep(rep, zone, hours, absences, frozenset(rep.skills))


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
    return CompiledRulebook(
        book=book,
        reps={r.id: _compile_rep(r, book.timezone, calendars) for r in book.reps},
        teams={t.id: t for t in book.teams},
        members=members,
        first_team=first_team,
        segments={s.id: s.when for s in book.segments},
        territories=TerritoryIndex.build(book.territories),
        accounts=AccountIndex.build(book.named_accounts),
        unbound_routes=tuple(unbound),
        routes_by_territory={k: tuple(v) for k, v in by_territory.items()},
    )
