"""Rulebook v2 validation: every problem reported at once, each with its path and line number."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from importlib import resources

import pytest

from rules.compiled import compile_rulebook
from rules.rulebook import Rulebook, RulebookError, parse_rulebook
from rules.selection import RepState, verdict

SHIPPED = resources.files("rules") / "examples" / "default.yaml"
PROBLEM = re.compile(r"^(?P<path>\S+) \(line (?P<line>\d+)\): (?P<message>.+)$", re.DOTALL)

GOOD = """\
version: "1"
reps:
  - {id: ann, teams: [amer]}
  - {id: bob, teams: [amer]}
teams:
  - {id: amer}
routes:
  - {id: us, when: {country: [US]}, assign: {team: amer}}
  - {id: rest, assign: {queue: triage}}
"""


def problems(text: str) -> tuple[str, ...]:
    with pytest.raises(RulebookError) as info:
        parse_rulebook(text, "test.yaml")
    return info.value.problems


def located(text: str) -> list[tuple[str, int, str]]:
    """Each problem as (path, line, message); fails if one lacks a path and line."""
    out = []
    for problem in problems(text):
        m = PROBLEM.match(problem)
        assert m is not None, f"no `path (line N): message` in {problem!r}"
        out.append((m["path"], int(m["line"]), m["message"]))
    return out


def test_shipped_rulebook_parses_and_compiles() -> None:
    """rules/examples/default.yaml is valid, compiles, and every team has members to rotate."""
    book = parse_rulebook(SHIPPED.read_text(encoding="utf-8"), str(SHIPPED))
    assert isinstance(book, Rulebook)
    assert book.version
    compiled = compile_rulebook(book)
    assert set(compiled.reps) == {r.id for r in book.reps}
    for team in book.teams:
        assert compiled.members[team.id], f"team {team.id} has no members"


# Ten field-level mistakes; the second route is valid so `routes` is not reported as empty.
TEN_FIELD_MISTAKES = """\
version: "2"
timezone: Europe/Berlin
reps:
  - id: ann
    teams: [dach]
    capacity: -3
    status: vacation
  - id: bob
    teams: [dach]
    weight: 0
    hours:
      mon: ["25:00-26:00"]
    skills: [de]
    sick: true
teams:
  - id: dach
    strategy: fastest
territories:
  - id: de
    countries: [DEU]
segments:
  - id: big
    when: {field: company.employees, gte: lots}
named_accounts:
  - id: acme
    domains: [gmail.com]
    owner: {rep: ann}
routes:
  - id: de
    when:
      all:
        - {field: email, equals: x}
    assign: {team: dach}
  - {id: rest, assign: {queue: q}}
"""
TEN_FIELD_EXPECTED = [
    ("reps[0].capacity", 6, "greater than or equal to 0"),
    ("reps[0].status", 7, "'available', 'away' or 'offline'"),
    ("reps[1].weight", 10, "greater than or equal to 1"),
    ("reps[1].hours.mon[0]", 12, "'25:00-26:00' is not a time of day"),
    ("reps[1].sick", 14, "Extra inputs are not permitted"),
    ("teams[0].strategy", 17, "'round_robin', 'weighted' or 'least_loaded'"),
    ("territories[0].countries[0]", 20, "pattern"),
    ("segments[0].when.gte", 23, "valid number"),
    ("named_accounts[0]", 25, "'gmail.com' is a free-mail domain"),
    ("routes[0].when.all[0]", 32, "unknown field 'email'"),
]

# Ten reference mistakes (the fields themselves are all well-formed).
TEN_REFERENCE_MISTAKES = """\
version: "2"
reps:
  - id: ann
    teams: [dach, nordics]
  - id: ann
    teams: [dach]
teams:
  - id: dach
    members: [ann, zed]
  - id: empty
    members: []
territories:
  - id: de
    union: [at]
segments:
  - id: big
    when: {segment: huge}
named_accounts:
  - id: acme
    domains: [acme.com]
    owner: {rep: nobody}
routes:
  - id: de
    when:
      any:
        - {territory: ch}
        - not: {segment: tiny}
    assign: {team: dach}
    fallback: {rep: ghost}
"""
TEN_REFERENCE_EXPECTED = [
    ("reps[1].id", 5, "duplicate id 'ann'"),
    ("reps[0].teams[1]", 4, "unknown team 'nordics'"),
    ("teams[0].members[1]", 9, "unknown rep 'zed'"),
    ("teams[1]", 10, "team 'empty' has no members"),
    ("territories", 12, "territory 'de': unknown union member 'at'"),
    ("segments[0].when.segment", 17, "unknown segment 'huge'"),
    ("routes[0].when.any[0].territory", 26, "unknown territory 'ch'"),
    ("routes[0].when.any[1].not.segment", 27, "unknown segment 'tiny'"),
    ("named_accounts[0].owner.rep", 21, "unknown rep 'nobody'"),
    ("routes[0].fallback.rep", 29, "unknown rep 'ghost'"),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [(TEN_FIELD_MISTAKES, TEN_FIELD_EXPECTED), (TEN_REFERENCE_MISTAKES, TEN_REFERENCE_EXPECTED)],
    ids=["field mistakes", "reference mistakes"],
)
def test_ten_mistakes_are_all_reported_with_path_and_line(
    text: str, expected: list[tuple[str, int, str]]
) -> None:
    """A rulebook with ten mistakes gives ten problems, each `path (line N): message` at the right line."""
    found = located(text)
    assert len(found) == 10, found
    assert {(path, line) for path, line, _ in found} == {(path, line) for path, line, _ in expected}
    for path, line, fragment in expected:
        messages = [m for p, n, m in found if (p, n) == (path, line)]
        assert any(fragment in m for m in messages), (path, messages)


def test_field_and_reference_mistakes_are_reported_together() -> None:
    """A rulebook with both kinds of mistake reports both, so one `rules check` run shows everything."""
    text = GOOD.replace("{id: ann, teams: [amer]}", "{id: ann, teams: [amer], capacity: -1}").replace(
        "assign: {team: amer}", "assign: {team: apac}"
    )
    assert [(p, n) for p, n, _ in located(text)] == [("reps[0].capacity", 3), ("routes[0].assign.team", 8)]


@pytest.mark.parametrize(
    ("text", "path", "line"),
    [
        (
            GOOD.replace(
                "  - {id: bob, teams: [amer]}\n", '  - id: bob\n    hours:\n      mon: "25:00-26:00"\n'
            ),
            "reps[1].hours.mon[0]",
            6,
        ),
        (
            GOOD.replace(
                "  - {id: us, when: {country: [US]}, assign: {team: amer}}\n",
                "  - id: us\n    assign: {team: amer}\n    when:\n      country: USA\n",
            ),
            "routes[0].when.country[0]",
            11,
        ),
    ],
)
def test_line_of_a_scalar_written_for_a_list(text: str, path: str, line: int) -> None:
    """A single value written for a list (`mon: "09:00-17:00"`, `country: US`) is reported at its own line."""
    assert [(p, n) for p, n, _ in located(text)] == [(path, line)]


@pytest.mark.parametrize(
    ("target", "path"),
    [
        ("{team: 'a b'}", "routes[0].assign.team"),
        ("{rep: 'a b'}", "routes[0].assign.rep"),
        ("{queue: 'a b'}", "routes[0].assign.queue"),
        ("{team: amer, queue: q}", "routes[0].assign.queue"),
    ],
)
def test_problem_inside_a_target_names_the_field(target: str, path: str) -> None:
    """A bad value inside `assign: {...}` is reported at `assign.<field>`, like any other field."""
    found = located(GOOD.replace("assign: {team: amer}", f"assign: {target}"))
    assert [(p, n) for p, n, _ in found] == [(path, 8)]


def test_an_invalid_only_route_is_not_also_reported_as_no_routes() -> None:
    """A rulebook whose routes all have mistakes reports those mistakes, not that there are no routes."""
    text = GOOD.replace("  - {id: rest, assign: {queue: triage}}\n", "").replace(
        "country: [US]", "country: [USA]"
    )
    assert [p for p, _, _ in located(text)] == ["routes[0].when.country[0]"]


NESTED_REFERENCES = [
    ("{territory: nope}", "routes[0].when.territory", "unknown territory 'nope'"),
    ("{territory: [amer-west, nope]}", "routes[0].when.territory", "unknown territory 'nope'"),
    ("{all: [{country: US}, {segment: nope}]}", "routes[0].when.all[1].segment", "unknown segment 'nope'"),
    (
        "{any: [{country: US}, {not: {territory: nope}}]}",
        "routes[0].when.any[1].not.territory",
        "unknown territory 'nope'",
    ),
    (
        "{not: {all: [{any: [{segment: nope}]}]}}",
        "routes[0].when.not.all[0].any[0].segment",
        "unknown segment 'nope'",
    ),
]


@pytest.mark.parametrize(("when", "path", "message"), NESTED_REFERENCES)
def test_unknown_references_in_nested_conditions(when: str, path: str, message: str) -> None:
    """Territory and segment names are checked at any depth of all/any/not, with the nested path."""
    text = GOOD.replace("when: {country: [US]}", f"when: {when}")
    text += "territories: [{id: amer-west, countries: [US]}]\n"
    assert located(text) == [(path, 8, message)]


def test_unknown_reference_inside_a_segment() -> None:
    """A segment's own condition may name only known segments and territories."""
    text = GOOD + "segments:\n  - id: big\n    when: {any: [{segment: huge}, {territory: nowhere}]}\n"
    assert located(text) == [
        ("segments[0].when.any[0].segment", 12, "unknown segment 'huge'"),
        ("segments[0].when.any[1].territory", 12, "unknown territory 'nowhere'"),
    ]


@pytest.mark.parametrize(
    "segments",
    [
        "  - {id: a, when: {segment: a}}\n",
        "  - {id: a, when: {segment: b}}\n  - {id: b, when: {not: {segment: a}}}\n",
    ],
)
def test_segment_cycles_are_errors(segments: str) -> None:
    """A segment that depends on itself, directly or through others, is a rulebook error."""
    found = located(GOOD + "segments:\n" + segments)
    assert any("cycle" in m for _, _, m in found), found


@pytest.mark.parametrize(
    ("union", "message"),
    [
        ("[{id: a, union: [b]}, {id: b, union: [a]}]", "territory union cycle: a -> b -> a"),
        ("[{id: a, union: [a]}]", "territory union cycle: a -> a"),
        ("[{id: a, union: [zz]}]", "territory 'a': unknown union member 'zz'"),
    ],
)
def test_territory_union_problems(union: str, message: str) -> None:
    """A union cycle or an unknown union member is a rulebook problem at `territories`."""
    assert located(GOOD + f"territories: {union}\n") == [("territories", 10, message)]


def test_team_without_members_is_an_error() -> None:
    """A team that no rep lists and that names no members cannot place a lead: it is a rulebook error."""
    text = GOOD.replace("  - {id: amer}\n", "  - {id: amer}\n  - {id: empty}\n")
    assert located(text) == [
        ("teams[1]", 7, "team 'empty' has no members (no rep lists it, no members given)"),
    ]


def test_team_without_members_is_a_validation_error_for_model_validate() -> None:
    """The same check applies when a rulebook is built from data rather than YAML text."""
    data = {
        "version": "t",
        "reps": [{"id": "a"}],
        "teams": [{"id": "t"}],
        "routes": [{"id": "all", "assign": {"team": "t"}}],
    }
    with pytest.raises(ValueError, match="team 't' has no members"):
        Rulebook.model_validate(data)


@pytest.mark.parametrize(
    ("text", "path", "line"),
    [
        (GOOD + "timezone: Mars/Base\n", "timezone", 10),
        (
            GOOD.replace("{id: ann, teams: [amer]}", "{id: ann, teams: [amer], timezone: EST5EDT2}"),
            "reps[0]",
            3,
        ),
        (
            GOOD.replace("{id: ann, teams: [amer]}", "{id: ann, teams: [amer], timezone: localtime}"),
            "reps[0]",
            3,
        ),
    ],
)
def test_bad_timezone(text: str, path: str, line: int) -> None:
    """An unknown IANA zone (or the host-dependent `localtime`), for the rulebook or a rep, is reported
    at its line."""
    [(found_path, found_line, message)] = located(text)
    assert found_path.startswith(path)
    assert found_line == line
    assert "timezone" in message


@pytest.mark.parametrize(
    ("text", "path"),
    [
        (GOOD + "timezone: Mars/Base\n", "timezone"),
        (
            GOOD.replace("{id: ann, teams: [amer]}", "{id: ann, teams: [amer], timezone: Mars/Base}"),
            "reps[0].timezone",
        ),
    ],
)
def test_bad_timezone_path_is_the_field(text: str, path: str) -> None:
    """The problem's path is the timezone field itself."""
    assert [p for p, _, _ in located(text)] == [path]


BAD_HOURS = [
    ("{mon: '17:00-09:00'}", "reps[0].hours.mon[0]", "start must be before end"),
    ("{mon: ['25:00-26:00']}", "reps[0].hours.mon[0]", "is not a time of day"),
    ("{mon: ['9-17']}", "reps[0].hours.mon[0]", "expected 'HH:MM-HH:MM'"),
    ("{mon: ['09:00-24:30']}", "reps[0].hours.mon[0]", "is not a time of day"),
    ("{monday: '09:00-17:00'}", "reps[0].hours", "unknown weekday 'monday'"),
    ("{mon: ['09:00-12:00', '11:00-13:00']}", "reps[0].hours", "overlaps"),
    ("[09:00-17:00]", "reps[0].hours", ""),
]


@pytest.mark.parametrize(("hours", "path", "message"), BAD_HOURS)
def test_bad_weekly_hours(hours: str, path: str, message: str) -> None:
    """Malformed rep hours are reported at the rep's hours, with the rep's line."""
    text = GOOD.replace("{id: ann, teams: [amer]}", f"{{id: ann, teams: [amer], hours: {hours}}}")
    [(found_path, line, found)] = located(text)
    assert (found_path, line) == (path, 3)
    assert message in found


def test_hours_with_no_open_time_never_crash_compilation() -> None:
    """Hours with every day closed are either a rulebook error or a rep who is never in hours."""
    text = GOOD.replace("{id: ann, teams: [amer]}", "{id: ann, teams: [amer], hours: {sat: null}}")
    try:
        book = parse_rulebook(text)
    except RulebookError as exc:
        problems = exc.problems
    else:
        problems = ()
    if problems:
        assert any(p.startswith("reps[0].hours") for p in problems)
        return
    compiled = compile_rulebook(book)
    assert verdict(compiled.reps["ann"], RepState(), datetime(2026, 3, 7, 12, tzinfo=UTC), frozenset()) == (
        "out_of_hours"
    )


def test_out_of_office_ending_before_it_starts_is_an_error() -> None:
    """An absence whose `to` is before its `from` (a typo) is reported, not silently ignored."""
    text = GOOD.replace(
        "{id: ann, teams: [amer]}",
        "{id: ann, teams: [amer], out_of_office: [{from: 2026-03-10, to: 2026-03-01}]}",
    )
    assert [p for p, _, _ in located(text)] == ["reps[0].out_of_office[0]"]


def test_duplicate_team_member_is_an_error() -> None:
    """Listing a rep twice in a team's members is a mistake (it would double their share)."""
    text = GOOD.replace("- {id: amer}", "- {id: amer, members: [ann, bob, ann]}")
    assert [p for p, _, _ in located(text)] == ["teams[0].members[2]"]


TARGETS = [
    ("assign: {}", "routes[0].assign", "a target needs one of: team, rep, owner, queue"),
    ("assign: {strategy: weighted}", "routes[0].assign", "a target needs one of: team, rep, owner, queue"),
    ("assign: triage", "routes[0].assign", "a target needs one of: team, rep, owner, queue"),
    ("assign: {owner: false}", "routes[0].assign.owner", "Input should be True"),
    (
        "assign: {team: amer}, fallback: {skills: [de]}",
        "routes[0].fallback",
        "needs one of: team, rep, owner, queue",
    ),
    ("assign: {team: amer, skills_from: email}", "routes[0].assign.skills_from", "unknown field 'email'"),
    ("assign: {team: amer, strategy: fastest}", "routes[0].assign.strategy", "'round_robin', 'weighted'"),
    ("assign: {team: nope}", "routes[0].assign.team", "unknown team 'nope'"),
    ("assign: {rep: nope}", "routes[0].assign.rep", "unknown rep 'nope'"),
    ("assign: {team: amer}, fallback: {team: nope}", "routes[0].fallback.team", "unknown team 'nope'"),
]


@pytest.mark.parametrize(("target", "path", "message"), TARGETS)
def test_bad_targets(target: str, path: str, message: str) -> None:
    """A target needs exactly one of team, rep, owner, queue, with known names and valid options."""
    [(found_path, line, found)] = located(GOOD.replace("assign: {team: amer}", target))
    assert (found_path, line) == (path, 8)
    assert message in found


def test_a_route_without_assign_is_an_error() -> None:
    """Every route must say where its leads go."""
    assert located(GOOD.replace(", assign: {team: amer}", "")) == [("routes[0].assign", 8, "Field required")]


def test_problem_lines_follow_the_yaml_layout() -> None:
    """The line is that of the offending key, whether the YAML is in block or flow style."""
    text = GOOD.replace(
        "  - {id: bob, teams: [amer]}\n", "  - id: bob\n    teams: [amer]\n    capacity: -1\n"
    )
    assert located(text) == [("reps[1].capacity", 6, "Input should be greater than or equal to 0")]
