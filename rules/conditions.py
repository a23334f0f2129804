"""Conditions of routes and segments: field predicates combined with all/any/not.

A condition is a mapping whose keys all must hold (an empty one always holds):

    {territory: dach, segment: enterprise}
    {field: company.employees, gte: 200, lt: 1000}
    {any: [{field: source, in: [webinar, ads]}, {not: {field: priority, exists: true}}]}

String comparisons (`equals`, `in`, `not_in`, `prefix`) ignore case (sales-ops
write "Software", producers send "software"); `regex` is case-sensitive unless it
says `(?i)`. Numeric operators only hold for numbers; a missing field satisfies
only `not_in` and `exists: false`.

`compile_condition` turns a condition into `Checks`: one small function per key,
in the order their failures are reported, with the operands prepared (strings
case-folded, regexes compiled, field paths resolved). `Condition.holds` and
`first_failure` compile on every call, which suits a one-off question; a path that
asks for every lead compiles once, as `compile_rulebook` does.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from rules.events import AttributeValue, CountryCode, Lead
from rules.fields import check_field_path, field_getter

Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Scalar = str | int | float | bool


def _as_tuple(value: Any) -> Any:
    """Let people write `territory: dach` for `territory: [dach]`."""
    return (value,) if isinstance(value, str | int | float) and not isinstance(value, bool) else value


Names = Annotated[tuple[Name, ...], BeforeValidator(_as_tuple)]
Scalars = Annotated[tuple[Scalar, ...], BeforeValidator(_as_tuple)]
Strings = Annotated[tuple[str, ...], BeforeValidator(_as_tuple)]
_OPERATORS = ("equals", "in_", "not_in", "gt", "gte", "lt", "lte", "prefix", "exists", "regex")
_BOUNDS = (("gt", operator.gt), ("gte", operator.ge), ("lt", operator.lt), ("lte", operator.le))


@dataclass(frozen=True, slots=True)
class Facts:
    """What conditions may ask about a lead, computed once per decision."""

    lead: Lead
    territories: frozenset[str]
    named_account: str | None
    segment: Callable[[str], bool]


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    all_: tuple[Condition, ...] | None = Field(default=None, alias="all")
    any_: tuple[Condition, ...] | None = Field(default=None, alias="any")
    not_: Condition | None = Field(default=None, alias="not")
    territory: Names | None = None
    segment: Names | None = None
    named_account: bool | None = None
    country: Annotated[tuple[CountryCode, ...], BeforeValidator(_as_tuple)] | None = None
    field: str | None = None
    equals: Scalar | None = None
    in_: Scalars | None = Field(default=None, alias="in", min_length=1)
    not_in: Scalars | None = Field(default=None, min_length=1)
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None
    prefix: Strings | None = Field(default=None, min_length=1)
    exists: bool | None = None
    regex: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Condition:
        ops = [op.rstrip("_") for op in _OPERATORS if getattr(self, op) is not None]
        if ops and self.field is None:
            raise ValueError(f"operator {ops[0]!r} needs a `field`")
        if self.field is not None:
            check_field_path(self.field)
            if not ops:
                raise ValueError(
                    f"field {self.field!r} needs an operator ({', '.join(o.rstrip('_') for o in _OPERATORS)})"
                )
        if self.regex is not None:
            try:
                _regex(self.regex)
            except re.error as exc:
                raise ValueError(f"invalid regex: {exc}") from None
        return self

    def holds(self, facts: Facts) -> bool:
        return compile_condition(self).holds(facts)

    def first_failure(self, facts: Facts) -> str | None:
        """None when the condition holds, else a short PII-free reason."""
        return compile_condition(self).first_failure(facts)


Test = Callable[[Facts], bool]
Reason = str | Callable[[Facts], str]  # most reasons are fixed; a country's names the lead's
ValueTest = Callable[[AttributeValue], bool]


@dataclass(frozen=True, slots=True)
class Checks:
    """A condition compiled into a flat sequence of tests, each with the reason it gives
    when it fails, in the order `first_failure` reports them. A compiled rulebook builds
    these once, so a decision does not walk the condition's fields for every lead."""

    clauses: tuple[tuple[Test, Reason], ...]

    def holds(self, facts: Facts) -> bool:
        for test, _ in self.clauses:  # noqa: SIM110 - all() over a generator costs twice as much
            if not test(facts):
                return False
        return True

    def first_failure(self, facts: Facts) -> str | None:
        for test, reason in self.clauses:
            if not test(facts):
                return reason if isinstance(reason, str) else reason(facts)
        return None

    def fixed_reasons(self) -> tuple[str, ...]:
        """The reasons that do not depend on the lead (all but a country check's)."""
        return tuple(reason for _, reason in self.clauses if isinstance(reason, str))


def as_test(checks: Checks) -> Test:
    """`checks.holds`, or the one check itself when there is one (a call less per use)."""
    if len(checks.clauses) == 1:
        return checks.clauses[0][0]
    return checks.holds


def compile_condition(cond: Condition) -> Checks:
    return Checks(tuple((test, reason) for test, reason, _ in _clauses(cond)))


def compile_gated(cond: Condition) -> tuple[Checks, Checks]:
    """`cond` as (gate, rest): `gate` is its leading checks on territory, segment and named
    account, whose outcome is the same for every lead with the same territories, segments
    and named-account-or-not; `rest` is the checks after them. `cond` holds when both do,
    and its first failure is the gate's, else the rest's."""
    clauses = list(_clauses(cond))
    cut = next((i for i, (_, _, reads_lead) in enumerate(clauses) if reads_lead), len(clauses))
    return (
        Checks(tuple((test, reason) for test, reason, _ in clauses[:cut])),
        Checks(tuple((test, reason) for test, reason, _ in clauses[cut:])),
    )


def _clauses(cond: Condition) -> Iterator[tuple[Test, Reason, bool]]:
    """The checks of `cond` in the order of its keys (an `all` inlines its parts' checks),
    each with whether it reads the lead itself rather than its territories, segments and
    named account."""
    if cond.territory is not None:
        territories, listed = frozenset(cond.territory), "/".join(cond.territory)
        yield (lambda f: not f.territories.isdisjoint(territories)), f"not in territory {listed}", False
    if cond.segment is not None:
        yield _in_segment(cond.segment), f"not in segment {'/'.join(cond.segment)}", False
    if cond.named_account is not None:
        named = cond.named_account
        reason = "not a named account" if named else "a named account"
        yield (lambda f: (f.named_account is not None) == named), reason, False
    if cond.country is not None:
        countries, listed = frozenset(cond.country), "/".join(cond.country)
        yield (
            (lambda f: f.lead.country in countries),
            (lambda f: f"country {f.lead.country or 'missing'} not in {listed}"),
            True,
        )
    if cond.field is not None:
        yield _field_test(cond, cond.field), f"{cond.field} does not match", True
    for part in cond.all_ or ():
        yield from _clauses(part)
    if cond.any_ is not None:
        parts = tuple(compile_condition(part) for part in cond.any_)
        yield (lambda f: any(part.holds(f) for part in parts)), "none of `any` matched", True
    if cond.not_ is not None:
        negated = compile_condition(cond.not_)
        yield (lambda f: not negated.holds(f)), "`not` clause matched", True


def _in_segment(segments: tuple[str, ...]) -> Test:
    if len(segments) == 1:
        (segment,) = segments
        return lambda f: f.segment(segment)
    return lambda f: any(f.segment(s) for s in segments)


def _field_test(cond: Condition, path: str) -> Test:
    """Read the field once; a missing value (absent, None or "") satisfies only `not_in`
    and `exists: false`; a present one must pass every operator given."""
    read = field_getter(path)
    others = (op for op in _OPERATORS if op not in ("not_in", "exists"))
    missing_holds = cond.exists is not True and all(getattr(cond, op) is None for op in others)
    tests = tuple(_value_tests(cond))
    if len(tests) == 1:  # the usual case, one operator: a loop less
        (test,) = tests

        def holds_one(facts: Facts) -> bool:
            value = read(facts.lead)
            return missing_holds if value is None or value == "" else test(value)

        return holds_one

    def holds(facts: Facts) -> bool:
        value = read(facts.lead)
        if value is None or value == "":
            return missing_holds
        for test in tests:  # noqa: SIM110 - all() over a generator costs twice as much
            if not test(value):
                return False
        return True

    return holds


def _value_tests(cond: Condition) -> Iterator[ValueTest]:
    """One test per operator, for a present value."""
    if cond.exists is False:
        yield lambda _: False
    if cond.not_in is not None:
        excluded = _member_test(cond.not_in)
        yield lambda v: not excluded(v)
    if cond.equals is not None:
        yield _member_test((cond.equals,))
    if cond.in_ is not None:
        yield _member_test(cond.in_)
    for name, compare in _BOUNDS:
        bound = getattr(cond, name)
        if bound is not None:
            yield _bounded(compare, bound)
    if cond.prefix is not None:
        prefixes = tuple(p.lower() for p in cond.prefix)
        yield lambda v: str(v).lower().startswith(prefixes)
    if cond.regex is not None:
        pattern = _regex(cond.regex)
        yield lambda v: pattern.search(str(v)) is not None


@functools.lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _bounded(compare: Callable[[float, float], bool], bound: float) -> ValueTest:
    """A numeric bound holds only for numbers (a bool is not one, nor a numeric string)."""

    def test(value: AttributeValue) -> bool:
        return not isinstance(value, bool) and isinstance(value, int | float) and compare(value, bound)

    return test


def _member_test(options: tuple[Scalar, ...]) -> ValueTest:
    """Whether a value equals one of `options`: strings ignoring case, bools only bools,
    numbers as numbers; a string never equals a number, nor a number a string."""
    folded = frozenset(o.casefold() for o in options if isinstance(o, str))
    others = tuple(o for o in options if not isinstance(o, str))

    def member(value: AttributeValue) -> bool:
        if isinstance(value, str):
            return value.casefold() in folded
        for option in others:  # noqa: SIM110 - any() over a generator costs twice as much
            if _same(value, option):
                return True
        return False

    return member


def _same(value: AttributeValue, expected: Scalar) -> bool:
    if isinstance(value, bool) or isinstance(expected, bool):
        return value is expected
    return value == expected
