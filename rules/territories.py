"""Territories: geography by country, subdivision and postal code, and unions of them.

    - id: us-west
      subdivisions: [US-CA, US-OR, US-WA]
      postal_codes:
        - {country: US, prefixes: ["97", "98"]}
        - {country: US, from: "900", to: "961"}   # ZIP 90000-96199, compared on 3 digits
    - id: amer
      union: [us-west, us-east]
      countries: [CA, MX]

`TerritoryIndex` answers "which territories is this lead in" with dictionary
lookups, so a decision never scans every territory.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from rules.conditions import Name
from rules.events import CountryCode, Lead

Subdivision = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}-[A-Za-z0-9]{1,3}$", to_upper=True)]
PostalPart = Annotated[
    str, StringConstraints(min_length=1, max_length=10, pattern=r"^[A-Za-z0-9]+$", to_upper=True)
]


class PostalRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    country: CountryCode
    prefixes: tuple[PostalPart, ...] = ()
    from_: PostalPart | None = Field(default=None, alias="from")
    to: PostalPart | None = None

    @model_validator(mode="after")
    def _check(self) -> PostalRule:
        if (self.from_ is None) != (self.to is None):
            raise ValueError("a postal range needs both `from` and `to`")
        if self.from_ is not None and self.to is not None:
            if len(self.from_) != len(self.to):
                raise ValueError("`from` and `to` must have the same length")
            if self.from_ > self.to:
                raise ValueError("`from` is after `to`")
        if not self.prefixes and self.from_ is None:
            raise ValueError("give `prefixes` or a `from`/`to` range")
        return self

    def matches(self, postal: str) -> bool:
        return self.compiled().matches(normalise_postal(postal))

    def compiled(self) -> CompiledPostalRule:
        """The rule with its own parts normalised once."""
        low, high = (self.from_.upper(), self.to.upper()) if self.from_ and self.to else ("", "")
        return CompiledPostalRule(tuple(normalise_postal(p) for p in self.prefixes), low, high)


@dataclass(frozen=True, slots=True)
class CompiledPostalRule:
    prefixes: tuple[str, ...]  # normalised
    # The range a code's head (its first len(low) characters) must be in; "" for none.
    low: str
    high: str

    def matches(self, code: str) -> bool:
        """Whether the normalised postal `code` has a prefix, or its head is in the range."""
        if code.startswith(self.prefixes):
            return True
        size = len(self.low)
        return size > 0 and len(code) >= size and self.low <= code[:size] <= self.high


class Territory(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Name
    countries: tuple[CountryCode, ...] = ()
    subdivisions: tuple[Subdivision, ...] = ()
    postal_codes: tuple[PostalRule, ...] = ()
    union: tuple[Name, ...] = ()

    @model_validator(mode="after")
    def _not_empty(self) -> Territory:
        if not (self.countries or self.subdivisions or self.postal_codes or self.union):
            raise ValueError("a territory needs countries, subdivisions, postal_codes or union")
        return self


def normalise_postal(code: str) -> str:
    upper = code.upper()
    if upper.isalnum():  # the usual case: nothing to drop
        return upper
    return "".join(ch for ch in upper if ch.isalnum())


def region_code(lead: Lead) -> str | None:
    """The lead's ISO 3166-2 subdivision, accepting `CA` with country US as `US-CA`."""
    if not lead.region:
        return None
    region = lead.region.strip().upper()
    if "-" in region:
        return region
    return f"{lead.country}-{region}" if lead.country else None


def expand_unions(territories: Iterable[Territory]) -> dict[str, frozenset[str]]:
    """Territory id -> every territory id it stands for (itself and nested unions).

    Raises ValueError on unknown members or cycles.
    """
    by_id = {t.id: t for t in territories}
    out: dict[str, frozenset[str]] = {}

    def visit(tid: str, path: tuple[str, ...]) -> frozenset[str]:
        if tid in path:
            raise ValueError(f"territory union cycle: {' -> '.join((*path, tid))}")
        if tid in out:
            return out[tid]
        members = {tid}
        for member in by_id[tid].union:
            if member not in by_id:
                raise ValueError(f"territory {tid!r}: unknown union member {member!r}")
            members |= visit(member, (*path, tid))
        out[tid] = frozenset(members)
        return out[tid]

    for tid in by_id:
        visit(tid, ())
    return out


_NOWHERE: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class TerritoryIndex:
    """Each country, subdivision and postal rule maps to every territory it puts a lead
    in, unions included, so a lead's territories are the union of a few lookups."""

    by_country: dict[str, frozenset[str]]
    by_subdivision: dict[str, frozenset[str]]
    postal: dict[str, tuple[tuple[CompiledPostalRule, frozenset[str]], ...]]  # country -> per rule

    @classmethod
    def build(cls, territories: Iterable[Territory]) -> TerritoryIndex:
        territories = tuple(territories)
        # direct territory -> itself and the unions that contain it
        within: dict[str, set[str]] = defaultdict(set)
        for tid, members in expand_unions(territories).items():
            for member in members:
                within[member].add(tid)
        by_country: dict[str, set[str]] = defaultdict(set)
        by_sub: dict[str, set[str]] = defaultdict(set)
        postal: dict[str, list[tuple[CompiledPostalRule, frozenset[str]]]] = defaultdict(list)
        for t in territories:
            for country in t.countries:
                by_country[country] |= within[t.id]
            for sub in t.subdivisions:
                by_sub[sub] |= within[t.id]
            for rule in t.postal_codes:
                postal[rule.country].append((rule.compiled(), frozenset(within[t.id])))
        return cls(
            {k: frozenset(v) for k, v in by_country.items()},
            {k: frozenset(v) for k, v in by_sub.items()},
            {k: tuple(v) for k, v in postal.items()},
        )

    def of(self, lead: Lead) -> frozenset[str]:
        """Every territory the lead is in, unions included."""
        found = _NOWHERE
        if lead.country:
            found = self.by_country.get(lead.country, _NOWHERE)
            if lead.postal_code and lead.country in self.postal:
                code = normalise_postal(lead.postal_code)
                for rule, territories in self.postal[lead.country]:
                    if rule.matches(code):
                        found = found | territories
        region = region_code(lead)
        if region:
            found = found | self.by_subdivision.get(region, _NOWHERE)
        return found
