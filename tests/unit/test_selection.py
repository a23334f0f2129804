"""Choosing a rep: eligibility verdicts, round robin, smooth weighted, least loaded, caps and skills."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rules.compiled import CompiledRulebook, compile_rulebook
from rules.decide import Assignment, Decision, Queued, decide
from rules.events import Lead
from rules.rulebook import Rulebook
from rules.selection import Pick, RepState, select, verdict

PROPERTY = settings(database=None, deadline=None, max_examples=40)
NOW = datetime(2026, 3, 9, 15, 0, tzinfo=UTC)  # a Monday, the day after US DST starts
NY = "America/New_York"


def compiled(
    reps: list[dict[str, Any]],
    strategy: str = "round_robin",
    timezone: str = "UTC",
    assign: dict[str, Any] | None = None,
) -> CompiledRulebook:
    """One team `t` holding every rep, one catch-all route (default: the team)."""
    book = Rulebook.model_validate(
        {
            "version": "t",
            "timezone": timezone,
            "reps": [{"teams": ["t"], **r} for r in reps],
            "teams": [{"id": "t", "strategy": strategy}],
            "routes": [{"id": "all", "assign": assign or {"team": "t"}}],
        }
    )
    return compile_rulebook(book)


def named(*ids: str, **common: Any) -> list[dict[str, Any]]:
    return [{"id": i, **common} for i in ids]


def pick(book: CompiledRulebook, state: RepState) -> Pick:
    found, _ = select(book, "t", book.teams["t"].strategy, book.members["t"], state, NOW)
    assert found is not None
    return found


def lead(**fields: Any) -> Lead:
    return Lead.model_validate({"id": "lead-1", **fields})


def committed(state: RepState, decision: Decision) -> RepState:
    """The state after the Redis commit of `decision` (router/lua/assign.lua), on the same local day."""
    if not isinstance(decision, Assignment):
        return state
    rep, pool = decision.rep_id, decision.pool
    versions, cursors = dict(state.versions), dict(state.cursors)
    weights = {team: dict(w) for team, w in state.weights.items()}
    if pool is not None:
        versions[pool] = versions.get(pool, 0) + 1
        if decision.cursor_after is not None:
            cursors[pool] = decision.cursor_after
        weights.setdefault(pool, {}).update(decision.weights_after or {})
    return RepState(
        open_leads={**state.open_leads, rep: state.open_leads.get(rep, 0) + 1},
        cursors=cursors,
        weights=weights,
        last_assigned_ms={**state.last_assigned_ms, rep: int(decision.decided_at.timestamp() * 1000)},
        assigned_today={**state.assigned_today, rep: state.assigned_today.get(rep, 0) + 1},
        status=state.status,
        versions=versions,
    )


# ---------------------------------------------------------------- verdicts

NY_HOURS = dict.fromkeys(("mon", "tue", "wed", "thu", "fri"), "09:00-17:00")
NY_REP = {"id": "r", "timezone": NY, "hours": NY_HOURS}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


SUNDAY = datetime(2026, 3, 8, 15, 0, tzinfo=UTC)

VERDICTS: list[tuple[str, dict[str, Any], RepState, datetime, str | None]] = [
    ("available", {"id": "r"}, RepState(), NOW, None),
    ("away in the rulebook", {"id": "r", "status": "away"}, RepState(), NOW, "away"),
    ("offline in the rulebook", {"id": "r", "status": "offline"}, RepState(), NOW, "offline"),
    ("live status wins: back", {"id": "r", "status": "away"}, RepState(status={"r": "available"}), NOW, None),
    ("live status wins: offline", {"id": "r"}, RepState(status={"r": "offline"}), NOW, "offline"),
    ("live status wins: away", {"id": "r"}, RepState(status={"r": "away"}), NOW, "away"),
    ("unknown live status is away", {"id": "r"}, RepState(status={"r": "lunch"}), NOW, "away"),
    ("another rep's status", {"id": "r"}, RepState(status={"x": "offline"}), NOW, None),
    ("below capacity", {"id": "r", "capacity": 2}, RepState(open_leads={"r": 1}), NOW, None),
    ("at capacity", {"id": "r", "capacity": 2}, RepState(open_leads={"r": 2}), NOW, "at_capacity"),
    ("over capacity", {"id": "r", "capacity": 2}, RepState(open_leads={"r": 9}), NOW, "at_capacity"),
    ("capacity zero", {"id": "r", "capacity": 0}, RepState(), NOW, "at_capacity"),
    ("below daily cap", {"id": "r", "daily_cap": 3}, RepState(assigned_today={"r": 2}), NOW, None),
    ("at daily cap", {"id": "r", "daily_cap": 3}, RepState(assigned_today={"r": 3}), NOW, "daily_cap"),
    ("daily cap zero", {"id": "r", "daily_cap": 0}, RepState(), NOW, "daily_cap"),
    ("no daily cap", {"id": "r"}, RepState(assigned_today={"r": 10_000}), NOW, None),
    # Working hours are the rep's wall clock: 09:00-17:00 New York, EST before 2026-03-08, EDT after.
    ("Fri 09:00 EST", NY_REP, RepState(), at("2026-03-06T14:00:00+00:00"), None),
    ("Fri 08:59 EST", NY_REP, RepState(), at("2026-03-06T13:59:00+00:00"), "out_of_hours"),
    ("Fri 16:59 EST", NY_REP, RepState(), at("2026-03-06T21:59:00+00:00"), None),
    ("Fri 17:00 EST", NY_REP, RepState(), at("2026-03-06T22:00:00+00:00"), "out_of_hours"),
    ("Sun, DST day", NY_REP, RepState(), SUNDAY, "out_of_hours"),
    ("Mon 09:00 EDT", NY_REP, RepState(), at("2026-03-09T13:00:00+00:00"), None),
    ("Mon 08:59 EDT", NY_REP, RepState(), at("2026-03-09T12:59:00+00:00"), "out_of_hours"),
    ("Mon 16:59 EDT", NY_REP, RepState(), at("2026-03-09T20:59:00+00:00"), None),
    ("Mon 17:00 EDT", NY_REP, RepState(), at("2026-03-09T21:00:00+00:00"), "out_of_hours"),
    ("Mon 09:00 EDT, other offset", NY_REP, RepState(), at("2026-03-09T09:00:00-04:00"), None),
    # Several reasons at once: the first in the documented order (more in the precedence test).
    ("away beats at capacity", {"id": "r", "status": "away", "capacity": 0}, RepState(), NOW, "away"),
    ("out of hours beats capacity", NY_REP | {"capacity": 0}, RepState(), SUNDAY, "out_of_hours"),
    ("capacity beats daily cap", {"id": "r", "capacity": 0, "daily_cap": 0}, RepState(), NOW, "at_capacity"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("rep", "state", "now", "expected"), [r[1:] for r in VERDICTS], ids=[r[0] for r in VERDICTS]
)
def test_verdict(rep: dict[str, Any], state: RepState, now: datetime, expected: str | None) -> None:
    """A rep can take a lead only when available (live status first), in hours, below capacity and cap."""
    book = compiled([rep])
    assert verdict(book.reps["r"], state, now, frozenset()) == expected


PRECEDENCE = ("offline", "out_of_office", "out_of_hours", "missing_skill", "at_capacity", "daily_cap")


@pytest.mark.parametrize(
    "failing", [set(c) for n in range(1, 4) for c in itertools.combinations(PRECEDENCE, n)]
)
def test_verdict_reports_the_first_reason_in_documented_order(failing: set[str]) -> None:
    """With several reasons at once, the verdict is the first of: status, out of office, out of hours,
    missing skill, at capacity, daily cap."""
    rep: dict[str, Any] = {"id": "r", "timezone": NY, "skills": ["de"], "capacity": 1, "daily_cap": 1}
    if "offline" in failing:
        rep["status"] = "offline"
    if "out_of_office" in failing:
        rep["out_of_office"] = [{"from": "2026-03-08", "to": "2026-03-08"}]
    if "out_of_hours" in failing:
        rep["hours"] = {"mon": "00:00-01:00"}
    state = RepState(
        open_leads={"r": 1 if "at_capacity" in failing else 0},
        assigned_today={"r": 1 if "daily_cap" in failing else 0},
    )
    skills = frozenset({"fr"} if "missing_skill" in failing else {"de"})
    book = compiled([rep])
    expected = next(v for v in PRECEDENCE if v in failing)
    assert verdict(book.reps["r"], state, SUNDAY, skills) == expected


def ooo(start: str, end: str) -> dict[str, Any]:
    return {"id": "r", "timezone": NY, "out_of_office": [{"from": start, "to": end}]}


TWO_DAYS = ooo("2026-03-07", "2026-03-08")
DST_DAY = ooo("2026-03-08", "2026-03-08")
MORNING = ooo("2026-03-09T09:00:00-04:00", "2026-03-09T12:00:00-04:00")
DATE_TO_INSTANT = ooo("2026-03-09", "2026-03-09T12:00:00+00:00")

ABSENCES: list[tuple[str, dict[str, Any], str, bool]] = [
    # Dates are whole local days, inclusive; EST at the start, EDT at the end.
    ("day before, 23:59 EST", TWO_DAYS, "2026-03-07T04:59:00+00:00", False),
    ("first day, 00:00 EST", TWO_DAYS, "2026-03-07T05:00:00+00:00", True),
    ("last day, 23:59 EDT", TWO_DAYS, "2026-03-09T03:59:00+00:00", True),
    ("day after, 00:00 EDT", TWO_DAYS, "2026-03-09T04:00:00+00:00", False),
    ("one-day absence on the 23-hour day", DST_DAY, "2026-03-08T05:00:00+00:00", True),
    ("one-day absence, just before", DST_DAY, "2026-03-08T04:59:59+00:00", False),
    ("one-day absence, last second", DST_DAY, "2026-03-09T03:59:59+00:00", True),
    # Aware datetimes are instants, `to` exclusive.
    ("instant range, before", MORNING, "2026-03-09T12:59:00+00:00", False),
    ("instant range, at start", MORNING, "2026-03-09T13:00:00+00:00", True),
    ("instant range, at end", MORNING, "2026-03-09T16:00:00+00:00", False),
    ("from a date to an instant", DATE_TO_INSTANT, "2026-03-09T04:00:00+00:00", True),
    ("from a date to an instant, after", DATE_TO_INSTANT, "2026-03-09T12:00:00+00:00", False),
]


@pytest.mark.parametrize(("rep", "now", "absent"), [r[1:] for r in ABSENCES], ids=[r[0] for r in ABSENCES])
def test_out_of_office(rep: dict[str, Any], now: str, absent: bool) -> None:
    """Out-of-office dates cover whole days in the rep's zone (inclusive); datetimes are exact instants."""
    book = compiled([rep])
    expected = "out_of_office" if absent else None
    assert verdict(book.reps["r"], RepState(), at(now), frozenset()) == expected


def test_rep_without_timezone_uses_the_rulebook_zone() -> None:
    """A rep's hours and local day default to the rulebook's timezone."""
    book = compiled([{"id": "r", "hours": {"mon": "09:00-17:00"}}], timezone="Asia/Tokyo")
    rep = book.reps["r"]
    assert verdict(rep, RepState(), at("2026-03-09T00:00:00+00:00"), frozenset()) is None
    assert verdict(rep, RepState(), at("2026-03-08T23:59:00+00:00"), frozenset()) == "out_of_hours"
    assert rep.local_day(at("2026-03-08T15:00:00+00:00")).isoformat() == "2026-03-09"


@pytest.mark.parametrize(
    ("zone", "day"),
    [
        (NY, "2026-03-08"),
        ("Asia/Tokyo", "2026-03-09"),
        ("UTC", "2026-03-09"),
        ("Pacific/Kiritimati", "2026-03-09"),
    ],
)
def test_assignment_local_day_is_the_reps(zone: str, day: str) -> None:
    """An assignment's local_day (the daily-cap bucket) is the date on the rep's wall clock."""
    book = compiled([{"id": "r", "timezone": zone, "daily_cap": 5}])
    decision = decide(lead(), book, RepState(), at("2026-03-09T03:30:00+00:00"))
    assert isinstance(decision, Assignment)
    assert (decision.local_day, decision.daily_cap, decision.capacity) == (day, 5, 10)


# ---------------------------------------------------------------- round robin


@pytest.mark.parametrize(
    ("cursor", "away", "picked", "cursor_after"),
    [
        (0, set(), "a", 1),
        (1, set(), "b", 2),
        (2, set(), "c", 0),
        (3, set(), "a", 1),
        (7, set(), "b", 2),
        (2, {"c"}, "a", 1),
        (1, {"b", "c"}, "a", 1),
        (0, {"a", "b"}, "c", 0),
        (2, {"a"}, "c", 0),
    ],
)
def test_round_robin_from_cursor_with_wrap(
    cursor: int, away: set[str], picked: str, cursor_after: int
) -> None:
    """The first eligible member at or after cursor mod size, wrapping; the cursor moves past the pick."""
    book = compiled(named("a", "b", "c"))
    state = RepState(cursors={"t": cursor}, status=dict.fromkeys(away, "away"))
    assert pick(book, state) == Pick(picked, cursor_after=cursor_after)


def test_round_robin_verdicts_name_everyone() -> None:
    """Every member gets a verdict: picked, not_their_turn for eligible others, or why not."""
    book = compiled(named("a", "b", "c", "d"))
    state = RepState(cursors={"t": 1}, open_leads={"c": 10}, status={"b": "offline"})
    found, verdicts = select(book, "t", "round_robin", book.members["t"], state, NOW)
    assert found == Pick("d", cursor_after=0)
    assert verdicts == (("a", "not_their_turn"), ("b", "offline"), ("c", "at_capacity"), ("d", "picked"))


def test_nobody_eligible_picks_nobody() -> None:
    """When no member is eligible there is no pick, and every verdict says why."""
    book = compiled(named("a", "b", capacity=1))
    found, verdicts = select(book, "t", "round_robin", ("a", "b"), RepState(open_leads={"a": 1, "b": 1}), NOW)
    assert found is None
    assert verdicts == (("a", "at_capacity"), ("b", "at_capacity"))


def test_returning_rep_gets_the_next_turn_that_comes_round() -> None:
    """A rep skipped while away is neither starved nor given a double turn when back."""
    book = compiled(named("a", "b", "c"))
    state, picks = RepState(), []
    for i in range(7):
        away = {"b": "away"} if i in (1, 2) else {}
        decision = decide(lead(), book, replace(state, status=away), NOW)
        assert isinstance(decision, Assignment)
        picks.append(decision.rep_id)
        state = committed(state, decision)
    # b misses its turn at lead 1 (c takes it) and lead 2; back at lead 3 it takes the turn the
    # cursor brings round, once, and the rotation carries on a, b, c with no catch-up turn.
    assert picks == ["a", "c", "a", "b", "c", "a", "b"]


@PROPERTY
@given(
    data=st.data(),
    size=st.integers(min_value=2, max_value=6),
    cursor=st.integers(min_value=0, max_value=50),
    leads=st.integers(min_value=1, max_value=60),
)
def test_round_robin_with_reps_coming_and_going(
    data: st.DataObject, size: int, cursor: int, leads: int
) -> None:
    """However reps come and go: no rep gets two leads in a row unless alone, a rep available for
    `size` leads running gets one of them, and always-available reps stay within one lead of each other."""
    members = [f"r{i}" for i in range(size)]
    steady = data.draw(st.lists(st.booleans(), min_size=size, max_size=size).filter(any), label="steady")
    schedule = data.draw(
        st.lists(st.lists(st.booleans(), min_size=size, max_size=size), min_size=leads, max_size=leads),
        label="available per lead",
    )
    available = [[s or up for s, up in zip(steady, row, strict=True)] for row in schedule]
    book = compiled(named(*members, capacity=100))
    state = RepState(cursors={"t": cursor})
    picks = []
    for row in available:
        status = {m: "available" if up else "away" for m, up in zip(members, row, strict=True)}
        decision = decide(lead(), book, replace(state, status=status), NOW)
        assert isinstance(decision, Assignment)
        assert row[members.index(decision.rep_id)]
        picks.append(decision.rep_id)
        state = committed(state, decision)
    for i in range(1, len(picks)):
        if picks[i] == picks[i - 1]:
            assert sum(available[i]) == 1, (i, picks)
    for i in range(len(picks) - size + 1):
        for j, member in enumerate(members):
            if all(row[j] for row in available[i : i + size]):
                assert member in picks[i : i + size], (i, member, picks)
    counts = Counter(picks)
    steady_counts = [counts[m] for m, s in zip(members, steady, strict=True) if s]
    assert max(steady_counts) - min(steady_counts) <= 1


# ---------------------------------------------------------------- weighted


def weighted_run(weights: list[int], n: int) -> list[str]:
    book = compiled(
        [{"id": f"r{i}", "weight": w, "capacity": 100} for i, w in enumerate(weights)], "weighted"
    )
    state, picks = RepState(), []
    for _ in range(n):
        decision = decide(lead(), book, state, NOW)
        assert isinstance(decision, Assignment)
        assert decision.strategy == "weighted"
        picks.append(decision.rep_id)
        state = committed(state, decision)
    return picks


@pytest.mark.parametrize(
    ("weights", "pattern"),
    [
        ([2, 1], "010"),
        ([1, 2], "101"),
        ([1, 1], "01"),
        ([1, 1, 1], "012"),
        ([3, 2], "01010"),
        ([5, 1, 1], "0010200"),
        ([4, 1], "00100"),
    ],
)
def test_smooth_weighted_pattern(weights: list[int], pattern: str) -> None:
    """Smooth weighted round robin interleaves (2:1 is a,b,a; 5:1:1 is a,a,b,a,c,a,a), then repeats."""
    expected = [f"r{c}" for c in pattern]
    assert weighted_run(weights, 2 * len(pattern)) == expected * 2


@PROPERTY
@given(
    weights=st.lists(st.integers(min_value=1, max_value=8), min_size=1, max_size=4), cycles=st.integers(1, 3)
)
def test_weighted_shares_converge_exactly(weights: list[int], cycles: int) -> None:
    """Over k times the weight sum, each rep gets exactly k times its weight; at every point its count is
    within one lead of its exact share, and no rep gets more than its weight in a row."""
    total = sum(weights)
    picks = weighted_run(weights, cycles * total)
    counts = Counter(picks)
    assert [counts[f"r{i}"] for i in range(len(weights))] == [cycles * w for w in weights]
    running: Counter[str] = Counter()
    for n, rep in enumerate(picks, start=1):
        running[rep] += 1
        for i, w in enumerate(weights):
            assert abs(running[f"r{i}"] - n * w / total) < 1
    if len(weights) > 1:
        for rep, run in itertools.groupby(picks):
            assert len(list(run)) <= weights[int(rep[1:])]


def test_weighted_skips_ineligible_reps_and_leaves_their_weight_alone() -> None:
    """An away rep is not picked whatever its current weight, and weights_after covers only eligible reps."""
    book = compiled(
        [{"id": "a", "weight": 1}, {"id": "b", "weight": 3}, {"id": "c", "weight": 1}], "weighted"
    )
    state = RepState(weights={"t": {"a": 0, "b": 50, "c": 0}}, status={"b": "away"})
    found = pick(book, state)
    assert found.rep_id == "a"
    assert found.weights_after == {"a": -1, "c": 1}
    assert found.cursor_after is None


# ---------------------------------------------------------------- least loaded

LEAST: list[tuple[str, RepState, str]] = [
    ("fewest open wins", RepState(open_leads={"a": 2, "b": 1, "c": 3}), "b"),
    ("zero open is fewest", RepState(open_leads={"a": 2, "b": 1}), "c"),
    (
        "tie: longest since last assignment",
        RepState(open_leads={"a": 1, "b": 1, "c": 1}, last_assigned_ms={"a": 300, "b": 100, "c": 200}),
        "b",
    ),
    ("tie: never assigned goes first", RepState(last_assigned_ms={"a": 1, "c": 2}), "b"),
    ("tie: member order last", RepState(last_assigned_ms={"a": 5, "b": 5, "c": 5}), "a"),
    ("nothing known: first member", RepState(), "a"),
    ("load beats waiting", RepState(open_leads={"a": 1}, last_assigned_ms={"b": 9, "c": 10}), "b"),
    ("least loaded but away", RepState(open_leads={"a": 5, "c": 5}, status={"b": "away"}), "a"),
]


@pytest.mark.parametrize(("state", "picked"), [r[1:] for r in LEAST], ids=[r[0] for r in LEAST])
def test_least_loaded(state: RepState, picked: str) -> None:
    """Fewest open leads; ties to the smallest last_assigned_ms (never assigned first), then member order."""
    book = compiled(named("a", "b", "c"), strategy="least_loaded")
    assert pick(book, state) == Pick(picked)


@PROPERTY
@given(
    open_leads=st.lists(st.integers(0, 4), min_size=1, max_size=5),
    last=st.lists(st.one_of(st.none(), st.integers(0, 5)), min_size=5, max_size=5),
)
def test_least_loaded_minimises_the_key(open_leads: list[int], last: list[int | None]) -> None:
    """The pick has the least (open, last assigned or never, member index) among eligible reps."""
    members = [f"r{i}" for i in range(len(open_leads))]
    book = compiled(named(*members, capacity=10), strategy="least_loaded")
    state = RepState(
        open_leads=dict(zip(members, open_leads, strict=True)),
        last_assigned_ms={m: v for m, v in zip(members, last, strict=False) if v is not None},
    )
    keys = [(o, -1 if last[i] is None else last[i], i) for i, o in enumerate(open_leads)]
    assert pick(book, state).rep_id == members[min(range(len(members)), key=keys.__getitem__)]


# ---------------------------------------------------------------- skills


SKILLED: list[dict[str, Any]] = [
    {"id": "de1", "skills": ["DE", " en "]},
    {"id": "fr1", "skills": ["fr", "en"]},
    {"id": "any"},
]


LANG: dict[str, Any] = {"team": "t", "skills_from": "attributes.language"}
P, N, M = "picked", "not_their_turn", "missing_skill"


@pytest.mark.parametrize(
    ("assign", "attributes", "picked", "verdicts"),
    [
        (LANG, {"language": "DE"}, "de1", (P, M, M)),
        (LANG, {"language": " Fr "}, "fr1", (M, P, M)),
        (LANG, {}, "de1", (P, N, N)),
        (LANG, {"language": ""}, "de1", (P, N, N)),
        (LANG, {"language": "jp"}, None, (M, M, M)),
        ({"team": "t", "skills": ["EN"]}, {}, "de1", (P, N, M)),
        (LANG | {"skills": ["en"]}, {"language": "fr"}, "fr1", (M, P, M)),
        (LANG | {"skills": ["de"]}, {"language": "fr"}, None, (M, M, M)),
    ],
)
def test_skills_and_skills_from(
    assign: dict[str, Any], attributes: dict[str, Any], picked: str | None, verdicts: tuple[str, ...]
) -> None:
    """Candidates need every target skill plus the lead's `skills_from` value, compared case-insensitively."""
    book = compiled(SKILLED, assign=assign)
    decision = decide(lead(attributes=attributes), book, RepState(), NOW)
    step = decision.trace.steps[0]
    assert tuple(v for _, v in step.candidates) == verdicts
    if picked is None:
        assert isinstance(decision, Queued)
        assert step.outcome == "nobody_available"
    else:
        assert isinstance(decision, Assignment)
        assert decision.rep_id == picked


def test_skills_from_reads_any_routable_field() -> None:
    """`skills_from` may name a top-level field such as `product`."""
    book = compiled(
        [{"id": "a", "skills": ["crm"]}, {"id": "b", "skills": ["erp"]}],
        assign={"team": "t", "skills_from": "product"},
    )
    decision = decide(lead(product="ERP"), book, RepState(), NOW)
    assert isinstance(decision, Assignment)
    assert decision.rep_id == "b"  # fmt: skip


# ---------------------------------------------------------------- feeding decisions back


@PROPERTY
@given(
    strategy=st.sampled_from(["round_robin", "weighted", "least_loaded"]),
    reps=st.lists(
        st.tuples(st.integers(0, 3), st.one_of(st.none(), st.integers(0, 3)), st.integers(1, 3)),
        min_size=1,
        max_size=4,
    ),
    extra=st.integers(0, 4),
)
def test_feeding_assignments_back_never_exceeds_capacity_or_daily_cap(
    strategy: str, reps: list[tuple[int, int | None, int]], extra: int
) -> None:
    """Committing each assignment as Redis would, no rep passes its capacity or daily cap; exactly the
    total room is assigned, and every lead beyond it is queued on the default queue."""
    book = compiled(
        [{"id": f"r{i}", "capacity": c, "daily_cap": d, "weight": w} for i, (c, d, w) in enumerate(reps)],
        strategy=strategy,
    )
    room = {f"r{i}": min(c, c if d is None else d) for i, (c, d, _) in enumerate(reps)}
    assume(sum(room.values()) + extra > 0)
    state = RepState()
    outcomes = []
    for n in range(sum(room.values()) + extra):
        now = NOW + timedelta(seconds=n)
        decision = decide(lead(), book, state, now)
        if isinstance(decision, Assignment):
            assert decision.pool == "t"
            assert decision.pool_version == state.versions.get("t", 0)
            rep = book.reps[decision.rep_id].rep
            assert (decision.capacity, decision.daily_cap) == (rep.capacity, rep.daily_cap)
        else:
            assert decision.queue == "unrouted"
        outcomes.append(isinstance(decision, Assignment))
        state = committed(state, decision)
        for i, (capacity, cap, _) in enumerate(reps):
            assert state.open_leads.get(f"r{i}", 0) <= capacity
            assert cap is None or state.assigned_today.get(f"r{i}", 0) <= cap
    total = sum(room.values())
    assert outcomes == [True] * total + [False] * extra
    assert dict(state.open_leads) == {r: n for r, n in room.items() if n}
