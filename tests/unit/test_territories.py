"""Territories: countries, ISO 3166-2 subdivisions, postal prefixes and ranges, nested unions."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from rules.events import Lead
from rules.territories import PostalRule, Territory, TerritoryIndex, expand_unions, region_code

PROPERTY = settings(database=None, deadline=None, max_examples=80)


def lead(**fields: Any) -> Lead:
    return Lead.model_validate({"id": "lead-1", **fields})


def territories(*specs: dict[str, Any]) -> tuple[Territory, ...]:
    return tuple(Territory.model_validate(s) for s in specs)


WORLD = territories(
    {"id": "dach", "countries": ["DE", "AT", "CH"]},
    {
        "id": "us-west",
        "subdivisions": ["US-CA", "us-or", "US-WA"],
        "postal_codes": [
            {"country": "US", "prefixes": ["97", "98"]},
            {"country": "US", "from": "900", "to": "961"},
        ],
    },
    {"id": "us-east", "subdivisions": ["US-NY"], "postal_codes": [{"country": "US", "prefixes": ["100"]}]},
    {"id": "amer", "union": ["us-west", "us-east"], "countries": ["CA", "MX"]},
    {"id": "uk-london", "postal_codes": [{"country": "GB", "prefixes": ["EC", "WC", "SW1"]}]},
    {"id": "global", "union": ["amer", "dach"]},
    {"id": "dach-only", "union": ["dach"]},
)
INDEX = TerritoryIndex.build(WORLD)
US_WEST = {"us-west", "amer", "global"}

MEMBERSHIP: list[tuple[str, dict[str, Any], set[str]]] = [
    ("country", {"country": "DE"}, {"dach", "global", "dach-only"}),
    ("lower-case country", {"country": "at"}, {"dach", "global", "dach-only"}),
    ("country of a union", {"country": "MX"}, {"amer", "global"}),
    ("country listed nowhere", {"country": "JP"}, set()),
    ("no country, no region", {}, set()),
    ("US alone is no subdivision", {"country": "US"}, set()),
    ("region code with country", {"country": "US", "region": "CA"}, US_WEST),
    ("full ISO region as-is", {"country": "US", "region": "US-CA"}, US_WEST),
    ("full ISO region, lower-case", {"country": "US", "region": " us-or "}, US_WEST),
    ("full ISO region without country", {"region": "US-WA"}, US_WEST),
    ("short region needs a country", {"region": "CA"}, set()),
    ("CA region of Canada is CA-CA", {"country": "CA", "region": "CA"}, {"amer", "global"}),
    ("other state", {"country": "US", "region": "TX"}, set()),
    ("east coast state", {"country": "US", "region": "NY"}, {"us-east", "amer", "global"}),
    ("ZIP in range", {"country": "US", "postal_code": "90210"}, US_WEST),
    ("ZIP at range start", {"country": "US", "postal_code": "90000"}, US_WEST),
    ("ZIP at range end", {"country": "US", "postal_code": "96199"}, US_WEST),
    ("ZIP past range end", {"country": "US", "postal_code": "96200"}, set()),
    ("ZIP before range", {"country": "US", "postal_code": "89999"}, set()),
    ("ZIP+4 in range", {"country": "US", "postal_code": "90210-1234"}, US_WEST),
    ("4 digits: first 3 in range", {"country": "US", "postal_code": "9021"}, US_WEST),
    ("2 digits: too short for a 3-digit range", {"country": "US", "postal_code": "90"}, set()),
    ("ZIP by prefix", {"country": "US", "postal_code": "97201"}, US_WEST),
    ("second prefix", {"country": "US", "postal_code": "98101"}, US_WEST),
    ("3-digit prefix", {"country": "US", "postal_code": "10001"}, {"us-east", "amer", "global"}),
    ("prefix needs the rule's country", {"country": "CA", "postal_code": "97201"}, {"amer", "global"}),
    ("postal code without country", {"postal_code": "90210"}, set()),
    ("UK postcode, spaces ignored", {"country": "GB", "postal_code": "sw1a 1aa"}, {"uk-london"}),
    ("UK postcode, other area", {"country": "GB", "postal_code": "M1 1AE"}, set()),
    ("region and postal agree", {"country": "US", "region": "CA", "postal_code": "94105"}, US_WEST),
    (
        "region and postal in different territories",
        {"country": "US", "region": "NY", "postal_code": "94105"},
        {"us-west", "us-east", "amer", "global"},
    ),
]


@pytest.mark.parametrize(
    ("fields", "expected"), [row[1:] for row in MEMBERSHIP], ids=[row[0] for row in MEMBERSHIP]
)
def test_territories_of_a_lead(fields: dict[str, Any], expected: set[str]) -> None:
    """A lead is in each territory its country, subdivision or postal code matches, and in their unions."""
    assert INDEX.of(lead(**fields)) == frozenset(expected)


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"country": "US", "region": "CA"}, "US-CA"),
        ({"country": "US", "region": " ca "}, "US-CA"),
        ({"country": "DE", "region": "DE-BY"}, "DE-BY"),
        ({"country": "DE", "region": "us-ca"}, "US-CA"),
        ({"region": "BY"}, None),
        ({"country": "US"}, None),
        ({"country": "US", "region": ""}, None),
    ],
)
def test_region_code(fields: dict[str, Any], code: str | None) -> None:
    """A short region is prefixed with the lead's country; a code with a dash is taken as written."""
    assert region_code(lead(**fields)) == code


@PROPERTY
@given(zip_code=st.integers(0, 99_999).map("{:05d}".format))
def test_zip_range_compares_the_first_three_digits(zip_code: str) -> None:
    """A `from: "900"`, `to: "961"` rule holds exactly for ZIPs whose first three digits are 900..961."""
    rule = PostalRule.model_validate({"country": "US", "from": "900", "to": "961"})
    assert rule.matches(zip_code) is (900 <= int(zip_code[:3]) <= 961)


@PROPERTY
@given(
    code=st.text(alphabet="0123456789ABCXYZ", min_size=0, max_size=8),
    prefix=st.text(alphabet="0123456789ABCXYZ", min_size=1, max_size=4),
    noise=st.sampled_from(["", " ", "-"]),
)
def test_postal_prefix_is_startswith_ignoring_case_and_separators(code: str, prefix: str, noise: str) -> None:
    """A prefix rule holds iff the code, upper-cased and without spaces or dashes, starts with it."""
    rule = PostalRule.model_validate({"country": "GB", "prefixes": [prefix.lower()]})
    written = noise.join(code.lower())
    assert rule.matches(written) is code.startswith(prefix)


@PROPERTY
@given(subject=st.fixed_dictionaries(
    {},
    optional={
        "country": st.sampled_from(["US", "CA", "DE", "GB", "MX", "JP"]),
        "region": st.sampled_from(["CA", "NY", "US-OR", "TX", "DE-BY"]),
        "postal_code": st.sampled_from(["90210", "97201", "10001", "96200", "SW1A 1AA", "9"]),
    },
))  # fmt: skip
def test_membership_is_closed_under_unions(subject: dict[str, Any]) -> None:
    """If a lead is in a territory, it is in every union that contains it, however deep."""
    found = INDEX.of(lead(**subject))
    expanded = expand_unions(WORLD)
    for union, members in expanded.items():
        if found & (members - {union}):
            assert union in found


def test_unions_expand_through_nesting() -> None:
    """expand_unions maps each territory to itself plus every territory inside it, transitively."""
    assert expand_unions(WORLD) == {
        "dach": {"dach"},
        "us-west": {"us-west"},
        "us-east": {"us-east"},
        "amer": {"amer", "us-west", "us-east"},
        "uk-london": {"uk-london"},
        "global": {"global", "amer", "us-west", "us-east", "dach"},
        "dach-only": {"dach-only", "dach"},
    }


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        ([{"id": "a", "union": ["a"]}], "territory union cycle: a -> a"),
        ([{"id": "a", "union": ["b"]}, {"id": "b", "union": ["a"]}], "territory union cycle: a -> b -> a"),
        (
            [
                {"id": "a", "countries": ["DE"], "union": ["b"]},
                {"id": "b", "union": ["c"]},
                {"id": "c", "union": ["a"]},
            ],
            "territory union cycle: a -> b -> c -> a",
        ),
        ([{"id": "a", "union": ["ghost"]}], "territory 'a': unknown union member 'ghost'"),
        (
            [{"id": "a", "union": ["b"]}, {"id": "b", "union": ["nope"]}],
            "territory 'b': unknown union member 'nope'",
        ),
    ],
)
def test_union_cycles_and_unknown_members_are_errors(specs: list[dict[str, Any]], message: str) -> None:
    """A union that contains itself (at any depth) or names a missing territory raises ValueError."""
    with pytest.raises(ValueError, match=message) as info:
        expand_unions(territories(*specs))
    assert str(info.value) == message
    with pytest.raises(ValueError, match=message):
        TerritoryIndex.build(territories(*specs))


def test_diamond_union_is_not_a_cycle() -> None:
    """Two unions sharing a member (a diamond) are fine: sharing is not a cycle."""
    book = territories(
        {"id": "base", "countries": ["FR"]},
        {"id": "left", "union": ["base"]},
        {"id": "right", "union": ["base"]},
        {"id": "top", "union": ["left", "right"]},
    )
    assert expand_unions(book)["top"] == {"top", "left", "right", "base"}
    assert TerritoryIndex.build(book).of(lead(country="FR")) == {"base", "left", "right", "top"}


INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("empty territory", {"id": "t"}, "needs countries, subdivisions, postal_codes or union"),
    ("three-letter country", {"id": "t", "countries": ["USA"]}, "pattern"),
    ("subdivision without dash", {"id": "t", "subdivisions": ["USCA"]}, "pattern"),
    ("subdivision too long", {"id": "t", "subdivisions": ["US-CALI"]}, "pattern"),
    (
        "range without to",
        {"id": "t", "postal_codes": [{"country": "US", "from": "900"}]},
        "both `from` and `to`",
    ),
    (
        "range without from",
        {"id": "t", "postal_codes": [{"country": "US", "to": "900"}]},
        "both `from` and `to`",
    ),
    (
        "range of unequal lengths",
        {"id": "t", "postal_codes": [{"country": "US", "from": "900", "to": "9619"}]},
        "same length",
    ),
    (
        "range backwards",
        {"id": "t", "postal_codes": [{"country": "US", "from": "961", "to": "900"}]},
        "`from` is after `to`",
    ),
    (
        "rule with nothing",
        {"id": "t", "postal_codes": [{"country": "US"}]},
        "give `prefixes` or a `from`/`to`",
    ),
    (
        "unquoted YAML number is not a postal code",
        {"id": "t", "postal_codes": [{"country": "US", "from": 900, "to": 961}]},
        "valid string",
    ),
    (
        "postal prefix with punctuation",
        {"id": "t", "postal_codes": [{"country": "US", "prefixes": ["90-"]}]},
        "pattern",
    ),
    ("misspelt key", {"id": "t", "countrys": ["US"]}, "Extra inputs"),
]


@pytest.mark.parametrize(("spec", "message"), [r[1:] for r in INVALID], ids=[r[0] for r in INVALID])
def test_invalid_territories_are_rejected(spec: dict[str, Any], message: str) -> None:
    """A malformed territory or postal rule is a validation error that says what is wrong."""
    with pytest.raises(ValidationError) as info:
        Territory.model_validate(spec)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("low", "high"),
    [
        ("K0A", "M9Z"),
        ("K0A", "m9z"),
        pytest.param("k0a", "M9Z"),
        ("k0a", "m9z"),
    ],
)
def test_postal_range_bounds_ignore_case(low: str, high: str) -> None:
    """A Canadian range K0A-M9Z may be written in any case and then holds for L5N 1A1, not N2L 3G1."""
    rule = PostalRule.model_validate({"country": "CA", "from": low, "to": high})
    assert rule.matches("L5N 1A1")
    assert not rule.matches("N2L 3G1")


def test_postal_range_backwards_ignoring_case_is_rejected() -> None:
    """`from: M0A, to: a9z` is backwards once case is ignored (M > A), so it is an error, not a dead rule."""
    with pytest.raises(ValidationError, match="`from` is after `to`"):
        PostalRule.model_validate({"country": "CA", "from": "M0A", "to": "a9z"})
