"""The rulebook: reps, teams and an ordered list of routes, loaded from YAML.

`parse_rulebook` turns YAML text into a validated, immutable `Rulebook` or raises
`RulebookError` listing every problem with the path of the bad field
(`routes[2].assign.team: unknown team 'apac'`). Reading the file is the caller's
job: this module does no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from rules.events import CountryCode

Name = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class _ReferenceProblems(ValueError):
    """Cross-references that do not resolve; each problem already carries its path."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class _Strict(BaseModel):
    # Rulebooks are written by people: a misspelt key must be an error, not ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rep(_Strict):
    id: Name
    # Display name only; never logged (it is a person's name).
    name: str | None = None
    teams: tuple[Name, ...] = ()
    capacity: Annotated[int, Field(ge=0, description="most leads awaiting first touch at once")] = 10
    status: Literal["available", "away"] = "available"


class Team(_Strict):
    id: Name
    strategy: Literal["round_robin"] = "round_robin"
    members: tuple[Name, ...] | None = Field(
        default=None, description="ordered rotation; defaults to reps listing this team"
    )


class Match(_Strict):
    """Conditions of a route; all given conditions must hold. Empty matches every lead."""

    country: tuple[CountryCode, ...] | None = None


class TeamTarget(_Strict):
    team: Name


class QueueTarget(_Strict):
    queue: Name


class Route(_Strict):
    id: Name
    when: Match = Field(default_factory=Match)
    assign: TeamTarget | QueueTarget


class Rulebook(_Strict):
    # `version: 3` in YAML is an int; a version is a label, so accept it.
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

    version: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    timezone: str = "UTC"
    default_queue: Name = "unrouted"
    reps: tuple[Rep, ...]
    teams: tuple[Team, ...]
    routes: tuple[Route, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_references(self) -> Rulebook:
        problems: list[str] = []
        problems += _duplicates("reps", (r.id for r in self.reps))
        problems += _duplicates("teams", (t.id for t in self.teams))
        problems += _duplicates("routes", (r.id for r in self.routes))
        rep_ids = {r.id for r in self.reps}
        team_ids = {t.id for t in self.teams}
        for i, rep in enumerate(self.reps):
            for j, team_id in enumerate(rep.teams):
                if team_id not in team_ids:
                    problems.append(f"reps[{i}].teams[{j}]: unknown team {team_id!r}")
        for i, team in enumerate(self.teams):
            for j, member in enumerate(team.members or ()):
                if member not in rep_ids:
                    problems.append(f"teams[{i}].members[{j}]: unknown rep {member!r}")
        for i, route in enumerate(self.routes):
            if isinstance(route.assign, TeamTarget) and route.assign.team not in team_ids:
                problems.append(f"routes[{i}].assign.team: unknown team {route.assign.team!r}")
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
        """The first team a rep belongs to (for metric labels of rep-level events)."""
        for team in self.teams:
            if rep_id in self.members(team.id):
                return team.id
        return None


def _duplicates(field: str, ids: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    problems = []
    for i, value in enumerate(ids):
        if value in seen:
            problems.append(f"{field}[{i}].id: duplicate id {value!r}")
        seen.add(value)
    return problems


class RulebookError(ValueError):
    """A rulebook that does not load; `problems` are `path: message` strings."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = tuple(problems)
        super().__init__(f"{source}: invalid rulebook:\n  " + "\n  ".join(self.problems))


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("TeamTarget", "QueueTarget"):
            # Union branches are noise in a path a person reads.
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "(root)"


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
        for err in exc.errors(include_input=False, include_url=False):
            cause = err.get("ctx", {}).get("error")
            if isinstance(cause, _ReferenceProblems):
                problems += cause.problems  # each already starts with its own path
                continue
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"{_path(tuple(err['loc']))}: {msg}")
        raise RulebookError(source, problems) from None
