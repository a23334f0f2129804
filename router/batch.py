"""Route a polled batch of new leads with batched Redis work.

One pipelined read gives every lead's existing record and the shared rep state;
the leads are decided one after another in Python on a copy of that state that
each decision updates exactly as assign.lua will (`LiveState.apply`); then the
decisions are committed in order by one Lua call per `BATCH_COMMIT` leads, each
still a compare-and-set on the state its decision read. The first commit that
fails (another router moved a pool or filled a rep, or decided the lead) ends the
call: the leads after it were decided on a state that assumed it, so they are read
and decided again in the next round. Leads already decided (replays, duplicates)
and anything this path cannot place are left to the per-record path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from router.assignments import AssignmentStore, Commit, CommitResult
from router.errors import InvalidEvent
from router.placement import Placed, plan
from router.rulebook_source import Rules
from router.sla_plan import epoch_ms
from rules.decide import Assignment, Decision
from rules.events import LeadEvent
from rules.selection import RepState

_OK = CommitResult("ok")


class LiveState:
    """A private, mutable copy of the rep state that decisions are applied to."""

    def __init__(self, state: RepState) -> None:
        self.open_leads = dict(state.open_leads)
        self.cursors = dict(state.cursors)
        self.weights = {team: dict(w) for team, w in state.weights.items()}
        self.last_assigned_ms = dict(state.last_assigned_ms)
        self.assigned_today = dict(state.assigned_today)
        self.versions = dict(state.versions)
        self.view = RepState(
            open_leads=self.open_leads,
            cursors=self.cursors,
            weights=self.weights,
            last_assigned_ms=self.last_assigned_ms,
            assigned_today=self.assigned_today,
            status=state.status,
            versions=self.versions,
        )

    def apply(self, decision: Decision, assigned_ms: int) -> None:
        """What assign.lua does to the shared state when it commits `decision` (mode new)."""
        if not isinstance(decision, Assignment):
            return  # a queued lead changes no rep's state
        a = decision
        if a.pool is not None:
            if a.pool_version is not None:
                self.versions[a.pool] = a.pool_version + 1
            if a.cursor_after is not None:
                self.cursors[a.pool] = a.cursor_after
            if a.weights_after:
                self.weights.setdefault(a.pool, {}).update(a.weights_after)
        rep = a.rep_id
        self.open_leads[rep] = self.open_leads.get(rep, 0) + 1
        self.last_assigned_ms[rep] = assigned_ms
        self.assigned_today[rep] = self.assigned_today.get(rep, 0) + 1


@dataclass(frozen=True, slots=True)
class Pending:
    key: object  # the caller's handle for the record
    event: LeadEvent
    raw: bytes


@dataclass(frozen=True, slots=True)
class Routed:
    event: LeadEvent
    placed: Placed
    now: datetime


async def route_new(
    store: AssignmentStore,
    rules: Rules,
    pending: Sequence[Pending],
    clock: Callable[[], datetime],
    rounds: int,
    routed: dict[object, Routed],
) -> None:
    """Decide and commit the leads of `pending` never decided before, in order.

    Adds the committed ones to `routed` by key as they are committed (so a failure
    half-way loses none of them; a retry skips them); the rest (already decided, or
    still in conflict after `rounds` rounds) are for the per-record path.
    """
    todo = [p for p in pending if p.key not in routed]
    for _ in range(rounds):
        if not todo:
            break
        now = clock()
        existing, state = await store.read_many([p.event.lead.id for p in todo], rules.compiled, now)
        live = LiveState(state)
        assigned_ms = epoch_ms(now)
        planned: list[tuple[Pending, Commit, Placed]] = []
        for p, found in zip(todo, existing, strict=True):
            if found is not None:
                continue  # a replay or another router's: the per-record path knows what to do
            try:
                decided = plan(rules, p.event, p.raw, live.view, now)
            except InvalidEvent:
                continue  # the per-record path dead-letters it
            live.apply(decided.decision, assigned_ms)
            commit = Commit(p.event.lead.id, decided.decision, decided.event, decided.commit)
            placed = Placed(decided.decision, _OK, decided.event, decided.trace, decided.armed)
            planned.append((p, commit, placed))
        results = await store.commit_many([c for _, c, _ in planned])
        todo = []
        for i, (p, _, placed) in enumerate(planned):
            if i < len(results) and results[i].status == "ok":
                routed[p.key] = Routed(p.event, placed, now)
            elif i >= len(results) or results[i].status == "conflict":
                todo.append(p)  # decided on a state that changed: read and decide again
            # "exists": decided meanwhile by another router, for the per-record path
