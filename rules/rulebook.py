"""The rulebook: reps, teams, territories, segments, named accounts and routes (YAML).

`parse_rulebook` turns YAML text into a validated, immutable `Rulebook` or raises
`RulebookError` listing every problem with the path of the bad field and its line
(`routes[2].assign.team (line 41): unknown team 'apac'`). Reading the file is the
caller's job: this module does no I/O. `docs/rulebook.md` documents the format.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from rules.accounts import NamedAccount, normalise_domain
from rules.calendar import WeeklyHours, check_timezone
from rules.conditions import Condition, Name
from rules.fields import check_field_path
from rules.policies import SlaPolicy
from rules.territories import Territory, expand_unions

Strategy = Literal["round_robin", "weighted", "least_loaded"]
Skill = Annotated[str, StringConstraints(min_length=1, max_length=64, to_lower=True, strip_whitespace=True)]


class _Strict(BaseModel):
    # Rulebooks are written by people: a misspelt key must be an error, not ignored.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class OutOfOffice(_Strict):
    """An absence: dates are whole days in the rep's timezone, inclusive."""

    start: date | AwareDatetime = Field(alias="from")
    end: date | AwareDatetime = Field(alias="to")

    @model_validator(mode="after")
    def _ordered(self) -> OutOfOffice:
        if type(self.start) is type(self.end) and self.end < self.start:
            raise ValueError("`to` is before `from`: the absence would never apply")
        return self


class Rep(_Strict):
    id: Name
    # Display name only; never logged (it is a person's name).
    name: str | None = None
    teams: tuple[Name, ...] = ()
    timezone: str | None = Field(default=None, description="IANA zone; defaults to the rulebook's")
    hours: WeeklyHours | None = Field(default=None, description="working hours; absent = always")
    out_of_office: tuple[OutOfOffice, ...] = ()
    capacity: Annotated[int, Field(ge=0, description="most leads awaiting first touch at once")] = 10
    daily_cap: Annotated[int, Field(ge=0)] | None = Field(
        default=None, description="assignments per local day"
    )
    weight: Annotated[int, Field(ge=1, le=100)] = 1
    skills: tuple[Skill, ...] = ()
    status: Literal["available", "away", "offline"] = "available"

    @field_validator("timezone")
    @classmethod
    def _zone(cls, name: str | None) -> str | None:
        return None if name is None else check_timezone(name)

    @field_validator("hours")
    @classmethod
    def _some_hours(cls, hours: WeeklyHours | None) -> WeeklyHours | None:
        if hours is not None and not any(hours.by_weekday()):
            raise ValueError("no open time: the rep would never be available (omit `hours` for always)")
        return hours


class Team(_Strict):
    id: Name
    strategy: Strategy = "round_robin"
    members: tuple[Name, ...] | None = Field(
        default=None, description="rotation order; default: reps in file order"
    )
    escalation_contact: str | None = None


class Segment(_Strict):
    id: Name
    when: Condition


class TeamTarget(_Strict):
    team: Name
    strategy: Strategy | None = Field(default=None, description="overrides the team's strategy")
    skills: tuple[Skill, ...] = Field(default=(), description="every candidate must have all of these")
    skills_from: str | None = Field(default=None, description="a lead field whose value is a required skill")

    @field_validator("skills_from")
    @classmethod
    def _field(cls, path: str | None) -> str | None:
        return None if path is None else check_field_path(path)


class RepTarget(_Strict):
    rep: Name


class OwnerTarget(_Strict):
    """The named account's owner; if the owner rep cannot take it, the owner's team."""

    owner: Literal[True]


class QueueTarget(_Strict):
    queue: Name


def _target_kind(data: Any) -> str | None:
    if isinstance(data, dict):
        for key in ("team", "rep", "owner", "queue"):
            if key in data:
                return key
        return None
    kinds: dict[type, str] = {
        TeamTarget: "team",
        RepTarget: "rep",
        OwnerTarget: "owner",
        QueueTarget: "queue",
    }
    return kinds.get(type(data))


Target = Annotated[
    Annotated[TeamTarget, Tag("team")]
    | Annotated[RepTarget, Tag("rep")]
    | Annotated[OwnerTarget, Tag("owner")]
    | Annotated[QueueTarget, Tag("queue")],
    Discriminator(
        _target_kind,
        custom_error_type="target",
        custom_error_message="a target needs one of: team, rep, owner, queue",
    ),
]


class Route(_Strict):
    id: Name
    when: Condition = Field(default_factory=Condition)
    assign: Target
    fallback: Target | None = None


class Rulebook(_Strict):
    # `version: 3` in YAML is an int; a version is a label, so accept it.
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True, populate_by_name=True)

    version: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    timezone: str = "UTC"
    default_queue: Name = "unrouted"
    reps: tuple[Rep, ...]
    teams: tuple[Team, ...]
    territories: tuple[Territory, ...] = ()
    segments: tuple[Segment, ...] = ()
    named_accounts: tuple[NamedAccount, ...] = ()
    routes: tuple[Route, ...]
    sla_policies: tuple[SlaPolicy, ...] = ()
    reroute_on_update: bool = Field(
        default=False, description="a lead.updated that changes routing fields re-routes an untouched lead"
    )

    @field_validator("timezone")
    @classmethod
    def _zone(cls, name: str) -> str:
        return check_timezone(name)

    @model_validator(mode="after")
    def _check_references(self) -> Rulebook:
        problems = list(_reference_problems(_View.of(self)))
        if problems:
            raise _ReferenceProblems(problems)
        return self

    def members(self, team_id: str) -> tuple[str, ...]:
        """The rotation order of a team: explicit members, else reps in file order."""
        for team in self.teams:
            if team.id == team_id:
                if team.members is not None:
                    return team.members
                return tuple(r.id for r in self.reps if team_id in r.teams)
        raise KeyError(team_id)

    def rep(self, rep_id: str) -> Rep:
        for rep in self.reps:
            if rep.id == rep_id:
                return rep
        raise KeyError(rep_id)

    def team_of(self, rep_id: str) -> str | None:
        """The first team a rep belongs to (its label on rep-level metrics and events)."""
        for team in self.teams:
            if rep_id in self.members(team.id):
                return team.id
        return None


_SECTIONS: dict[str, type[BaseModel]] = {
    "reps": Rep,
    "teams": Team,
    "territories": Territory,
    "segments": Segment,
    "named_accounts": NamedAccount,
    "routes": Route,
    "sla_policies": SlaPolicy,
}


def _duplicates(field: str, ids: Iterable[str]) -> Iterator[str]:
    seen: set[str] = set()
    for i, value in enumerate(ids):
        if value in seen:
            yield f"{field}[{i}].id: duplicate id {value!r}"
        seen.add(value)


@dataclass(frozen=True)
class _View:
    """The sections of a rulebook, with None where an item did not validate, and
    the ids written in the file (valid or not), so references can be checked on
    a partly invalid rulebook without blaming what is merely invalid elsewhere."""

    reps: Sequence[Rep | None]
    teams: Sequence[Team | None]
    territories: Sequence[Territory | None]
    segments: Sequence[Segment | None]
    named_accounts: Sequence[NamedAccount | None]
    routes: Sequence[Route | None]
    sla_policies: Sequence[SlaPolicy | None]
    ids: dict[str, list[str | None]]

    @classmethod
    def of(cls, book: Rulebook) -> _View:
        sections = {name: getattr(book, name) for name in _SECTIONS}
        ids = {name: [item.id for item in items] for name, items in sections.items()}
        return cls(**sections, ids=ids)

    @classmethod
    def partial(cls, data: dict[str, Any]) -> _View:
        sections: dict[str, list[Any]] = {}
        ids: dict[str, list[str | None]] = {}
        for name, model in _SECTIONS.items():
            raw = data.get(name)
            items = raw if isinstance(raw, list) else []
            sections[name] = [_try(model, item) for item in items]
            ids[name] = [str(i["id"]) if isinstance(i, dict) and "id" in i else None for i in items]
        return cls(**sections, ids=ids)

    def members(self, team: Team) -> tuple[str, ...]:
        if team.members is not None:
            return team.members
        return tuple(r.id for r in self.reps if r is not None and team.id in r.teams)


def _try(model: type[BaseModel], raw: Any) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError:
        return None


def _conditions(view: _View | Rulebook) -> Iterator[tuple[str, Condition]]:
    """Every condition with its path, nested ones included."""
    if isinstance(view, Rulebook):
        view = _View.of(view)

    def walk(path: str, cond: Condition) -> Iterator[tuple[str, Condition]]:
        yield path, cond
        for key, parts in (("all", cond.all_), ("any", cond.any_)):
            for j, part in enumerate(parts or ()):
                yield from walk(f"{path}.{key}[{j}]", part)
        if cond.not_ is not None:
            yield from walk(f"{path}.not", cond.not_)

    for i, segment in enumerate(view.segments):
        if segment is not None:
            yield from walk(f"segments[{i}].when", segment.when)
    for i, route in enumerate(view.routes):
        if route is not None:
            yield from walk(f"routes[{i}].when", route.when)
    for i, policy in enumerate(view.sla_policies):
        if policy is not None and policy.when is not None:
            yield from walk(f"sla_policies[{i}].when", policy.when)


def _segment_cycles(view: _View) -> Iterator[str]:
    uses: dict[str, set[str]] = {}
    for i, segment in enumerate(view.segments):
        if segment is not None:
            uses[segment.id] = {n for path, c in _conditions(view) if path.startswith(f"segments[{i}].")
                                for n in c.segment or ()}  # fmt: skip

    def visit(sid: str, path: tuple[str, ...]) -> str | None:
        if sid in path:
            return " -> ".join((*path, sid))
        for used in sorted(uses.get(sid, ())):
            if (cycle := visit(used, (*path, sid))) is not None:
                return cycle
        return None

    reported: set[frozenset[str]] = set()
    for sid in uses:
        cycle = visit(sid, ())
        if cycle is not None and frozenset(cycle.split(" -> ")) not in reported:
            reported.add(frozenset(cycle.split(" -> ")))
            yield f"segments: segment cycle: {cycle}"


def _reference_problems(view: _View) -> Iterator[str]:  # noqa: C901 - one check per reference kind
    for name in _SECTIONS:
        yield from _duplicates(name, (i for i in view.ids[name] if i is not None))
    reps, teams = set(view.ids["reps"]), set(view.ids["teams"])
    territories, segments = set(view.ids["territories"]), set(view.ids["segments"])
    for i, rep in enumerate(view.reps):
        for j, team_id in enumerate(rep.teams if rep else ()):
            if team_id not in teams:
                yield f"reps[{i}].teams[{j}]: unknown team {team_id!r}"
    for i, team in enumerate(view.teams):
        if team is None:
            continue
        listed: set[str] = set()
        for j, member in enumerate(team.members or ()):
            if member not in reps:
                yield f"teams[{i}].members[{j}]: unknown rep {member!r}"
            elif member in listed:
                yield f"teams[{i}].members[{j}]: {member!r} is listed twice (each rep takes one turn)"
            listed.add(member)
        if not view.members(team) and None not in view.reps:
            yield f"teams[{i}]: team {team.id!r} has no members (no rep lists it, no members given)"
    try:
        expand_unions([t for t in view.territories if t is not None])
    except ValueError as exc:
        yield f"territories: {exc}"
    yield from _segment_cycles(view)
    for path, cond in _conditions(view):
        for name in cond.territory or ():
            if name not in territories:
                yield f"{path}.territory: unknown territory {name!r}"
        for name in cond.segment or ():
            if name not in segments:
                yield f"{path}.segment: unknown segment {name!r}"
    owners: dict[str, str] = {}
    for i, account in enumerate(view.named_accounts):
        if account is None:
            continue
        if account.owner.rep is not None and account.owner.rep not in reps:
            yield f"named_accounts[{i}].owner.rep: unknown rep {account.owner.rep!r}"
        if account.owner.team is not None and account.owner.team not in teams:
            yield f"named_accounts[{i}].owner.team: unknown team {account.owner.team!r}"
        for j, domain in enumerate(account.domains):
            key = normalise_domain(domain)
            if key in owners and owners[key] != account.id:
                yield f"named_accounts[{i}].domains[{j}]: {domain!r} already belongs to {owners[key]!r}"
            owners.setdefault(key, account.id)
    for i, route in enumerate(view.routes):
        for key, target in (("assign", route.assign), ("fallback", route.fallback)) if route else ():
            if isinstance(target, TeamTarget) and target.team not in teams:
                yield f"routes[{i}].{key}.team: unknown team {target.team!r}"
            if isinstance(target, RepTarget) and target.rep not in reps:
                yield f"routes[{i}].{key}.rep: unknown rep {target.rep!r}"
    routes = set(view.ids["routes"])
    for i, policy in enumerate(view.sla_policies):
        for j, route_id in enumerate(policy.routes or () if policy else ()):
            if route_id not in routes:
                yield f"sla_policies[{i}].routes[{j}]: unknown route {route_id!r}"
        for j, team_id in enumerate(policy.teams or () if policy else ()):
            if team_id not in teams:
                yield f"sla_policies[{i}].teams[{j}]: unknown team {team_id!r}"
    if not view.routes:
        yield "routes: at least one route is needed"


class _ReferenceProblems(ValueError):
    """Cross-references that do not resolve; each problem already carries its path."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class RulebookError(ValueError):
    """A rulebook that does not load; `problems` are `path (line N): message` strings."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = tuple(problems)
        super().__init__(f"{source}: invalid rulebook:\n  " + "\n  ".join(self.problems))


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    previous: int | str | None = None
    for part in loc:
        tag = part in ("team", "rep", "owner", "queue") and previous in ("assign", "fallback")
        previous = part
        if tag:
            previous = None  # the union's tag, not a key the author wrote
        elif isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(root)"


def _lines(text: str) -> dict[str, int]:
    """Path (as `_path` writes it) -> 1-based line of that node in the YAML text."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    out: dict[str, int] = {}

    def walk(node: yaml.Node, path: str) -> None:
        out.setdefault(path or "(root)", node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                name = str(key.value)
                child = f"{path}.{name}" if path else name
                out[child] = key.start_mark.line + 1
                walk(value, child)
                out[child] = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, f"{path}[{i}]")

    if root is not None:
        walk(root, "")
    return out


def _with_line(problem: str, lines: dict[str, int]) -> str:
    path, sep, message = problem.partition(": ")
    if not sep:
        return problem
    probe = path
    while probe:
        if probe in lines:
            return f"{path} (line {lines[probe]}): {message}"
        probe = probe[: max(probe.rfind("."), probe.rfind("["), 0)]
    return problem


def parse_rulebook(text: str, source: str = "<rulebook>") -> Rulebook:
    """Parse and validate YAML text; raise RulebookError with every problem found."""
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulebookError(source, [f"(yaml): {exc}"]) from None
    if not isinstance(data, dict):
        raise RulebookError(source, ["(root): expected a mapping with version, reps, teams, routes"])
    try:
        return Rulebook.model_validate(data)
    except ValidationError as exc:
        problems: list[str] = []
        references = False
        for err in exc.errors(include_input=False, include_url=False):
            cause = err.get("ctx", {}).get("error")
            if isinstance(cause, _ReferenceProblems):
                problems += cause.problems  # each already starts with its own path
                references = True
                continue
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"{_path(tuple(err['loc']))}: {msg}")
        if not references:
            # Field errors stop pydantic before the cross-reference check: run it on
            # the parts that did validate, so one pass reports every mistake.
            problems += [p for p in _reference_problems(_View.partial(data)) if p not in problems]
        lines = _lines(text)
        raise RulebookError(source, [_with_line(p, lines) for p in problems]) from None
