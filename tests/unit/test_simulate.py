"""Offline simulation: the engine over a lead stream with in-memory state, and lead files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from router.leadfile import DEFAULT_START, LeadFileError, generate_leads, parse_csv, parse_jsonl, read_leads
from rules.compiled import CompiledRulebook, compile_rulebook
from rules.events import Lead
from rules.rulebook import parse_rulebook
from rules.simulate import compare, comparison_lines, report_lines, simulate

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # a Monday
SHIPPED = compile_rulebook(
    parse_rulebook((resources.files("rules") / "examples" / "default.yaml").read_text(encoding="utf-8"))
)


def book(text: str) -> CompiledRulebook:
    return compile_rulebook(parse_rulebook(text))


def team_book(strategy: str = "round_robin", capacity: int = 100, extra: str = "") -> CompiledRulebook:
    return book(
        f"""
version: "1"
reps:
  - {{id: a, teams: [t], capacity: {capacity}, weight: 2{extra}}}
  - {{id: b, teams: [t], capacity: {capacity}}}
  - {{id: c, teams: [t], capacity: {capacity}}}
teams: [{{id: t, strategy: {strategy}}}]
routes:
  - {{id: all, assign: {{team: t}}, fallback: {{queue: overflow}}}}
"""
    )


def stream(n: int, every: timedelta = timedelta(minutes=1), **fields: Any) -> list[tuple[Lead, datetime]]:
    return [(Lead.model_validate({"id": f"L{i}", **fields}), T0 + i * every) for i in range(n)]


def reps_in_order(result_owners: dict[str, str] | Any) -> list[str]:
    return [owner.removeprefix("rep:") for owner in result_owners.values()]


# --- the state is applied as the Redis commit would -----------------------------------


def test_round_robin_rotates_through_the_team() -> None:
    """Each assignment moves the cursor, as the commit does: a, b, c, a, b, c."""
    result = simulate(team_book(), stream(6))
    assert reps_in_order(result.owners) == ["a", "b", "c", "a", "b", "c"]
    assert result.fairness == {"t": 0}
    assert dict(result.by_rep) == {"a": 2, "b": 2, "c": 2}


def test_weighted_keeps_its_current_weights_between_leads() -> None:
    """Smooth weighted rotation with weights 2:1:1 gives `a` half the leads, spread over the cycle."""
    result = simulate(team_book("weighted"), stream(8))
    assert reps_in_order(result.owners) == ["a", "b", "c", "a"] * 2


def test_least_loaded_counts_open_leads() -> None:
    """least_loaded sees the open leads of earlier assignments: it spreads them evenly."""
    result = simulate(team_book("least_loaded"), stream(9))
    assert dict(result.by_rep) == {"a": 3, "b": 3, "c": 3}
    assert reps_in_order(result.owners)[:3] == ["a", "b", "c"]


def test_capacity_is_respected_and_counted() -> None:
    """Without touches leads stay open: each rep takes `capacity` leads, the rest are queued."""
    result = simulate(team_book(capacity=2), stream(10))
    assert dict(result.by_rep) == {"a": 2, "b": 2, "c": 2}
    assert result.assigned == 6
    assert result.queued == 4
    assert dict(result.by_queue) == {"overflow": 4}
    assert dict(result.by_route) == {"all": 10}
    # Lead 5 finds `a` full, lead 6 `a` and `b`, leads 7 to 10 everyone.
    assert result.capacity_hits == 6


def test_touches_free_capacity() -> None:
    """A lead touched before the next arrives frees its rep: capacity 1 then never overflows."""
    quick = simulate(team_book(capacity=1), stream(30), touch_after=timedelta(seconds=30))
    assert (quick.assigned, quick.queued, quick.capacity_hits, quick.waited) == (30, 0, 0, 0)


def test_queued_leads_wait_and_are_assigned_first_in_first_out() -> None:
    """As in the router, a lead nobody could take waits; each touch that frees a rep hands
    that rep the oldest waiting lead it can take."""
    rulebook = book(
        """
version: "1"
reps: [{id: a, teams: [t], capacity: 1}]
teams: [{id: t}]
routes: [{id: all, assign: {team: t}, fallback: {queue: q}}]
"""
    )
    result = simulate(rulebook, stream(3), touch_after=timedelta(minutes=10))
    # L0 at 9:00; L1 (9:01) waits for the touch at 9:10, L2 (9:02) for the one at 9:20.
    assert list(result.owners.values()) == ["rep:a", "rep:a", "rep:a"]
    assert (result.assigned, result.queued, result.waited) == (3, 0, 2)
    assert result.longest_wait == timedelta(minutes=18)
    assert result.capacity_hits == 2  # L1 and L2 found `a` full when they arrived
    untouched = simulate(rulebook, stream(3))
    assert list(untouched.owners.values()) == ["rep:a", "queue:q", "queue:q"]
    assert (untouched.queued, untouched.waited) == (2, 0)


def test_leads_queued_by_design_do_not_wait() -> None:
    """A route that queues on purpose is final: the lead never joins the retry queue."""
    rulebook = book(
        """
version: "1"
reps: [{id: a, teams: [t], capacity: 1}]
teams: [{id: t}]
routes:
  - {id: vip, when: {country: [JP]}, assign: {queue: vip-desk}}
  - {id: all, assign: {team: t}, fallback: {queue: q}}
"""
    )
    result = simulate(rulebook, stream(3, country="JP"), touch_after=timedelta(minutes=1))
    assert dict(result.by_queue) == {"vip-desk": 3}
    assert result.waited == 0


def test_daily_cap_counts_per_local_day() -> None:
    """A daily cap stops a rep for the rest of their local day; leads waiting for them are
    assigned when their next local day starts."""
    rulebook = book(
        """
version: "1"
reps:
  - {id: a, teams: [t], daily_cap: 2, timezone: Asia/Tokyo}
teams: [{id: t}]
routes: [{id: all, assign: {team: t}, fallback: {queue: q}}]
"""
    )
    # 14:00-14:03 UTC is 23:00-23:03 in Tokyo; 15:00 UTC is the next Tokyo day.
    start = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
    leads = [(Lead(id=f"L{i}"), start + timedelta(minutes=i)) for i in range(4)]
    leads.append((Lead(id="next-day"), datetime(2026, 11, 23, 15, 0, tzinfo=UTC)))
    result = simulate(rulebook, leads, touch_after=timedelta(seconds=1))
    # L2 and L3 wait for Tokyo midnight, then take the new day's two places before next-day.
    assert list(result.owners.values()) == ["rep:a", "rep:a", "rep:a", "rep:a", "queue:q"]
    assert result.waited == 2
    assert result.daily_cap_hits == 3


def test_out_of_hours_reps_are_skipped_by_the_time_of_each_lead() -> None:
    """Each lead is decided at its own time: a rep with hours takes leads only while working."""
    rulebook = team_book(extra=', hours: {mon: "09:00-10:00"}')
    result = simulate(rulebook, stream(12, every=timedelta(minutes=10)))
    owners = reps_in_order(result.owners)
    assert "a" in owners[:6]
    assert "a" not in owners[6:]  # from 10:00 on


def test_leads_are_decided_in_time_order() -> None:
    """Input order does not matter: leads are sorted by time (stable for equal times)."""
    leads = stream(6)
    forward = simulate(team_book(), leads)
    backward = simulate(team_book(), list(reversed(leads)))
    assert forward.owners == {k: backward.owners[k] for k in forward.owners}


def test_a_repeated_lead_id_keeps_its_first_decision() -> None:
    """Like a replayed event, a lead id seen before is not decided again."""
    leads = stream(3)
    result = simulate(team_book(), [*leads, (leads[0][0], T0 + timedelta(hours=1))])
    assert (result.leads, result.duplicates) == (3, 1)
    assert result.owners["L0"] == "rep:a"


def test_simulation_is_deterministic() -> None:
    """The same leads and rulebook give the same result, every run."""
    leads = generate_leads(500, seed=5)
    assert simulate(SHIPPED, leads) == simulate(SHIPPED, leads)


def test_times_with_different_offsets_compare_as_instants() -> None:
    """Leads stamped in different zones are ordered by instant."""
    later = (Lead(id="later"), datetime(2026, 11, 23, 10, 30, tzinfo=timezone(timedelta(hours=2))))  # 08:30Z
    earlier = (Lead(id="earlier"), datetime(2026, 11, 23, 8, 0, tzinfo=UTC))
    result = simulate(team_book(), [later, earlier])
    assert list(result.owners) == ["earlier", "later"]


# --- compare -----------------------------------------------------------------------


def test_compare_finds_the_leads_whose_owner_changed() -> None:
    """Moving a country to another team changes exactly those leads' owners."""
    text = """
version: "1"
reps: [{id: us-rep, teams: [amer], capacity: 1000}, {id: eu-rep, teams: [emea], capacity: 1000}]
teams: [{id: amer}, {id: emea}]
routes:
  - {id: na, when: {country: [US, CA]}, assign: {team: amer}}
  - {id: rest, assign: {team: emea}, fallback: {queue: q}}
"""
    before = book(text)
    after = book(text.replace("[US, CA]", "[US]"))
    leads = [
        (Lead(id=f"L{i:02d}", country="CA" if i % 3 == 0 else "US"), T0 + timedelta(minutes=i))
        for i in range(40)
    ]
    a, b = simulate(before, leads), simulate(after, leads)
    diff = compare(a, b)
    assert diff.compared == 40
    assert diff.changed == 14
    assert len(diff.sample) == 10
    assert diff.sample[0] == ("L00", "rep:us-rep", "rep:eu-rep")
    assert dict(diff.moves) == {("rep:us-rep", "rep:eu-rep"): 14}
    assert compare(a, a).changed == 0
    text_out = "\n".join(comparison_lines(diff, "old.yaml", "new.yaml"))
    assert "owner changes from old.yaml to new.yaml: 14 of 40 leads" in text_out
    assert "L00  rep:us-rep -> rep:eu-rep" in text_out


def test_compare_ignores_leads_only_one_run_has() -> None:
    """Leads missing from the other run are not counted as changes."""
    a = simulate(team_book(), stream(4))
    b = simulate(team_book(), stream(2))
    assert (compare(a, b).compared, compare(a, b).changed) == (2, 0)


# --- generated leads ---------------------------------------------------------------


def test_generated_leads_are_deterministic_by_seed() -> None:
    """The same seed gives the same leads and times; another seed gives others."""
    first, again, other = generate_leads(200, 7), generate_leads(200, 7), generate_leads(200, 8)
    assert first == again
    assert [lead.model_dump() for lead, _ in first] != [lead.model_dump() for lead, _ in other]


def test_generated_leads_look_like_real_traffic() -> None:
    """Unique ids, increasing aware times from the start, many countries, sizes and sources,
    and some leads at the named-account domains given."""
    leads = generate_leads(2000, 1, DEFAULT_START, account_domains=["globex.com"])
    ids = [lead.id for lead, _ in leads]
    times = [at for _, at in leads]
    assert len(set(ids)) == 2000
    assert times == sorted(times)
    assert times[0] >= DEFAULT_START
    assert all(at.tzinfo is not None for at in times)
    assert len({lead.country for lead, _ in leads}) >= 20
    assert len({lead.source for lead, _ in leads}) >= 5
    employees = [lead.company.employees for lead, _ in leads if lead.company and lead.company.employees]
    assert min(employees) < 100 < 1000 < max(employees)
    assert 20 < sum(1 for lead, _ in leads if lead.company and lead.company.domain == "globex.com") < 200
    assert any(lead.region for lead, _ in leads)


def test_generated_leads_through_the_shipped_rulebook() -> None:
    """Every generated lead gets an owner; counts per route, team and rep add up.
    (The CLI test runs the 10,000 of the acceptance criteria.)"""
    result = simulate(SHIPPED, generate_leads(3_000, 42), touch_after=timedelta(minutes=10))
    assert result.leads == len(result.owners) == 3_000
    assert result.assigned + result.queued == 3_000
    assert sum(result.by_route.values()) == 3_000
    assert sum(result.by_team.values()) == sum(result.by_rep.values()) == result.assigned
    assert sum(result.by_queue.values()) == result.queued
    assert result.assigned > 2_700
    assert len(result.by_route) >= 10  # the traffic exercises most routes
    assert set(result.fairness) == {"amer", "emea", "apac", "inside"}
    report = "\n".join(report_lines(result))
    for heading in ("route", "team", "rep", "fairness spread", "capacity hits", "3,000 leads"):
        assert heading in report


# --- lead files ----------------------------------------------------------------------


def test_jsonl_reads_events_and_bare_leads_with_their_times() -> None:
    """A line is a lead event (time: occurred_at) or a bare lead (time: created_at, else
    the start plus one second per line)."""
    text = (
        '{"event_id": "e1", "type": "lead.created", "occurred_at": "2026-11-23T10:00:00Z",'
        ' "lead": {"id": "A", "country": "us"}}\n'
        '{"id": "B", "country": "DE", "created_at": "2026-11-23T11:00:00+01:00"}\n'
        "\n"
        '{"id": "C", "company": {"employees": 50}, "attributes": {"language": "fr"}}\n'
        '{"lead": {"id": "D", "created_at": "2026-11-24T00:00:00Z"}}\n'
    )
    parsed = parse_jsonl(text, T0)
    assert parsed.problems == []
    assert [(lead.id, at) for lead, at in parsed.leads] == [
        ("A", datetime(2026, 11, 23, 10, tzinfo=UTC)),
        ("B", datetime(2026, 11, 23, 10, tzinfo=UTC)),
        ("C", T0 + timedelta(seconds=3)),
        ("D", datetime(2026, 11, 24, tzinfo=UTC)),
    ]
    assert parsed.leads[0][0].country == "US"
    assert parsed.leads[2][0].attributes == {"language": "fr"}


def test_jsonl_bad_lines_are_reported_with_line_numbers_and_skipped() -> None:
    """Each bad line is skipped and reported as `line N: reason`; the good ones are kept."""
    text = "\n".join(
        [
            '{"id": "ok-1"}',
            "{not json",
            "[1, 2]",
            '{"country": "US"}',
            '{"id": "x", "country": "USA", "email": "secret@example.com"}',
            '{"id": "y", "created_at": "2026-11-23T10:00:00"}',
            '{"id": "z", "created_at": "yesterday"}',
            '{"id": "ok-2"}',
        ]
    )
    parsed = parse_jsonl(text)
    assert [lead.id for lead, _ in parsed.leads] == ["ok-1", "ok-2"]
    assert parsed.skipped == 6
    assert [p.split(":", 1)[0] for p in parsed.problems] == [f"line {n}" for n in range(2, 8)]
    assert "invalid JSON" in parsed.problems[0]
    assert "expected a JSON object" in parsed.problems[1]
    assert "id: Field required" in parsed.problems[2]
    assert "country" in parsed.problems[3]
    assert "created_at" in parsed.problems[4]
    assert "timezone" in parsed.problems[4]
    assert "secret@example.com" not in "\n".join(parsed.problems), "reasons never echo values"
    assert "USA" not in "\n".join(parsed.problems)


def test_csv_maps_dotted_columns_and_attributes() -> None:
    """CSV headers name lead fields, `company.x` and `attributes.x`; empty cells are absent;
    attribute numbers and booleans become numbers and booleans (but not zip-like `02139`)."""
    text = (
        "id,country,region,postal_code,company.employees,company.domain,attributes.language,"
        "attributes.seats,attributes.trial,attributes.code,created_at\n"
        "A,US,CA,94107,450,acme.com,en,25,true,02139,2026-11-23T10:00:00Z\n"
        "B,DE,,,,,,,,,\n"
    )
    parsed = parse_csv(text, T0)
    assert parsed.problems == []
    (a, at_a), (b, at_b) = parsed.leads
    assert (a.country, a.region, a.postal_code) == ("US", "CA", "94107")
    assert a.company is not None
    assert (a.company.employees, a.company.domain) == (450, "acme.com")
    assert a.attributes == {"language": "en", "seats": 25, "trial": True, "code": "02139"}
    assert at_a == datetime(2026, 11, 23, 10, tzinfo=UTC)
    assert (b.country, b.company, b.attributes, b.region) == ("DE", None, {}, None)
    assert at_b == T0 + timedelta(seconds=1)


def test_csv_bad_rows_and_unknown_columns_are_reported() -> None:
    """Bad rows are skipped with their line number; an unknown column is noted and ignored."""
    text = (
        "id,country,company.employees,colour\n"
        "A,US,10,red\n"
        "B,USA,10,red\n"
        "C,US,many,red\n"
        ",US,10,red\n"
        "D,US,10,red,extra\n"
        "E,GB,5,blue\n"
    )
    parsed = parse_csv(text)
    assert [lead.id for lead, _ in parsed.leads] == ["A", "E"]
    assert parsed.skipped == 4
    assert parsed.problems[0] == "line 1: unknown column 'colour' ignored"
    assert [p.split(":", 1)[0] for p in parsed.problems[1:]] == ["line 3", "line 4", "line 5", "line 6"]
    assert "company.employees" in parsed.problems[2]
    assert "more cells than header columns" in parsed.problems[4]


def test_csv_without_an_id_column_is_noted() -> None:
    """A CSV without `id` says so once, and every row is skipped."""
    parsed = parse_csv("country\nUS\nDE\n")
    assert parsed.problems[0] == "line 1: no `id` column: every lead needs an id"
    assert (len(parsed.leads), parsed.skipped) == (0, 2)


def test_read_leads_by_suffix(tmp_path: Path) -> None:
    """read_leads picks the format by suffix and refuses others or unreadable files."""
    (tmp_path / "a.jsonl").write_text('{"id": "A"}\n')
    (tmp_path / "b.csv").write_text("id\nB\n")
    (tmp_path / "c.txt").write_text("id\nC\n")
    assert [lead.id for lead, _ in read_leads(tmp_path / "a.jsonl").leads] == ["A"]
    assert [lead.id for lead, _ in read_leads(tmp_path / "b.csv").leads] == ["B"]
    with pytest.raises(LeadFileError, match=r"expected a \.jsonl or \.csv"):
        read_leads(tmp_path / "c.txt")
    with pytest.raises(LeadFileError, match="cannot read"):
        read_leads(tmp_path / "missing.jsonl")
