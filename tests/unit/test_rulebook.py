"""Loading the rulebook: the shipped one loads; every bad one fails with the path of the problem."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from rules.rulebook import QueueTarget, Rulebook, RulebookError, TeamTarget, parse_rulebook

SHIPPED = resources.files("rules") / "examples" / "default.yaml"

GOOD = """
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


def _problems(text: str) -> tuple[str, ...]:
    """The problems as `path: message`, without the `(line N)` the parser adds
    (line numbers are tested in test_rulebook_v2.py)."""
    with pytest.raises(RulebookError) as info:
        parse_rulebook(text, "test.yaml")
    return tuple(re.sub(r" \(line \d+\)", "", p) for p in info.value.problems)


def test_shipped_rulebook_loads() -> None:
    """rules/examples/default.yaml is a valid rulebook with a catch-all route last."""
    book = parse_rulebook(SHIPPED.read_text(encoding="utf-8"), str(SHIPPED))
    assert isinstance(book, Rulebook)
    assert book.version == "2026-11-23.1"
    assert book.default_queue == "unrouted"
    assert [r.id for r in book.routes][-1] == "everyone-else"
    assert book.routes[-1].when.country is None
    for team in book.teams:
        assert book.members(team.id), f"team {team.id} has no members"


def test_shipped_rulebook_references_resolve() -> None:
    """Every team a route of the shipped rulebook names exists and every member is a rep."""
    book = parse_rulebook(SHIPPED.read_text(encoding="utf-8"), str(SHIPPED))
    rep_ids = {r.id for r in book.reps}
    for route in book.routes:
        if isinstance(route.assign, TeamTarget):
            assert set(book.members(route.assign.team)) <= rep_ids


def test_good_rulebook_parses_targets() -> None:
    """A route's `assign` becomes a team target or a queue target."""
    book = parse_rulebook(GOOD)
    assert isinstance(book.routes[0].assign, TeamTarget)
    assert book.routes[0].when.country == ("US",)
    assert isinstance(book.routes[1].assign, QueueTarget)
    assert book.routes[1].assign.queue == "triage"


BAD = {
    "unknown team in a route": (
        GOOD.replace("assign: {team: amer}", "assign: {team: apac}"),
        "routes[0].assign.team",
        "unknown team 'apac'",
    ),
    "unknown rep in team members": (
        GOOD.replace("- {id: amer}", "- {id: amer, members: [ann, zed]}"),
        "teams[0].members[1]",
        "unknown rep 'zed'",
    ),
    "unknown team in rep.teams": (
        GOOD.replace("{id: bob, teams: [amer]}", "{id: bob, teams: [amer, emea]}"),
        "reps[1].teams[1]",
        "unknown team 'emea'",
    ),
    "duplicate rep id": (
        GOOD.replace("{id: bob, teams: [amer]}", "{id: ann, teams: [amer]}"),
        "reps[1].id",
        "duplicate id 'ann'",
    ),
    "duplicate team id": (
        GOOD.replace("- {id: amer}", "- {id: amer}\n  - {id: amer}"),
        "teams[1].id",
        "duplicate id 'amer'",
    ),
    "duplicate route id": (
        GOOD.replace("{id: rest,", "{id: us,"),
        "routes[1].id",
        "duplicate id 'us'",
    ),
    "misspelt key": (
        GOOD.replace("{id: ann, teams: [amer]}", "{id: ann, teams: [amer], capcity: 3}"),
        "reps[0].capcity",
        "Extra inputs are not permitted",
    ),
    "misspelt top-level key": (GOOD + "defualt_queue: q\n", "defualt_queue", "Extra inputs"),
    "negative capacity": (
        GOOD.replace("{id: bob, teams: [amer]}", "{id: bob, teams: [amer], capacity: -1}"),
        "reps[1].capacity",
        "greater than or equal to 0",
    ),
    "unknown status": (
        GOOD.replace("{id: bob, teams: [amer]}", "{id: bob, teams: [amer], status: vacation}"),
        "reps[1].status",
        "",
    ),
    "empty routes": (GOOD.split("routes:")[0] + "routes: []\n", "routes", "at least one route is needed"),
    "missing routes": (GOOD.split("routes:")[0], "routes", "Field required"),
    "missing version": (GOOD.replace('version: "1"', ""), "version", "Field required"),
    "non-mapping root": ("- version: 1\n", "(root)", "expected a mapping"),
    "scalar root": ("just text\n", "(root)", "expected a mapping"),
    "empty file": ("", "(root)", "expected a mapping"),
    "invalid YAML": (GOOD + "  - {id: broken\n", "(yaml)", ""),
    "bad country code": (GOOD.replace("country: [US]", "country: [USA]"), "routes[0].when.country[0]", ""),
    "numeric country code": (
        GOOD.replace("country: [US]", "country: ['12']"),
        "routes[0].when.country[0]",
        "",
    ),
    "route assigning to nothing": (
        GOOD.replace("assign: {queue: triage}", "assign: {}"),
        "routes[1].assign",
        "a target needs one of: team, rep, owner, queue",
    ),
    "bad rep id characters": (GOOD.replace("id: ann", "id: 'ann smith'"), "reps[0].id", "pattern"),
}


@pytest.mark.parametrize(("text", "path", "message"), BAD.values(), ids=list(BAD))
def test_bad_rulebook_names_the_path_of_the_problem(text: str, path: str, message: str) -> None:
    """A bad rulebook raises RulebookError whose problems include `path: message`."""
    problems = _problems(text)
    assert any(p.startswith(f"{path}: ") for p in problems), problems
    assert any(message in p for p in problems if p.startswith(f"{path}: ")), problems


@pytest.mark.parametrize(("text", "path", "message"), BAD.values(), ids=list(BAD))
def test_rulebook_error_message_names_the_source(text: str, path: str, message: str) -> None:
    """The error's text starts with the source name and carries every problem."""
    with pytest.raises(RulebookError) as info:
        parse_rulebook(text, "rules/custom.yaml")
    assert info.value.source == "rules/custom.yaml"
    assert str(info.value).startswith("rules/custom.yaml: invalid rulebook")
    for problem in info.value.problems:
        assert problem in str(info.value)


def test_field_errors_are_reported_together() -> None:
    """Independent field problems are all reported, one entry each, not just the first."""
    text = GOOD.replace("{id: ann, teams: [amer]}", "{id: ann, teams: [amer], capacity: -1}").replace(
        "country: [US]", "country: [USA]"
    )
    problems = _problems(text)
    assert len(problems) == 2
    assert problems[0].startswith("reps[0].capacity: ")
    assert problems[1].startswith("routes[0].when.country[0]: ")


def test_reference_errors_are_reported_one_entry_each() -> None:
    """Two broken references give two `path: message` problems, each on its own."""
    text = GOOD.replace("assign: {team: amer}", "assign: {team: apac}").replace(
        "{id: bob, teams: [amer]}", "{id: bob, teams: [emea]}"
    )
    problems = _problems(text)
    assert problems == (
        "reps[1].teams[0]: unknown team 'emea'",
        "routes[0].assign.team: unknown team 'apac'",
    )


def test_members_derive_from_reps_in_file_order() -> None:
    """Without `members`, a team's rotation is the reps listing it, in file order."""
    book = parse_rulebook(
        """
version: "1"
reps:
  - {id: zoe, teams: [a]}
  - {id: amy, teams: [b]}
  - {id: max, teams: [b, a]}
  - {id: bea, teams: [a]}
teams: [{id: a}, {id: b}]
routes: [{id: r, assign: {team: a}}]
"""
    )
    assert book.members("a") == ("zoe", "max", "bea")
    assert book.members("b") == ("amy", "max")


def test_a_team_without_members_is_an_error() -> None:
    """An empty pool could never take a lead: the rulebook says so instead of queueing silently."""
    problems = _problems(
        "version: 1\nreps: [{id: zoe, teams: [a]}]\nteams: [{id: a}, {id: empty}]\n"
        "routes: [{id: r, assign: {team: a}}]\n"
    )
    assert problems == ("teams[1]: team 'empty' has no members (no rep lists it, no members given)",)


def test_explicit_members_order_is_honoured() -> None:
    """An explicit `members` list is the rotation, in its own order, even over reps' teams."""
    book = parse_rulebook(
        """
version: "1"
reps:
  - {id: zoe, teams: [a]}
  - {id: max, teams: [a]}
  - {id: bea}
teams: [{id: a, members: [bea, zoe]}]
routes: [{id: r, assign: {team: a}}]
"""
    )
    assert book.members("a") == ("bea", "zoe")


def test_members_of_unknown_team_is_a_key_error() -> None:
    """Asking for the members of a team the rulebook lacks raises KeyError."""
    with pytest.raises(KeyError):
        parse_rulebook(GOOD).members("nope")


@pytest.mark.parametrize(("raw", "expected"), [("3", "3"), ('"3"', "3"), ("2026-11-23.1", "2026-11-23.1")])
def test_version_is_a_label(raw: str, expected: str) -> None:
    """`version: 3` (a YAML int) is accepted and kept as the string "3"."""
    book = parse_rulebook(GOOD.replace('version: "1"', f"version: {raw}"))
    assert book.version == expected


def test_defaults_apply() -> None:
    """Omitted fields take their documented defaults: capacity 10, available, queue `unrouted`."""
    book = parse_rulebook(GOOD)
    ann = book.rep("ann")
    assert (ann.capacity, ann.status) == (10, "available")
    assert book.default_queue == "unrouted"
    assert book.timezone == "UTC"


def test_country_codes_are_normalised_to_upper_case() -> None:
    """Route countries are compared upper-case, so `us` in a rulebook means US."""
    book = parse_rulebook(GOOD.replace("country: [US]", "country: [us, ' gb ']"))
    assert book.routes[0].when.country == ("US", "GB")


def test_rulebook_is_immutable() -> None:
    """A parsed rulebook cannot be changed in place (it is shared by every decision)."""
    book = parse_rulebook(GOOD)
    with pytest.raises(ValueError, match="frozen"):
        book.default_queue = "other"  # type: ignore[misc]
