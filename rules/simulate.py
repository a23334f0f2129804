"""What a rulebook would do with a stream of leads: the engine run offline.

`simulate(book, leads)` decides each `(lead, at)` in time order with an
in-memory `RepState`, applying every assignment the way the router's Redis
commit does (`router/lua/assign.lua`): the rep's open leads +1, the pool's
version +1, the round-robin cursor and smooth-weighted weights moved, the rep's
last assignment time and their count for their local day. With `touch_after`,
each assigned lead is touched that long after it was assigned, which frees the
rep's capacity as a first touch does; without it, leads stay open and reps fill
up. A lead id seen before keeps its first decision, as a replay does.

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
from rules.selection import RepState

__all__ = ["Comparison", "SimulationResult", "compare", "comparison_lines", "owner_of", "report_lines", "simulate"]

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


def simulate(
    book: CompiledRulebook,
    leads: Iterable[tuple[Lead, datetime]],
    touch_after: timedelta | None = None,
) -> SimulationResult:
    """Decide every lead in time order (stable for equal times); see the module docstring."""
    ordered = sorted(leads, key=lambda pair: pair[1])
    state = _State()
    touches: list[tuple[datetime, int, str]] = []  # (when, sequence, rep)
    owners: dict[str, str] = {}
    by_route: Counter[str] = Counter()
    by_team: Counter[str] = Counter()
    by_rep: Counter[str] = Counter()
    by_queue: Counter[str] = Counter()
    per_team_rep: Counter[tuple[str, str]] = Counter()
    assigned = queued = duplicates = capacity_hits = daily_cap_hits = 0
    for seq, (lead, at) in enumerate(ordered):
        while touches and touches[0][0] <= at:
            state.touch(heapq.heappop(touches)[2])
        if lead.id in owners:
            duplicates += 1
            continue
        decision = decide(lead, book, state.view(book, at), at)
        owners[lead.id] = owner_of(decision)
        by_route[decision.route] += 1
        capacity_hits += _saw(decision, "at_capacity")
        daily_cap_hits += _saw(decision, "daily_cap")
        if isinstance(decision, Assignment):
            assigned += 1
            state.commit(decision, book, at)
            by_team[decision.team] += 1
            by_rep[decision.rep_id] += 1
            if decision.pool is not None:
                per_team_rep[decision.pool, decision.rep_id] += 1
            if touch_after is not None:
                heapq.heappush(touches, (at + touch_after, seq, decision.rep_id))
        else:
            queued += 1
            by_queue[decision.queue] += 1
    fairness = {
        team: max(per_team_rep[team, r] for r in members) - min(per_team_rep[team, r] for r in members)
        for team, members in book.members.items()
        if members
    }
    return SimulationResult(
        leads=len(owners),
        assigned=assigned,
        queued=queued,
        duplicates=duplicates,
        by_route=dict(by_route.most_common()),
        by_team=dict(by_team.most_common()),
        by_rep=dict(by_rep.most_common()),
        by_queue=dict(by_queue.most_common()),
        capacity_hits=capacity_hits,
        daily_cap_hits=daily_cap_hits,
        fairness=fairness,
        owners=owners,
        team_members=dict(book.members),
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
        f"capacity hits: {result.capacity_hits:,} leads found a rep at capacity; "
        f"{result.daily_cap_hits:,} found a rep at their daily cap",
        "",
    ]
    lines += _table(("route",), [((r,), n) for r, n in result.by_route.items()], total)
    lines.append("")
    teams = sorted(set(result.team_members) | set(result.by_team), key=lambda t: (-result.by_team.get(t, 0), t))
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
    lines += _table(("rep", "team"), [((r, team_of.get(r, "-")), result.by_rep.get(r, 0)) for r in reps], total)
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
