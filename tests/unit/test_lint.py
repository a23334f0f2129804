"""Rulebook warnings: each fires on the mistake it names and stays quiet otherwise."""

from __future__ import annotations

from importlib import resources

import pytest

from rules.lint import always_holds, lines_of, lint
from rules.rulebook import Condition, parse_rulebook

SHIPPED = (resources.files("rules") / "examples" / "default.yaml").read_text(encoding="utf-8")

# A clean base: every kind of warning is off. Cases below change one thing.
BASE = """
version: "1"
reps:
  - {id: ann, teams: [amer]}
  - {id: bob, teams: [amer]}
  - {id: eve, teams: [emea]}
teams:
  - {id: amer}
  - {id: emea}
territories:
  - {id: us-west, subdivisions: [US-CA, US-WA]}
  - {id: na, countries: [US, CA], union: [us-west]}
  - {id: dach, countries: [DE, AT, CH]}
segments:
  - {id: big, when: {field: company.employees, gte: 1000}}
routes:
  - {id: big-na, when: {territory: na, segment: big}, assign: {team: amer}}
  - {id: europe, when: {territory: dach}, assign: {team: emea}}
  - {id: rest, assign: {team: amer}, fallback: {queue: triage}}
"""


def warnings(text: str) -> list[str]:
    return lint(parse_rulebook(text), lines_of(text))


def line(text: str, snippet: str) -> int:
    """The 1-based line of `text` holding `snippet`."""
    return next(n for n, content in enumerate(text.splitlines(), 1) if snippet in content)


def test_clean_rulebook_has_no_warnings() -> None:
    """The base rulebook of these tests is clean (so each case below tests one warning)."""
    assert warnings(BASE) == []


def test_shipped_rulebook_has_no_warnings() -> None:
    """rules/examples/default.yaml passes `rules check` without a warning."""
    assert warnings(SHIPPED) == []


# --- unreachable routes and the catch-all ---------------------------------------------


def test_route_after_a_queue_catch_all_is_unreachable() -> None:
    """A route after one that matches everything and ends at a queue can never be reached."""
    text = BASE.replace(
        "  - {id: rest, assign: {team: amer}, fallback: {queue: triage}}",
        "  - {id: rest, assign: {queue: triage}}\n"
        "  - {id: late, when: {country: [FR]}, assign: {team: emea}}",
    )
    found = warnings(text)
    assert len(found) == 1
    where = line(text, "{id: late")
    assert found[0].startswith(
        f"routes[3] (line {where}): route 'late' is unreachable: route 'rest' (routes[2])"
    )
    assert "queue 'triage'" in found[0]


def test_every_route_after_the_catch_all_is_reported() -> None:
    """Each route after a catch-all is reported, not only the first."""
    text = BASE.replace("{id: big-na, when: {territory: na, segment: big},", "{id: big-na,").replace(
        "assign: {team: amer}}\n  - {id: europe",
        "assign: {team: amer}, fallback: {queue: q}}\n  - {id: europe",
    )
    found = [w for w in warnings(text) if w.startswith("routes")]
    assert [w.split(" ", 1)[0] for w in found] == ["routes[1]", "routes[2]"]


def test_catch_all_with_queue_fallback_counts_as_always_placing() -> None:
    """`assign: team` with `fallback: queue` always places: what follows is unreachable."""
    text = BASE + "  - {id: never, when: {country: [FR]}, assign: {team: emea}}\n"
    found = warnings(text)
    assert len(found) == 1
    assert "route 'never' is unreachable" in found[0]


@pytest.mark.parametrize("target", ["{team: amer}", "{rep: ann}", "{owner: true}"])
def test_routes_after_a_catch_all_that_can_fall_through_stay_reachable(target: str) -> None:
    """After a catch-all whose team, rep or owner may have nobody available, later routes are
    fallthrough, not dead: no unreachable warning (but still no catch-all that always places)."""
    text = BASE.replace(
        "  - {id: rest, assign: {team: amer}, fallback: {queue: triage}}",
        f"  - {{id: first, assign: {target}}}\n  - {{id: rest, assign: {{queue: triage}}}}",
    )
    assert warnings(text) == []


def test_all_of_nothing_is_a_catch_all_too() -> None:
    """`when: {all: []}` holds for every lead, like an empty `when`."""
    assert always_holds(Condition.model_validate({"all": [{}, {"all": []}]}))
    assert not always_holds(Condition.model_validate({"any": [{}]}))
    assert not always_holds(Condition.model_validate({"country": ["US"]}))


def test_missing_catch_all_is_reported_with_the_default_queue() -> None:
    """Without a catch-all that always places, leftovers go to `default_queue`: say so."""
    text = BASE.replace(", fallback: {queue: triage}", "")
    found = warnings(text)
    assert len(found) == 1
    assert found[0].startswith(f"routes (line {line(text, 'routes:')}): no catch-all route")
    assert "'unrouted'" in found[0]


def test_conditional_queue_route_is_not_a_catch_all() -> None:
    """A queue route with conditions does not catch everything."""
    text = BASE.replace(
        "{id: rest, assign: {team: amer}, fallback: {queue: triage}}",
        "{id: rest, when: {country: [US]}, assign: {queue: triage}}",
    )
    assert [w.split(":", 1)[0] for w in warnings(text)] == [f"routes (line {line(text, 'routes:')})"]


# --- territories --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "shared"),
    [
        ("{id: germany, countries: [DE]}", "country DE"),
        ("{id: cal, subdivisions: [US-CA]}", "subdivision US-CA"),
    ],
)
def test_territories_sharing_a_country_or_subdivision_overlap(extra: str, shared: str) -> None:
    """Two territories naming the same country or subdivision overlap (route order decides)."""
    text = BASE.replace("segments:", f"  - {extra}\nsegments:")
    found = warnings(text)
    assert len(found) == 1
    assert found[0].startswith("territories[3].")
    assert shared in found[0]
    assert "(territories[" in found[0]


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [
        ('{country: US, prefixes: ["94"]}', '{country: US, prefixes: ["941"]}', True),
        ('{country: US, prefixes: ["94"]}', '{country: US, prefixes: ["95"]}', False),
        ('{country: US, from: "900", to: "961"}', '{country: US, prefixes: ["94"]}', True),
        ('{country: US, from: "900", to: "961"}', '{country: US, prefixes: ["9"]}', True),
        ('{country: US, from: "900", to: "961"}', '{country: US, prefixes: ["97"]}', False),
        ('{country: US, from: "900", to: "961"}', '{country: US, from: "950", to: "999"}', True),
        ('{country: US, from: "900", to: "961"}', '{country: US, from: "970", to: "994"}', False),
        ('{country: US, from: "900", to: "961"}', '{country: CA, from: "900", to: "961"}', False),
        ('{country: US, from: "9000", to: "9100"}', '{country: US, from: "91", to: "92"}', True),
    ],
)
def test_postal_rules_overlap_when_some_code_matches_both(a: str, b: str, overlap: bool) -> None:
    """Postal rules overlap when a code could match both: prefixes nest or ranges intersect."""
    text = BASE.replace(
        "segments:", f"  - {{id: pa, postal_codes: [{a}]}}\n  - {{id: pb, postal_codes: [{b}]}}\nsegments:"
    )
    found = warnings(text)
    assert bool(found) == overlap, found
    if overlap:
        assert found[0].startswith("territories[4].postal_codes[0]")


def test_union_members_do_not_overlap_their_union() -> None:
    """A union and its members share places by design: no warning, even through nesting."""
    text = BASE.replace(
        "{id: na, countries: [US, CA], union: [us-west]}",
        "{id: na, countries: [US, CA], subdivisions: [US-WA], union: [us-west]}",
    ).replace("segments:", "  - {id: world, countries: [DE], union: [na, dach]}\nsegments:")
    assert warnings(text) == []


def test_siblings_in_a_union_can_still_overlap() -> None:
    """Two members of one union sharing a country are reported: a lead is in both members."""
    text = BASE.replace(
        "segments:",
        "  - {id: germany, countries: [DE]}\n  - {id: europe, union: [dach, germany]}\nsegments:",
    )
    found = warnings(text)
    assert len(found) == 1
    assert "territory 'germany' overlaps 'dach'" in found[0]


# --- reps, teams, segments ----------------------------------------------------------


def test_rep_in_no_team_is_reported() -> None:
    """A rep no team has never gets a team's leads."""
    text = BASE.replace("  - {id: eve, teams: [emea]}", "  - {id: eve, teams: [emea]}\n  - {id: zed}")
    found = warnings(text)
    assert found == [
        f"reps[3] (line {line(text, '{id: zed}')}): rep 'zed' is in no team (no team lists it): "
        "no route or named account names it either, so it never gets a lead"
    ]


def test_rep_left_out_by_explicit_members_is_reported() -> None:
    """A rep listing a team whose explicit `members` leave it out is in no team."""
    text = BASE.replace("  - {id: emea}", "  - {id: emea, members: [ann]}")
    found = warnings(text)
    assert len(found) == 1
    assert "rep 'eve' is in no team (it lists emea but the team's `members` leave it out)" in found[0]


def test_rep_reached_only_by_a_rep_target_is_reported_as_such() -> None:
    """A teamless rep named by a `rep:` route is reachable, but has no team to fall back on."""
    text = BASE.replace(
        "  - {id: eve, teams: [emea]}", "  - {id: eve, teams: [emea]}\n  - {id: zed}"
    ).replace("routes:\n", "routes:\n  - {id: vip, when: {country: [JP]}, assign: {rep: zed}}\n")
    found = warnings(text)
    assert len(found) == 1
    assert "only `rep:` targets and named accounts reach it" in found[0]


def test_team_no_route_uses_is_reported() -> None:
    """A team that no route and no named account targets is dead weight."""
    text = BASE.replace("  - {id: emea}", "  - {id: emea}\n  - {id: apac}").replace(
        "  - {id: eve, teams: [emea]}", "  - {id: eve, teams: [emea]}\n  - {id: kai, teams: [apac]}"
    )
    found = warnings(text)
    assert len(found) == 1
    assert found[0].startswith(f"teams[2] (line {line(text, '{id: apac}')}): team 'apac' is not used")


@pytest.mark.parametrize(
    ("account", "route"),
    [
        ("{id: acme, domains: [acme.com], owner: {team: apac}}", ""),
        (
            "{id: acme, domains: [acme.com], owner: {rep: kai}}",
            "{id: na, when: {named_account: true}, assign: {owner: true}}",
        ),
    ],
    ids=["owned by the team", "team of an owner rep, with an owner route"],
)
def test_team_used_by_a_named_account_is_not_reported(account: str, route: str) -> None:
    """A team that owns a named account, or backs up an owner rep, is in use."""
    text = (
        BASE.replace("  - {id: emea}", "  - {id: emea}\n  - {id: apac}")
        .replace("  - {id: eve, teams: [emea]}", "  - {id: eve, teams: [emea]}\n  - {id: kai, teams: [apac]}")
        .replace(
            "routes:\n", f"named_accounts:\n  - {account}\nroutes:\n" + (f"  - {route}\n" if route else "")
        )
    )
    assert warnings(text) == []


def test_unused_segment_is_reported() -> None:
    """A segment no condition mentions is reported."""
    text = BASE.replace(
        "segments:\n", "segments:\n  - {id: tiny, when: {field: company.employees, lt: 10}}\n"
    )
    found = warnings(text)
    assert len(found) == 1
    assert found[0].startswith(f"segments[0] (line {line(text, '{id: tiny')}): segment 'tiny' is not used")


def test_segment_used_only_by_another_segment_counts_as_used() -> None:
    """A segment referred to by another segment's condition is in use."""
    text = BASE.replace(
        "  - {id: big, when: {field: company.employees, gte: 1000}}",
        "  - {id: huge, when: {field: company.employees, gte: 10000}}\n"
        "  - {id: big, when: {field: company.employees, gte: 1000, not: {segment: huge}}}",
    )
    assert warnings(text) == []


def test_lines_are_optional() -> None:
    """Without a line map, warnings carry only the path."""
    text = BASE.replace(", fallback: {queue: triage}", "")
    assert lint(parse_rulebook(text))[0].startswith("routes: no catch-all route")
