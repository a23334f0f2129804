"""Route and segment conditions: field operators, all/any/not, shortcuts, reasons and validation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from rules.conditions import Condition, Facts
from rules.events import Lead

PROPERTY = settings(database=None, deadline=None, max_examples=60)


def lead(**fields: Any) -> Lead:
    return Lead.model_validate({"id": "lead-1", **fields})


def facts(
    subject: Lead,
    territories: tuple[str, ...] = (),
    named_account: str | None = None,
    segments: Mapping[str, bool] | None = None,
) -> Facts:
    segs = dict(segments or {})
    return Facts(subject, frozenset(territories), named_account, lambda s: segs.get(s, False))


def cond(**spec: Any) -> Condition:
    """A condition written as in YAML (`in`, `all`, `any`, `not` may be passed as in_, all_, ...)."""
    return Condition.model_validate({k.rstrip("_"): v for k, v in spec.items()})


def attr(value: Any) -> Lead:
    return lead(attributes={"x": value})


X = "attributes.x"

OPERATORS: list[tuple[str, str, dict[str, Any], Lead, bool]] = [
    # equals: strings ignore case; numbers compare as numbers; bools only equal bools.
    ("equals same string", "source", {"equals": "Software"}, lead(source="Software"), True),
    ("equals ignores case", "source", {"equals": "Software"}, lead(source="sOFTWARE"), True),
    ("equals other string", "source", {"equals": "Software"}, lead(source="Hardware"), False),
    ("equals is not a substring test", "source", {"equals": "soft"}, lead(source="software"), False),
    ("equals int", X, {"equals": 3}, attr(3), True),
    ("equals int against float", X, {"equals": 3}, attr(3.0), True),
    ("equals other int", X, {"equals": 3}, attr(4), False),
    ("number is not its string", X, {"equals": 3}, attr("3"), False),
    ("string is not its number", X, {"equals": "3"}, attr(3), False),
    ("True is not 1", X, {"equals": 1}, attr(True), False),
    ("1 is not True", X, {"equals": True}, attr(1), False),
    ("False is not 0", X, {"equals": 0}, attr(False), False),
    ("True equals True", X, {"equals": True}, attr(True), True),
    ("False equals False", X, {"equals": False}, attr(False), True),
    ("True is not 'true'", X, {"equals": "true"}, attr(True), False),
    # in / not_in: membership with the same comparison as equals.
    ("in one of", "source", {"in_": ["webinar", "ads"]}, lead(source="ADS"), True),
    ("in none of", "source", {"in_": ["webinar", "ads"]}, lead(source="seo"), False),
    ("in mixed types", X, {"in_": [1, "two"]}, attr("TWO"), True),
    ("in: True not matched by 1", X, {"in_": [1, 2]}, attr(True), False),
    ("in scalar shorthand", "source", {"in_": "ads"}, lead(source="Ads"), True),
    ("not_in one of", "source", {"not_in": ["webinar", "ads"]}, lead(source="Webinar"), False),
    ("not_in none of", "source", {"not_in": ["webinar", "ads"]}, lead(source="seo"), True),
    ("not_in: 1 does not exclude True", X, {"not_in": [1]}, attr(True), True),
    # numeric bounds: hold only for numbers (not strings, not bools), boundaries exact.
    ("gt above", "company.employees", {"gt": 100}, lead(company={"employees": 101}), True),
    ("gt at bound", "company.employees", {"gt": 100}, lead(company={"employees": 100}), False),
    ("gte at bound", "company.employees", {"gte": 100}, lead(company={"employees": 100}), True),
    ("gte below", "company.employees", {"gte": 100}, lead(company={"employees": 99}), False),
    ("lt below", "company.employees", {"lt": 100}, lead(company={"employees": 99}), True),
    ("lt at bound", "company.employees", {"lt": 100}, lead(company={"employees": 100}), False),
    ("lte at bound", "company.employees", {"lte": 100}, lead(company={"employees": 100}), True),
    ("lte above", "company.employees", {"lte": 100}, lead(company={"employees": 101}), False),
    ("float bound", "company.annual_revenue", {"gte": 0.5}, lead(company={"annual_revenue": 0.5}), True),
    ("range inside", "company.employees", {"gte": 200, "lt": 1000}, lead(company={"employees": 999}), True),
    ("range at top", "company.employees", {"gte": 200, "lt": 1000}, lead(company={"employees": 1000}), False),
    ("numeric string is not a number", X, {"gt": 1}, attr("500"), False),
    ("bool is not a number", X, {"gte": 0}, attr(True), False),
    ("string is not a number for lte", X, {"lte": 1_000_000}, attr("small"), False),
    # prefix: case-insensitive startswith, any of a list.
    ("prefix", "source", {"prefix": "web"}, lead(source="Webinar-2026"), True),
    ("prefix ignores case", "source", {"prefix": "WEB"}, lead(source="webinar"), True),
    ("prefix list, second", "source", {"prefix": ["ads", "web"]}, lead(source="webinar"), True),
    ("prefix list, none", "source", {"prefix": ["ads", "seo"]}, lead(source="webinar"), False),
    ("prefix is not contains", "source", {"prefix": "bin"}, lead(source="webinar"), False),
    ("prefix on a number reads its digits", X, {"prefix": "94"}, attr(94107), True),
    # exists: present and non-empty.
    ("exists true, present", "priority", {"exists": True}, lead(priority="high"), True),
    ("exists false, present", "priority", {"exists": False}, lead(priority="high"), False),
    ("exists true, zero is present", X, {"exists": True}, attr(0), True),
    ("exists true, False is present", X, {"exists": True}, attr(False), True),
    # regex: a search (not a full match), case-sensitive as written.
    ("regex search", "source", {"regex": "in.r"}, lead(source="webinar"), True),
    ("regex anchored", "source", {"regex": "^web"}, lead(source="my-webinar"), False),
    ("regex is case-sensitive", "source", {"regex": "^web"}, lead(source="Webinar"), False),
    ("regex inline ignore-case", "source", {"regex": "(?i)^web"}, lead(source="Webinar"), True),
    ("regex on a number's text", X, {"regex": r"^\d{3}$"}, attr(123), True),
    # several operators on one field must all hold.
    ("in and not_in", X, {"in_": ["a", "b"], "not_in": ["b"]}, attr("b"), False),
    ("prefix and regex", "source", {"prefix": "web", "regex": "2026$"}, lead(source="web-2026"), True),
]


@pytest.mark.parametrize(
    ("field", "ops", "subject", "expected"),
    [row[1:] for row in OPERATORS],
    ids=[row[0] for row in OPERATORS],
)
def test_field_operators(field: str, ops: dict[str, Any], subject: Lead, expected: bool) -> None:
    """Each operator compares the named field as documented (case, types, bounds, search)."""
    assert cond(field=field, **ops).holds(facts(subject)) is expected


MISSING = {
    "field absent": lead(),
    "empty string": attr(""),
    "attribute None": attr(None),
}
MISSING_OPS: list[tuple[dict[str, Any], bool]] = [
    ({"equals": "x"}, False),
    ({"equals": False}, False),
    ({"in_": ["x", ""]}, False),
    ({"not_in": ["x"]}, True),
    ({"not_in": [""]}, True),
    ({"gt": -1}, False),
    ({"gte": 0}, False),
    ({"lt": 1}, False),
    ({"lte": 0}, False),
    ({"prefix": ""}, False),
    ({"exists": True}, False),
    ({"exists": False}, True),
    ({"regex": ".*"}, False),
    ({"regex": "^$"}, False),
    ({"not_in": ["x"], "exists": True}, False),
    ({"not_in": ["x"], "exists": False}, True),
    ({"not_in": ["x"], "equals": "y"}, False),
]


@pytest.mark.parametrize("subject", MISSING.values(), ids=list(MISSING))
@pytest.mark.parametrize(("ops", "expected"), MISSING_OPS, ids=[str(ops) for ops, _ in MISSING_OPS])
def test_missing_value_satisfies_only_not_in_and_exists_false(
    subject: Lead, ops: dict[str, Any], expected: bool
) -> None:
    """An absent, None or empty field satisfies `not_in` and `exists: false` and nothing else."""
    assert cond(field=X, **ops).holds(facts(subject)) is expected


def test_missing_company_is_a_missing_field() -> None:
    """`company.*` on a lead without a company reads as missing, not as an error."""
    subject = lead()
    assert cond(field="company.employees", exists=False).holds(facts(subject))
    assert not cond(field="company.employees", gte=0).holds(facts(subject))
    assert cond(field="company.industry", not_in=["retail"]).holds(facts(subject))


@pytest.mark.parametrize(
    ("email", "expected"),
    [("ann@Sales.Example.COM", "sales.example.com"), ("no-at-sign", None), ("a@b@corp.io", "corp.io")],
)
def test_email_domain_field(email: str, expected: str | None) -> None:
    """`email_domain` is the lower-cased part after the last `@`; absent without one."""
    subject = lead(email=email)
    if expected is None:
        assert cond(field="email_domain", exists=False).holds(facts(subject))
    else:
        assert cond(field="email_domain", equals=expected).holds(facts(subject))
        assert cond(field="email_domain", regex=f"^{expected}$").holds(facts(subject))


ASCII = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", min_size=1)
SCALARS = st.one_of(
    ASCII,
    st.integers(-1000, 1000),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.booleans(),
)


@PROPERTY
@given(text=ASCII)
def test_string_comparisons_ignore_case(text: str) -> None:
    """equals, in, not_in and prefix give the same answer whatever the case of either side."""
    subject = attr(text)
    for written in (text.upper(), text.lower(), text.swapcase()):
        assert cond(field=X, equals=written).holds(facts(subject))
        assert cond(field=X, in_=[written]).holds(facts(subject))
        assert not cond(field=X, not_in=[written]).holds(facts(subject))
        assert cond(field=X, prefix=written[: max(1, len(written) // 2)]).holds(facts(subject))


@PROPERTY
@given(value=SCALARS, options=st.lists(SCALARS, min_size=1, max_size=4))
def test_in_and_not_in_are_complements_for_present_values(value: Any, options: list[Any]) -> None:
    """For a present value, exactly one of `in` and `not_in` holds, and `in` is `equals` any option."""
    subject = facts(attr(value))
    inside = cond(field=X, in_=options).holds(subject)
    assert inside is not cond(field=X, not_in=options).holds(subject)
    assert inside is any(cond(field=X, equals=o).holds(subject) for o in options)


@PROPERTY
@given(value=st.one_of(st.integers(-50, 50), st.floats(-50, 50, allow_nan=False)), bound=st.integers(-50, 50))
def test_numeric_bounds_agree_with_python(value: float, bound: int) -> None:
    """gt/gte/lt/lte on a number are Python's comparisons against the bound."""
    subject = facts(attr(value))
    assert cond(field=X, gt=bound).holds(subject) is (value > bound)
    assert cond(field=X, gte=bound).holds(subject) is (value >= bound)
    assert cond(field=X, lt=bound).holds(subject) is (value < bound)
    assert cond(field=X, lte=bound).holds(subject) is (value <= bound)


@PROPERTY
@given(value=st.booleans(), other=st.integers(-2, 2))
def test_bools_and_numbers_never_compare_equal(value: bool, other: int) -> None:
    """A bool never equals a number and a number never equals a bool, in either direction."""
    assert not cond(field=X, equals=other).holds(facts(attr(value)))
    assert not cond(field=X, equals=value).holds(facts(attr(other)))


# A tree of all/any/not over leaves `attributes.kN equals true`, evaluated both ways.
LEAF_NAMES = ("k0", "k1", "k2", "k3")
Tree = Any
TREES: st.SearchStrategy[Tree] = st.recursive(
    st.sampled_from(LEAF_NAMES),
    lambda inner: st.one_of(
        st.tuples(st.just("all"), st.lists(inner, min_size=1, max_size=3)),
        st.tuples(st.just("any"), st.lists(inner, min_size=1, max_size=3)),
        st.tuples(st.just("not"), inner),
    ),
    max_leaves=8,
)


def _spec(tree: Tree) -> dict[str, Any]:
    if isinstance(tree, str):
        return {"field": f"attributes.{tree}", "equals": True}
    kind, body = tree
    return {kind: _spec(body) if kind == "not" else [_spec(t) for t in body]}


def _truth(tree: Tree, values: Mapping[str, bool]) -> bool:
    if isinstance(tree, str):
        return values[tree]
    kind, body = tree
    if kind == "not":
        return not _truth(body, values)
    results = [_truth(t, values) for t in body]
    return all(results) if kind == "all" else any(results)


@PROPERTY
@given(tree=TREES, values=st.fixed_dictionaries({k: st.booleans() for k in LEAF_NAMES}))
def test_all_any_not_nest_like_boolean_logic(tree: Tree, values: dict[str, bool]) -> None:
    """all is and, any is or, not is negation, at any depth; first_failure is None iff it holds."""
    condition = Condition.model_validate(_spec(tree))
    subject = facts(lead(attributes=values))
    assert condition.holds(subject) is _truth(tree, values)
    assert (condition.first_failure(subject) is None) is _truth(tree, values)


def test_empty_condition_always_holds() -> None:
    """A route without `when` (an empty condition) matches every lead."""
    assert Condition().holds(facts(lead()))
    assert Condition.model_validate({}).first_failure(facts(lead(country="JP"))) is None


def test_keys_of_one_condition_must_all_hold() -> None:
    """Keys side by side in one mapping are a conjunction (territory and field and not ...)."""
    condition = cond(territory="dach", field="source", equals="ads", not_={"country": "CH"})
    assert condition.holds(facts(lead(country="DE", source="ads"), territories=("dach",)))
    assert not condition.holds(facts(lead(country="CH", source="ads"), territories=("dach",)))
    assert not condition.holds(facts(lead(country="DE", source="seo"), territories=("dach",)))
    assert not condition.holds(facts(lead(country="DE", source="ads")))


REASONS: list[tuple[str, dict[str, Any], Facts, str | None]] = [
    ("territory", {"territory": ["dach", "nordics"]}, facts(lead()), "not in territory dach/nordics"),
    ("territory holds", {"territory": "dach"}, facts(lead(), territories=("dach",)), None),
    ("segment", {"segment": ["big", "huge"]}, facts(lead()), "not in segment big/huge"),
    ("segment holds", {"segment": ["big", "huge"]}, facts(lead(), segments={"huge": True}), None),
    ("named account wanted", {"named_account": True}, facts(lead()), "not a named account"),
    (
        "named account unwanted",
        {"named_account": False},
        facts(lead(), named_account="acme"),
        "a named account",
    ),
    ("named account holds", {"named_account": True}, facts(lead(), named_account="acme"), None),
    ("country", {"country": ["US", "CA"]}, facts(lead(country="MX")), "country MX not in US/CA"),
    ("country missing", {"country": "US"}, facts(lead()), "country missing not in US"),
    ("country lower-case lead", {"country": "US"}, facts(lead(country="us")), None),
    ("field", {"field": "source", "equals": "ads"}, facts(lead(source="seo")), "source does not match"),
    (
        "all: the first failing part",
        {"all": [{"country": "US"}, {"field": "source", "exists": True}, {"territory": "x"}]},
        facts(lead(country="US")),
        "source does not match",
    ),
    (
        "any",
        {"any": [{"country": "US"}, {"country": "CA"}]},
        facts(lead(country="MX")),
        "none of `any` matched",
    ),
    ("not", {"not": {"country": "US"}}, facts(lead(country="US")), "`not` clause matched"),
    (
        "territory is checked before field",
        {"territory": "dach", "field": "source", "exists": True},
        facts(lead()),
        "not in territory dach",
    ),
]


@pytest.mark.parametrize(
    ("spec", "subject", "reason"), [row[1:] for row in REASONS], ids=[row[0] for row in REASONS]
)
def test_first_failure_names_the_reason(spec: dict[str, Any], subject: Facts, reason: str | None) -> None:
    """first_failure is None when the condition holds, else a short reason naming what failed."""
    condition = Condition.model_validate(spec)
    assert condition.first_failure(subject) == reason
    assert condition.holds(subject) is (reason is None)


def test_reasons_never_carry_field_values() -> None:
    """A failing field names the field, never the lead's value (which may be personal data)."""
    subject = facts(lead(email="jane.doe@corp.example", attributes={"note": "Jane Doe, +1 555 0100"}))
    for spec in (
        {"field": "email_domain", "equals": "other.example"},
        {"field": "attributes.note", "regex": "^nothing$"},
        {"all": [{"field": "attributes.note", "in": ["a"]}]},
    ):
        reason = Condition.model_validate(spec).first_failure(subject)
        assert reason is not None
        assert "jane" not in reason.lower()
        assert "555" not in reason
        assert "corp.example" not in reason


SHORTHANDS: list[tuple[dict[str, Any], str, tuple[Any, ...]]] = [
    ({"territory": "dach"}, "territory", ("dach",)),
    ({"segment": "big"}, "segment", ("big",)),
    ({"country": " us "}, "country", ("US",)),
    ({"country": ["de", "At"]}, "country", ("DE", "AT")),
    ({"field": X, "in": 5}, "in_", (5,)),
    ({"field": X, "not_in": "a"}, "not_in", ("a",)),
    ({"field": X, "prefix": "94"}, "prefix", ("94",)),
]


@pytest.mark.parametrize(("spec", "attr_name", "expected"), SHORTHANDS)
def test_single_values_stand_for_one_item_lists(
    spec: dict[str, Any], attr_name: str, expected: tuple[Any, ...]
) -> None:
    """`territory: dach` means `[dach]`, and countries are upper-cased and trimmed."""
    assert getattr(Condition.model_validate(spec), attr_name) == expected


INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("operator without field", {"equals": 3}, "operator 'equals' needs a `field`"),
    ("in without field", {"in": ["a"]}, "operator 'in' needs a `field`"),
    ("exists without field", {"exists": False}, "operator 'exists' needs a `field`"),
    ("field without operator", {"field": "source"}, "field 'source' needs an operator"),
    ("bad regex", {"field": "source", "regex": "(unclosed"}, "invalid regex"),
    ("email is not routable", {"field": "email", "exists": True}, "unknown field 'email'"),
    ("phone is not routable", {"field": "phone", "exists": True}, "unknown field 'phone'"),
    ("first_name is not routable", {"field": "first_name", "exists": True}, "unknown field 'first_name'"),
    ("last_name is not routable", {"field": "last_name", "exists": True}, "unknown field 'last_name'"),
    ("company.phone unknown", {"field": "company.phone", "exists": True}, "unknown field 'company.phone'"),
    ("empty attribute name", {"field": "attributes.", "exists": True}, "unknown field 'attributes.'"),
    ("empty in list", {"field": "source", "in": []}, "at least 1 item"),
    ("empty prefix list", {"field": "source", "prefix": []}, "at least 1 item"),
    ("misspelt operator", {"field": "source", "equal": "x"}, "Extra inputs are not permitted"),
    ("bad country", {"country": "USA"}, "pattern"),
    ("non-numeric bound", {"field": "company.employees", "gte": "lots"}, "valid number"),
    ("bad territory name", {"territory": "north america"}, "pattern"),
    ("nested problem", {"any": [{"not": {"field": "email", "exists": True}}]}, "unknown field 'email'"),
]


@pytest.mark.parametrize(("spec", "message"), [r[1:] for r in INVALID], ids=[r[0] for r in INVALID])
def test_invalid_conditions_are_rejected(spec: dict[str, Any], message: str) -> None:
    """A malformed condition is a validation error whose message says what is wrong."""
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace("`", ".")):
        Condition.model_validate(spec)


@pytest.mark.parametrize(
    "field",
    [
        "attributes.x",
        "attributes.language",
        "attributes.account.id",
        "email_domain",
        "company.employees",
        "company.domain",
        "country",
        "region",
        "postal_code",
        "source",
        "product",
        "priority",
    ],
)
def test_routable_fields_are_accepted(field: str) -> None:
    """Every routable top-level/company field, `email_domain` and any `attributes.<name>` validate."""
    assert Condition.model_validate({"field": field, "exists": True}).field == field
