"""Conditions of routes and segments: field predicates combined with all/any/not.

A condition is a mapping whose keys all must hold (an empty one always holds):

    {territory: dach, segment: enterprise}
    {field: company.employees, gte: 200, lt: 1000}
    {any: [{field: source, in: [webinar, ads]}, {not: {field: priority, exists: true}}]}

String comparisons (`equals`, `in`, `not_in`, `prefix`) ignore case (sales-ops
write "Software", producers send "software"); `regex` is case-sensitive unless it
says `(?i)`. Numeric operators only hold for numbers; a missing field satisfies
only `not_in` and `exists: false`.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from rules.events import AttributeValue, CountryCode, Lead
from rules.fields import check_field_path, field_value

Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Scalar = str | int | float | bool


def _as_tuple(value: Any) -> Any:
    """Let people write `territory: dach` for `territory: [dach]`."""
    return (value,) if isinstance(value, str | int | float) and not isinstance(value, bool) else value


Names = Annotated[tuple[Name, ...], BeforeValidator(_as_tuple)]
Scalars = Annotated[tuple[Scalar, ...], BeforeValidator(_as_tuple)]
Strings = Annotated[tuple[str, ...], BeforeValidator(_as_tuple)]
_OPERATORS = ("equals", "in_", "not_in", "gt", "gte", "lt", "lte", "prefix", "exists", "regex")


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
        return self.first_failure(facts) is None

    def first_failure(self, facts: Facts) -> str | None:
        """None when the condition holds, else a short PII-free reason."""
        if self.territory is not None and not facts.territories.intersection(self.territory):
            return f"not in territory {'/'.join(self.territory)}"
        if self.segment is not None and not any(facts.segment(s) for s in self.segment):
            return f"not in segment {'/'.join(self.segment)}"
        if self.named_account is not None and (facts.named_account is not None) != self.named_account:
            return "not a named account" if self.named_account else "a named account"
        if self.country is not None and facts.lead.country not in self.country:
            return f"country {facts.lead.country or 'missing'} not in {'/'.join(self.country)}"
        if self.field is not None and not self._field_holds(field_value(facts.lead, self.field)):
            return f"{self.field} does not match"
        if self.all_ is not None:
            for part in self.all_:
                if (why := part.first_failure(facts)) is not None:
                    return why
        if self.any_ is not None and not any(part.holds(facts) for part in self.any_):
            return "none of `any` matched"
        if self.not_ is not None and self.not_.holds(facts):
            return "`not` clause matched"
        return None

    def _field_holds(self, value: AttributeValue) -> bool:
        missing = value is None or value == ""
        if self.exists is not None and self.exists == missing:
            return False
        if self.not_in is not None and not missing and _member(value, self.not_in):
            return False
        if missing:
            return all(getattr(self, op) is None for op in _OPERATORS if op not in ("not_in", "exists"))
        if self.equals is not None and not _same(value, self.equals):
            return False
        if self.in_ is not None and not _member(value, self.in_):
            return False
        number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
        bounds = (
            (self.gt, operator.gt),
            (self.gte, operator.ge),
            (self.lt, operator.lt),
            (self.lte, operator.le),
        )
        for bound, compare in bounds:
            if bound is not None and (number is None or not compare(number, bound)):
                return False
        if self.prefix is not None and not str(value).lower().startswith(
            tuple(p.lower() for p in self.prefix)
        ):
            return False
        return self.regex is None or _regex(self.regex).search(str(value)) is not None


@functools.lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _same(value: AttributeValue, expected: Scalar) -> bool:
    if isinstance(value, str) and isinstance(expected, str):
        return value.casefold() == expected.casefold()
    if isinstance(value, bool) or isinstance(expected, bool):
        return value is expected
    return value == expected


def _member(value: AttributeValue, options: tuple[Scalar, ...]) -> bool:
    return any(_same(value, option) for option in options)
