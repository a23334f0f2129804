"""Routing decisions: a pure function of (lead, rulebook, rep state, now)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from importlib import resources
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rules.decide import Assignment, Queued, RepState, decide
from rules.events import Lead
from rules.rulebook import Rulebook, parse_rulebook

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
PROPERTY = settings(database=None, deadline=None, max_examples=150)

DEFAULT = parse_rulebook(
    (resources.files("rules") / "examples" / "default.yaml").read_text(encoding="utf-8"), "default.yaml"
)


def lead(country: str | None = None, **fields: Any) -> Lead:
    return Lead.model_validate({"id": "lead-1", "country": country, **fields})


def book(
    reps: list[dict[str, Any]],
    teams: list[dict[str, Any]],
    routes: list[dict[str, Any]],
    default_queue: str = "unrouted",
) -> Rulebook:
    return Rulebook.model_validate(
        {"version": "t", "default_queue": default_queue, "reps": reps, "teams": teams, "routes": routes}
    )


def one_team(statuses: list[str], capacity: int = 5) -> Rulebook:
    """Team `t` with reps r0..rN; a status of `full` means available but at capacity."""
    reps = [
        {
            "id": f"r{i}",
            "teams": ["t"],
            "capacity": capacity,
            "status": "away" if s == "away" else "available",
        }
        for i, s in enumerate(statuses)
    ]
    return book(reps, [{"id": "t"}], [{"id": "all", "assign": {"team": "t"}}])


def full_reps(statuses: list[str], capacity: int = 5) -> dict[str, int]:
    return {f"r{i}": capacity for i, s in enumerate(statuses) if s == "full"}


@pytest.mark.parametrize(
    ("country", "route", "team"),
    [
        ("US", "north-america", "amer"),
        ("ca", "north-america", "amer"),
        ("MX", "north-america", "amer"),
        ("GB", "europe", "emea"),
        ("de", "europe", "emea"),
        ("JP", "asia-pacific", "apac"),
        ("IN", "asia-pacific", "apac"),
        ("BR", "everyone-else", "inside"),
        ("ZA", "everyone-else", "inside"),
        (None, "everyone-else", "inside"),
    ],
)
def test_country_routing_with_shipped_rulebook(country: str | None, route: str, team: str) -> None:
    """A lead goes to the first route whose countries include its country; others to the catch-all."""
    decision = decide(lead(country), DEFAULT, RepState(), NOW)
    assert isinstance(decision, Assignment)
    assert (decision.route, decision.team) == (route, team)
    assert decision.rep_id in DEFAULT.members(team)


@pytest.mark.parametrize(
    ("cursor", "statuses", "rep", "cursor_after"),
    [
        (0, ["ok", "ok", "ok"], "r0", 1),
        (1, ["ok", "ok", "ok"], "r1", 2),
        (2, ["ok", "ok", "ok"], "r2", 0),
        (0, ["away", "ok", "ok"], "r1", 2),
        (0, ["full", "ok", "ok"], "r1", 2),
        (0, ["away", "full", "ok"], "r2", 0),
        (1, ["ok", "away", "away"], "r0", 1),
        (2, ["ok", "full", "full"], "r0", 1),
        (2, ["full", "ok", "away"], "r1", 2),
        (5, ["ok", "ok", "ok"], "r2", 0),
    ],
)
def test_round_robin_skips_away_and_full_reps(
    cursor: int, statuses: list[str], rep: str, cursor_after: int
) -> None:
    """From the cursor on, the first rep who is available and below capacity is picked."""
    rulebook = one_team(statuses)
    state = RepState(open_leads=full_reps(statuses), cursors={"t": cursor})
    decision = decide(lead(), rulebook, state, NOW)
    assert isinstance(decision, Assignment)
    assert (decision.rep_id, decision.cursor_after) == (rep, cursor_after)


@pytest.mark.parametrize(("open_leads", "picked"), [(0, "r0"), (1, "r0"), (2, "r1"), (3, "r1")])
def test_capacity_is_the_number_of_open_leads_allowed(open_leads: int, picked: str) -> None:
    """A rep with capacity 2 takes a lead with 0 or 1 open, not with 2 or more."""
    rulebook = one_team(["ok", "ok"], capacity=2)
    decision = decide(lead(), rulebook, RepState(open_leads={"r0": open_leads}), NOW)
    assert isinstance(decision, Assignment)
    assert decision.rep_id == picked


def test_capacity_zero_never_takes_leads() -> None:
    """A rep with capacity 0 is never assigned a lead."""
    rulebook = one_team(["ok"], capacity=0)
    decision = decide(lead(), rulebook, RepState(), NOW)
    assert isinstance(decision, Queued)


@PROPERTY
@given(
    statuses=st.lists(st.sampled_from(["ok", "away", "full"]), min_size=1, max_size=7),
    leads=st.integers(min_value=0, max_value=60),
    cursor=st.integers(min_value=0, max_value=1000),
)
def test_round_robin_is_fair_over_many_leads(statuses: list[str], leads: int, cursor: int) -> None:
    """Feeding cursor_after back, each available rep gets floor or ceil of N/k leads, in member order."""
    available = [f"r{i}" for i, s in enumerate(statuses) if s == "ok"]
    assume(available)
    rulebook = one_team(statuses)
    open_leads = full_reps(statuses)
    cursors = {"t": cursor}
    picks = []
    for _ in range(leads):
        decision = decide(lead(), rulebook, RepState(open_leads, cursors), NOW)
        assert isinstance(decision, Assignment)
        assert decision.cursor_before == cursors["t"]
        assert 0 <= decision.cursor_after < len(statuses)
        picks.append(decision.rep_id)
        cursors = {"t": decision.cursor_after}
    counts = Counter(picks)
    assert set(counts) <= set(available)
    for rep in available:
        assert counts[rep] in {leads // len(available), -(-leads // len(available))}
    # Visits every available member once per cycle, in rotation order.
    for i in range(1, len(picks)):
        assert available.index(picks[i]) == (available.index(picks[i - 1]) + 1) % len(available)
    if picks:
        start = cursor % len(statuses)
        expected_first = next(
            f"r{(start + s) % len(statuses)}"
            for s in range(len(statuses))
            if statuses[(start + s) % len(statuses)] == "ok"
        )
        assert picks[0] == expected_first


@pytest.mark.parametrize(("stored", "picked"), [(0, "r0"), (2, "r2"), (3, "r0"), (7, "r1"), (1000, "r1")])
def test_cursor_before_is_the_raw_stored_cursor(stored: int, picked: str) -> None:
    """cursor_before is the cursor as read, even past the team size, so compare-and-set matches it."""
    rulebook = one_team(["ok", "ok", "ok"])
    decision = decide(lead(), rulebook, RepState(cursors={"t": stored}), NOW)
    assert isinstance(decision, Assignment)
    assert decision.cursor_before == stored
    assert decision.rep_id == picked
    assert decision.cursor_after == (int(picked[1:]) + 1) % 3


def test_missing_cursor_starts_at_the_first_member() -> None:
    """A team with no stored cursor starts at its first member, and cursor_before is 0."""
    decision = decide(lead(), one_team(["ok", "ok"]), RepState(cursors={"other": 1}), NOW)
    assert isinstance(decision, Assignment)
    assert (decision.rep_id, decision.cursor_before, decision.cursor_after) == ("r0", 0, 1)


def test_cursors_are_per_team() -> None:
    """Each team rotates on its own cursor."""
    rulebook = book(
        [{"id": "a1", "teams": ["a"]}, {"id": "a2", "teams": ["a"]}, {"id": "b1", "teams": ["b"]}],
        [{"id": "a"}, {"id": "b"}],
        [
            {"id": "us", "when": {"country": ["US"]}, "assign": {"team": "a"}},
            {"id": "rest", "assign": {"team": "b"}},
        ],
    )
    decision = decide(lead("US"), rulebook, RepState(cursors={"a": 1, "b": 0}), NOW)
    assert isinstance(decision, Assignment)
    assert (decision.rep_id, decision.cursor_before) == ("a2", 1)


@pytest.mark.parametrize(
    ("amer_state", "route", "team"),
    [
        ("away", "everyone-else", "inside"),
        ("full", "everyone-else", "inside"),
    ],
)
def test_team_with_nobody_available_falls_through(amer_state: str, route: str, team: str) -> None:
    """A matching route whose team has nobody available falls through to the next route."""
    amer = DEFAULT.members("amer")
    if amer_state == "away":
        rulebook = Rulebook.model_validate(
            DEFAULT.model_dump()
            | {"reps": [r.model_dump() | ({"status": "away"} if r.id in amer else {}) for r in DEFAULT.reps]}
        )
        state = RepState()
    else:
        rulebook = DEFAULT
        state = RepState(open_leads={rep: DEFAULT.rep(rep).capacity for rep in amer})
    decision = decide(lead("US"), rulebook, state, NOW)
    assert isinstance(decision, Assignment)
    assert (decision.route, decision.team) == (route, team)
    assert any("north-america" in line and "falling through" in line for line in decision.explanation)


@pytest.mark.parametrize(
    ("rulebook", "country", "state"),
    [
        pytest.param(
            book(
                [{"id": "a", "teams": ["t"]}],
                [{"id": "t"}],
                [{"id": "us", "when": {"country": ["US"]}, "assign": {"team": "t"}}],
                default_queue="leftovers",
            ),
            "FR",
            RepState(),
            id="no route matches",
        ),
        pytest.param(
            book(
                [{"id": "a", "teams": ["t"]}],
                [{"id": "t"}],
                [{"id": "us", "when": {"country": ["US"]}, "assign": {"team": "t"}}],
                default_queue="leftovers",
            ),
            None,
            RepState(),
            id="lead without country, no catch-all",
        ),
        pytest.param(
            book(
                [{"id": "a", "teams": ["t"], "status": "away"}],
                [{"id": "t"}],
                [{"id": "all", "assign": {"team": "t"}}],
                default_queue="leftovers",
            ),
            "US",
            RepState(),
            id="only team has everyone away",
        ),
        pytest.param(
            book(
                [{"id": "a", "teams": ["t"], "capacity": 1}],
                [{"id": "t"}],
                [{"id": "all", "assign": {"team": "t"}}],
                default_queue="leftovers",
            ),
            "US",
            RepState(open_leads={"a": 1}),
            id="only team is at capacity",
        ),
        pytest.param(
            book(
                [{"id": "a"}],
                [{"id": "t"}],
                [{"id": "all", "assign": {"team": "t"}}],
                default_queue="leftovers",
            ),
            "US",
            RepState(),
            id="team has no members",
        ),
    ],
)
def test_unroutable_lead_is_queued_not_dropped(
    rulebook: Rulebook, country: str | None, state: RepState
) -> None:
    """A lead that no route can place is queued on the default queue with a reason."""
    decision = decide(lead(country), rulebook, state, NOW)
    assert isinstance(decision, Queued)
    assert decision.queue == "leftovers"
    assert decision.reason
    assert decision.route == "(none)"
    assert decision.explanation
    assert decision.explanation[-1] == decision.reason


def test_queue_route_queues_on_its_queue() -> None:
    """A matching route that targets a queue queues the lead there, ahead of later routes."""
    rulebook = book(
        [{"id": "a", "teams": ["t"]}],
        [{"id": "t"}],
        [
            {"id": "vip", "when": {"country": ["JP"]}, "assign": {"queue": "vip-desk"}},
            {"id": "all", "assign": {"team": "t"}},
        ],
    )
    decision = decide(lead("JP"), rulebook, RepState(), NOW)
    assert isinstance(decision, Queued)
    assert (decision.queue, decision.route) == ("vip-desk", "vip")
    assert decision.reason
    other = decide(lead("US"), rulebook, RepState(), NOW)
    assert isinstance(other, Assignment)
    assert other.route == "all"


def test_explanation_traces_skipped_routes() -> None:
    """The explanation has one line per route considered, naming why it was skipped."""
    decision = decide(lead("BR"), DEFAULT, RepState(), NOW)
    assert isinstance(decision, Assignment)
    assert len(decision.explanation) == 4
    assert decision.explanation[0].startswith("route north-america: skipped")
    assert "picked " + decision.rep_id in decision.explanation[-1]


@pytest.mark.parametrize(
    "now",
    [
        NOW,
        datetime(2030, 1, 1, 23, 59, 59, 999_999, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(2000, 2, 29, tzinfo=timezone(timedelta(hours=-8))),
    ],
)
@pytest.mark.parametrize("country", ["US", "BR"])
def test_decided_at_is_the_now_passed_in(now: datetime, country: str) -> None:
    """decided_at is exactly the `now` given: the decision never reads the clock."""
    assigned = decide(lead(country), DEFAULT, RepState(), now)
    assert assigned.decided_at == now
    assert assigned.decided_at.utcoffset() == now.utcoffset()
    queued = decide(lead(country), one_team(["away"]), RepState(), now)
    assert isinstance(queued, Queued)
    assert queued.decided_at == now
    assert queued.decided_at.utcoffset() == now.utcoffset()


COUNTRIES = st.sampled_from([None, "US", "CA", "GB", "DE", "JP", "AU", "BR", "ZA", "fr"])
REP_IDS = [r.id for r in DEFAULT.reps]
STATES = st.builds(
    RepState,
    open_leads=st.dictionaries(st.sampled_from(REP_IDS), st.integers(min_value=0, max_value=60)),
    cursors=st.dictionaries(
        st.sampled_from([t.id for t in DEFAULT.teams]), st.integers(min_value=0, max_value=10_000)
    ),
)
_WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-", min_size=1, max_size=12)
EMAILS = st.builds("{}@{}.example".format, _WORD, _WORD)
PII_TEXT = st.one_of(EMAILS, st.text(min_size=4, max_size=40))


@PROPERTY
@given(country=COUNTRIES, state=STATES)
def test_decide_is_deterministic(country: str | None, state: RepState) -> None:
    """The same lead, rulebook, state and now always give the same decision."""
    first = decide(lead(country), DEFAULT, state, NOW)
    assert decide(lead(country), DEFAULT, state, NOW) == first
    assert decide(lead(country), DEFAULT, RepState(dict(state.open_leads), dict(state.cursors)), NOW) == first


@PROPERTY
@given(
    country=COUNTRIES,
    state=STATES,
    email=EMAILS,
    phone=st.text(alphabet="+0123456789 -()", min_size=4, max_size=20),
    first_name=PII_TEXT,
    last_name=PII_TEXT,
    company=PII_TEXT,
)
def test_explanation_contains_no_pii(
    country: str | None,
    state: RepState,
    email: str,
    phone: str,
    first_name: str,
    last_name: str,
    company: str,
) -> None:
    """The explanation never carries the lead's email, phone, names or company: it is PII-free."""
    bare = decide(lead(country), DEFAULT, state, NOW)
    baseline = "\n".join(bare.explanation)
    pii = {"email": email, "phone": phone, "first_name": first_name, "last_name": last_name}
    full = lead(country, **pii, company={"name": company}, attributes={"note": email})
    values = [v for v in [*pii.values(), company] if len(v.strip()) > 3]
    # A value that the PII-free explanation already contains (e.g. "rout") proves nothing.
    assume(all(v.strip() not in baseline for v in values))
    decision = decide(full, DEFAULT, state, NOW)
    assert decision.explanation == bare.explanation
    text = "\n".join(decision.explanation)
    for value in values:
        assert value.strip() not in text


def test_explanation_omits_rep_display_names() -> None:
    """A rep's display name (a person's name) never appears in the explanation, only the rep id."""
    rulebook = book(
        [
            {"id": "r1", "name": "Jane Doe", "teams": ["t"], "status": "away"},
            {"id": "r2", "name": "John Roe", "teams": ["t"]},
        ],
        [{"id": "t"}],
        [{"id": "all", "assign": {"team": "t"}}],
    )
    decision = decide(lead(), rulebook, RepState(), NOW)
    text = "\n".join(decision.explanation)
    assert "r2" in text
    assert "Jane" not in text
    assert "John" not in text
