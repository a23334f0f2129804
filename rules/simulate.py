"""What a rulebook would do with a stream of leads: the engine run offline.

`simulate(book, leads)` decides each `(lead, at)` in time order with an
in-memory `RepState`, applying every assignment the way the router's Redis
commit does (`router/lua/assign.lua`): the rep's open leads +1, the pool's
version +1, the round-robin cursor and smooth-weighted weights moved, the rep's
last assignment time and their count for their local day. With `touch_after`,
each assigned lead is touched that long after it was assigned, which frees the
rep's capacity as a first touch does; without it, leads stay open and reps fill
up. A lead id seen before keeps its first decision, as a replay does.

A lead queued because nobody who could take it was available waits, as in the
router, on a retry queue: when one of its candidates frees up (a touch, or their
working hours, absence or daily cap moving on as later leads arrive), the oldest
waiting leads are decided again, first in, first out. Leads still waiting when
the stream and its touches end count as queued; the rest count where they were
finally assigned, and `waited` says how many got there by waiting.

`compare(a, b)` counts the leads whose owner (rep or queue) differs between two
runs over the same leads, the way to see what a rulebook change would move.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from rules.compiled import CompiledRulebook
from rules.decide import Assignment, Decision, decide
from rules.events import Lead
from rules.selection import RepState, verdict

__all__ = [
    "Comparison",
    "SimulationResult",
    "compare",
    "comparison_lines",
    "owner_of",
    "report_lines",
    "simulate",
]

SAMPLE_SIZE = 10


@dataclass(frozen=True, slots=True)
class SimulationResult:
    leads: int
    assigned: int
    queued: int
    duplicates: int
    by_route: Mapping[str, int]  # route -> leads it placed (`(none)`: the default queue)
    by_team: Mapping[str, int]
    by_rep: Mapping[str, int]
    by_queue: Mapping[str, int]
    # Leads for which some candidate was at capacity (or at their daily cap).
    capacity_hits: int
    daily_cap_hits: int
    # team -> most minus fewest assignments among its members (team-placed leads only).
    fairness: Mapping[str, int]
    # lead id -> `rep:<id>` or `queue:<id>`, in input order.
    owners: Mapping[str, str]
    # Leads queued first (nobody available) and assigned later from the retry queue.
    waited: int = 0
    longest_wait: timedelta = timedelta(0)
    team_members: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    first_at: datetime | None = None
    last_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Comparison:
    compared: int  # leads present in both runs
    changed: int
    sample: tuple[tuple[str, str, str], ...]  # (lead id, before, after), the first SAMPLE_SIZE
    moves: Mapping[tuple[str, str], int]  # (before, after) -> leads


def owner_of(decision: Decision) -> str:
    if isinstance(decision, Assignment):
        return f"rep:{decision.rep_id}"
    return f"queue:{decision.queue}"


class _Today(Mapping[str, int]):
    """rep -> assignments on the rep's local day at `now`, read from the per-day counts."""

    def __init__(self, book: CompiledRulebook, daily: Mapping[tuple[str, date], int], now: datetime) -> None:
        self._book = book
        self._daily = daily
        self._now = now

    def __getitem__(self, rep_id: str) -> int:
        rep = self._book.reps.get(rep_id)
        if rep is None:
            raise KeyError(rep_id)
        return self._daily.get((rep_id, rep.local_day(self._now)), 0)

    def __iter__(self) -> Iterator[str]:
        return iter(self._book.reps)

    def __len__(self) -> int:
        return len(self._book.reps)


@dataclass(slots=True)
class _State:
    """The mutable twin of what Redis holds; decisions read it through a RepState."""

    open_leads: dict[str, int] = field(default_factory=dict)
    cursors: dict[str, int] = field(default_factory=dict)
    weights: dict[str, dict[str, int]] = field(default_factory=dict)
    last_assigned_ms: dict[str, int] = field(default_factory=dict)
    daily: dict[tuple[str, date], int] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)

    def view(self, book: CompiledRulebook, now: datetime) -> RepState:
        return RepState(
            open_leads=self.open_leads,
            cursors=self.cursors,
            weights=self.weights,
            last_assigned_ms=self.last_assigned_ms,
            assigned_today=_Today(book, self.daily, now),
            versions=self.versions,
        )

    def commit(self, a: Assignment, book: CompiledRulebook, at: datetime) -> None:
        if a.pool is not None:
            self.versions[a.pool] = self.versions.get(a.pool, 0) + 1
            if a.cursor_after is not None:
                self.cursors[a.pool] = a.cursor_after
            if a.weights_after is not None:
                self.weights.setdefault(a.pool, {}).update(a.weights_after)
        self.open_leads[a.rep_id] = self.open_leads.get(a.rep_id, 0) + 1
        self.last_assigned_ms[a.rep_id] = int(at.timestamp() * 1000)
        day = (a.rep_id, book.reps[a.rep_id].local_day(at))
        self.daily[day] = self.daily.get(day, 0) + 1

    def touch(self, rep_id: str) -> None:
        self.open_leads[rep_id] = max(0, self.open_leads.get(rep_id, 0) - 1)


def _saw(decision: Decision, verdict: str) -> bool:
    return any(v == verdict for step in decision.trace.steps for _, v in step.candidates)


def _candidates(decision: Decision) -> frozenset[str]:
    return frozenset(rep for step in decision.trace.steps for rep, _ in step.candidates)


@dataclass(slots=True)
class _Waiting:
    order: int
    lead: Lead
    queued_at: datetime
    candidates: frozenset[str]


class _Run:
    """One simulation: the state, the touches to come and the retry queue."""

    def __init__(self, book: CompiledRulebook, touch_after: timedelta | None) -> None:
        self.book = book
        self.touch_after = touch_after
        self.state = _State()
        self.touches: list[tuple[datetime, int, str]] = []  # (when, sequence, rep)
        self.sequence = 0
        self.first: dict[str, Decision] = {}  # lead id -> first decision, in input order
        self.final: dict[str, Decision] = {}
        self.waiting: dict[str, _Waiting] = {}  # insertion order: first in, first out
        self.waiting_for: dict[str, set[str]] = {}  # rep -> waiting leads they could take
        self.waits: list[timedelta] = []
        # Reps whose availability changes with time alone (hours, absences, daily caps).
        self.timed = [
            rep_id
            for rep_id, rep in book.reps.items()
            if rep.hours is not None or rep.absences or rep.rep.daily_cap is not None
        ]
        self.timed_free: dict[str, bool] = {}

    def lead(self, lead: Lead, at: datetime) -> None:
        self.touch_until(at)
        if self.waiting:
            self.drain(self.returned(at), at)
        decision = decide(lead, self.book, self.state.view(self.book, at), at)
        self.first[lead.id] = decision
        self.place(lead, decision, at)

    def place(self, lead: Lead, decision: Decision, at: datetime) -> None:
        self.final[lead.id] = decision
        if isinstance(decision, Assignment):
            self.state.commit(decision, self.book, at)
            if self.touch_after is not None:
                self.sequence += 1
                heapq.heappush(self.touches, (at + self.touch_after, self.sequence, decision.rep_id))
        elif decision.retry and lead.id not in self.waiting:
            # As the router does: wait on the retry queue for one of these reps to free up.
            self.sequence += 1
            waiting = _Waiting(self.sequence, lead, at, _candidates(decision))
            self.waiting[lead.id] = waiting
            for rep_id in waiting.candidates:
                self.waiting_for.setdefault(rep_id, set()).add(lead.id)

    def touch_until(self, until: datetime | None) -> None:
        """Apply every touch due by `until` (all, if None); each freed rep's waiting leads retry."""
        while self.touches and (until is None or self.touches[0][0] <= until):
            when, _, rep_id = heapq.heappop(self.touches)
            self.state.touch(rep_id)
            if self.waiting:
                self.drain({rep_id}, when)

    def returned(self, now: datetime) -> set[str]:
        """Reps free now whose hours, absence or daily cap kept them from leads at the last look."""
        view = self.state.view(self.book, now)
        back = set()
        for rep_id in self.timed:
            rep = self.book.reps[rep_id]
            if self.state.open_leads.get(rep_id, 0) >= rep.rep.capacity:
                free = False  # time alone cannot free a full rep: only a touch does
            else:
                free = verdict(rep, view, now, frozenset()) is None
            if free and not self.timed_free.get(rep_id, True):
                back.add(rep_id)
            self.timed_free[rep_id] = free
        return back

    def drain(self, reps: set[str], now: datetime) -> None:
        """Decide again, oldest first, the waiting leads these reps could take."""
        ids = {lead_id for rep_id in reps for lead_id in self.waiting_for.get(rep_id, ())}
        for lead_id in sorted(ids, key=lambda i: self.waiting[i].order):
            waiting = self.waiting[lead_id]
            decision = decide(waiting.lead, self.book, self.state.view(self.book, now), now)
            if isinstance(decision, Assignment):
                del self.waiting[lead_id]
                for rep_id in waiting.candidates:
                    self.waiting_for[rep_id].discard(lead_id)
                self.waits.append(now - waiting.queued_at)
                self.place(waiting.lead, decision, now)


def simulate(
    book: CompiledRulebook,
    leads: Iterable[tuple[Lead, datetime]],
    touch_after: timedelta | None = None,
) -> SimulationResult:
    """Decide every lead in time order (stable for equal times); see the module docstring."""
    ordered = sorted(leads, key=lambda pair: pair[1])
    run = _Run(book, touch_after)
    duplicates = 0
    for lead, at in ordered:
        if lead.id in run.first:
            duplicates += 1
            continue
        run.lead(lead, at)
    run.touch_until(None)  # touches after the last lead still free reps for waiting leads
    return _result(run, duplicates, ordered)


def _result(run: _Run, duplicates: int, ordered: list[tuple[Lead, datetime]]) -> SimulationResult:
    by_route: Counter[str] = Counter()
    by_team: Counter[str] = Counter()
    by_rep: Counter[str] = Counter()
    by_queue: Counter[str] = Counter()
    per_team_rep: Counter[tuple[str, str]] = Counter()
    for decision in run.final.values():
        by_route[decision.route] += 1
        if isinstance(decision, Assignment):
            by_team[decision.team] += 1
            by_rep[decision.rep_id] += 1
            if decision.pool is not None:
                per_team_rep[decision.pool, decision.rep_id] += 1
        else:
            by_queue[decision.queue] += 1
    fairness = {
        team: max(per_team_rep[team, r] for r in members) - min(per_team_rep[team, r] for r in members)
        for team, members in run.book.members.items()
        if members
    }
    assigned = sum(by_team.values())
    return SimulationResult(
        leads=len(run.final),
        assigned=assigned,
        queued=len(run.final) - assigned,
        duplicates=duplicates,
        by_route=dict(by_route.most_common()),
        by_team=dict(by_team.most_common()),
        by_rep=dict(by_rep.most_common()),
        by_queue=dict(by_queue.most_common()),
        capacity_hits=sum(_saw(d, "at_capacity") for d in run.first.values()),
        daily_cap_hits=sum(_saw(d, "daily_cap") for d in run.first.values()),
        fairness=fairness,
        owners={lead_id: owner_of(d) for lead_id, d in run.final.items()},
        waited=len(run.waits),
        longest_wait=max(run.waits, default=timedelta(0)),
        team_members=dict(run.book.members),
        first_at=ordered[0][1] if ordered else None,
        last_at=ordered[-1][1] if ordered else None,
    )


def compare(a: SimulationResult, b: SimulationResult) -> Comparison:
    """Leads (in `a`'s order) whose owner differs in `b`."""
    changed: list[tuple[str, str, str]] = []
    moves: Counter[tuple[str, str]] = Counter()
    compared = 0
    for lead_id, before in a.owners.items():
        after = b.owners.get(lead_id)
        if after is None:
            continue
        compared += 1
        if after != before:
            changed.append((lead_id, before, after))
            moves[before, after] += 1
    return Comparison(compared, len(changed), tuple(changed[:SAMPLE_SIZE]), dict(moves.most_common()))


# --- the report -------------------------------------------------------------------


def _share(count: int, total: int) -> str:
    return f"{100 * count / total:5.1f}%" if total else "    -"


def _duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def _table(header: tuple[str, ...], rows: list[tuple[tuple[str, ...], int]], total: int) -> list[str]:
    """Text columns, then each row's lead count and its share of `total`."""
    if not rows:
        return []
    widths = [max(len(h), *(len(cells[k]) for cells, _ in rows)) for k, h in enumerate(header)]
    out = ["  ".join(f"{h:<{w}}" for h, w in zip(header, widths, strict=True)) + "    leads   share"]
    for cells, count in rows:
        text = "  ".join(f"{c:<{w}}" for c, w in zip(cells, widths, strict=True))
        out.append(f"{text}  {count:>7,}  {_share(count, total)}")
    return out


def report_lines(result: SimulationResult) -> list[str]:
    """The distribution as a readable table: routes, teams, reps, queues, capacity, fairness."""
    total = result.leads
    span = ""
    if result.first_at is not None and result.last_at is not None:
        span = f" from {result.first_at.isoformat()} to {result.last_at.isoformat()}"
    lines = [
        f"{total:,} leads{span}",
        f"assigned {result.assigned:,} ({_share(result.assigned, total).strip()}), "
        f"queued {result.queued:,} ({_share(result.queued, total).strip()})"
        + (f", {result.duplicates:,} repeated lead ids ignored" if result.duplicates else ""),
        f"waited on the retry queue, then assigned: {result.waited:,}"
        + (f" (longest wait {_duration(result.longest_wait)})" if result.waited else ""),
        f"capacity hits: {result.capacity_hits:,} leads found a rep at capacity; "
        f"{result.daily_cap_hits:,} found a rep at their daily cap",
        "",
    ]
    lines += _table(("route",), [((r,), n) for r, n in result.by_route.items()], total)
    lines.append("")
    teams = sorted(
        set(result.team_members) | set(result.by_team), key=lambda t: (-result.by_team.get(t, 0), t)
    )
    lines += _table(
        ("team", "fairness spread"),
        [((t, str(result.fairness.get(t, 0))), result.by_team.get(t, 0)) for t in teams],
        total,
    )
    lines.append("(fairness spread: most minus fewest leads the team's own routes gave one of its reps)")
    lines.append("")
    team_of: dict[str, str] = {}
    for team, members in result.team_members.items():
        for rep in members:
            team_of.setdefault(rep, team)
    reps = list(team_of) + [r for r in result.by_rep if r not in team_of]
    reps.sort(key=lambda r: (team_of.get(r, "~"), -result.by_rep.get(r, 0), r))
    lines += _table(
        ("rep", "team"), [((r, team_of.get(r, "-")), result.by_rep.get(r, 0)) for r in reps], total
    )
    if result.by_queue:
        lines.append("")
        lines += _table(("queue",), [((q,), n) for q, n in result.by_queue.items()], total)
    return lines


def comparison_lines(cmp: Comparison, before: str, after: str) -> list[str]:
    """Owner changes between two runs, labelled with what each run was."""
    lines = [
        f"owner changes from {before} to {after}: {cmp.changed:,} of {cmp.compared:,} leads "
        f"({_share(cmp.changed, cmp.compared).strip()})"
    ]
    if cmp.moves:
        lines.append("  most common moves:")
        for (a, b), n in list(cmp.moves.items())[:SAMPLE_SIZE]:
            lines.append(f"    {n:>7,}  {a} -> {b}")
    if cmp.sample:
        lines.append(f"  first {len(cmp.sample)} changed leads:")
        width = max(len(lead_id) for lead_id, _, _ in cmp.sample)
        for lead_id, a, b in cmp.sample:
            lines.append(f"    {lead_id:<{width}}  {a} -> {b}")
    return lines
