"""Warnings about a rulebook that loads but probably does not do what its author meant.

`lint(book, lines)` returns `path (line N): message` strings (the line when
`lines`, from `lines_of(text)`, knows the path). None of these stop a rulebook
from loading; `leadrouter rules check --strict` treats them as errors.

- A route after a catch-all that always places is unreachable. A catch-all is a
  route whose `when` holds for every lead; it always places when its `assign` or
  its `fallback` is a queue (a queue never refuses). A catch-all whose targets
  are a team, a rep or the owner does not always place: when nobody there can
  take the lead, decide falls through, so later routes stay reachable as
  fallthrough and are not reported.
- No catch-all that always places: leads no route places are queued on
  `default_queue`, so a full team quietly becomes a queue.
- Territories sharing a country, a subdivision or postal codes, unless one is
  part of the other (`union`): a lead there is in both, so route order decides.
- A rep in no team (only `rep:` targets and named accounts can reach them).
- A team no route and no named account uses.
- A segment no condition refers to.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from rules.conditions import Condition
from rules.rulebook import (
    OwnerTarget,
    QueueTarget,
    RepTarget,
    Route,
    Rulebook,
    Target,
    TeamTarget,
    _conditions,
    _lines,
)
from rules.territories import PostalRule, Territory, expand_unions, normalise_postal

__all__ = ["always_holds", "always_places", "lines_of", "lint"]


def lines_of(text: str) -> dict[str, int]:
    """Path (`routes[3]`, `territories[2].countries[0]`) -> 1-based line in the YAML text."""
    return _lines(text)


def lint(book: Rulebook, lines: Mapping[str, int] | None = None) -> list[str]:
    """Every warning about `book`, in file order within each kind."""
    found = [
        *_route_warnings(book),
        *_territory_warnings(book),
        *_rep_warnings(book),
        *_team_warnings(book),
        *_segment_warnings(book),
    ]
    return [_with_line(path, message, lines or {}) for path, message in found]


def _with_line(path: str, message: str, lines: Mapping[str, int]) -> str:
    probe = path
    while probe:
        if probe in lines:
            return f"{path} (line {lines[probe]}): {message}"
        if probe.endswith("]"):
            probe = probe.rsplit("[", 1)[0]
        elif "." in probe:
            probe = probe.rsplit(".", 1)[0]
        else:
            break
    return f"{path}: {message}"


# --- routes ---------------------------------------------------------------------


def always_holds(cond: Condition) -> bool:
    """Whether a condition holds for every lead (`{}`, or `all` of such conditions)."""
    leaves = (
        cond.any_,
        cond.not_,
        cond.territory,
        cond.segment,
        cond.named_account,
        cond.country,
        cond.field,
    )
    if any(value is not None for value in leaves):
        return False
    return all(always_holds(part) for part in cond.all_ or ())


def always_places(route: Route) -> bool:
    """Whether a route that matches can never fall through: it ends at a queue."""
    return isinstance(route.assign, QueueTarget) or isinstance(route.fallback, QueueTarget)


def _describe(target: Target) -> str:
    if isinstance(target, TeamTarget):
        return f"team {target.team!r}"
    if isinstance(target, RepTarget):
        return f"rep {target.rep!r}"
    if isinstance(target, OwnerTarget):
        return "the named account's owner"
    return f"queue {target.queue!r}"


def _route_warnings(book: Rulebook) -> Iterator[tuple[str, str]]:
    catch_all: tuple[int, Route] | None = None
    for i, route in enumerate(book.routes):
        if catch_all is not None:
            j, first = catch_all
            queue = first.assign if isinstance(first.assign, QueueTarget) else first.fallback
            assert queue is not None
            yield (
                f"routes[{i}]",
                f"route {route.id!r} is unreachable: route {first.id!r} (routes[{j}]) before it "
                f"matches every lead and always places it ({_describe(queue)})",
            )
        elif always_holds(route.when) and always_places(route):
            catch_all = (i, route)
    if catch_all is None:
        yield (
            "routes",
            "no catch-all route (empty `when`, ending at a queue): leads no route can place are "
            f"queued on the default queue {book.default_queue!r}; end with e.g. "
            f"`{{id: everyone-else, assign: {{team: ...}}, fallback: {{queue: {book.default_queue}}}}}`",
        )


# --- territories ----------------------------------------------------------------


def _prefix_in_range(prefix: str, low: str, high: str) -> bool:
    """Whether some code starting with `prefix` has its first len(low) characters in [low, high]."""
    if len(prefix) >= len(low):
        return low <= prefix[: len(low)] <= high
    return low[: len(prefix)] <= prefix <= high[: len(prefix)]


def _postal_overlap(a: PostalRule, b: PostalRule) -> bool:
    """Whether some postal code matches both rules (same country)."""
    if a.country != b.country:
        return False
    pa = [normalise_postal(p) for p in a.prefixes]
    pb = [normalise_postal(p) for p in b.prefixes]
    if any(x.startswith(y) or y.startswith(x) for x in pa for y in pb):
        return True
    ra = (a.from_.upper(), a.to.upper()) if a.from_ and a.to else None
    rb = (b.from_.upper(), b.to.upper()) if b.from_ and b.to else None
    if ra and any(_prefix_in_range(p, *ra) for p in pb):
        return True
    if rb and any(_prefix_in_range(p, *rb) for p in pa):
        return True
    if ra and rb:
        k = min(len(ra[0]), len(rb[0]))
        return ra[0][:k] <= rb[1][:k] and rb[0][:k] <= ra[1][:k]
    return False


def _shared(a: Territory, b: Territory) -> Iterator[tuple[str, str]]:
    """(path suffix within b, what is shared) for each entry of b that a also covers."""
    for k, country in enumerate(b.countries):
        if country in a.countries:
            yield f"countries[{k}]", f"country {country}"
    for k, sub in enumerate(b.subdivisions):
        if sub in a.subdivisions:
            yield f"subdivisions[{k}]", f"subdivision {sub}"
    for k, rule in enumerate(b.postal_codes):
        if any(_postal_overlap(rule, other) for other in a.postal_codes):
            yield f"postal_codes[{k}]", f"postal codes in {rule.country}"


def _territory_warnings(book: Rulebook) -> Iterator[tuple[str, str]]:
    try:
        expanded = expand_unions(book.territories)
    except ValueError:
        return  # parse_rulebook already refused it
    items = list(enumerate(book.territories))
    for j, b in items:
        for i, a in items[:j]:
            if a.id in expanded[b.id] or b.id in expanded[a.id]:
                continue  # one is part of the other: overlapping is the point
            for where, what in _shared(a, b):
                yield (
                    f"territories[{j}].{where}",
                    f"territory {b.id!r} overlaps {a.id!r} (territories[{i}]): both contain {what}; "
                    "a lead there is in both, so route order decides",
                )


# --- reps, teams, segments --------------------------------------------------------


def _rep_warnings(book: Rulebook) -> Iterator[tuple[str, str]]:
    in_team = {rep_id for team in book.teams for rep_id in book.members(team.id)}
    targeted = {t.rep for r in book.routes for t in (r.assign, r.fallback) if isinstance(t, RepTarget)}
    owners = {a.owner.rep for a in book.named_accounts if a.owner.rep is not None}
    for i, rep in enumerate(book.reps):
        if rep.id in in_team:
            continue
        if rep.teams:
            why = f"it lists {', '.join(rep.teams)} but the team's `members` leave it out"
        else:
            why = "no team lists it"
        if rep.id in targeted or rep.id in owners:
            reach = "only `rep:` targets and named accounts reach it, with no team to fall back on"
        else:
            reach = "no route or named account names it either, so it never gets a lead"
        yield f"reps[{i}]", f"rep {rep.id!r} is in no team ({why}): {reach}"


def _team_warnings(book: Rulebook) -> Iterator[tuple[str, str]]:
    used = {t.team for r in book.routes for t in (r.assign, r.fallback) if isinstance(t, TeamTarget)}
    used |= {a.owner.team for a in book.named_accounts if a.owner.team is not None}
    if any(isinstance(t, OwnerTarget) for r in book.routes for t in (r.assign, r.fallback)):
        # An owner who cannot take a lead hands it to their first team.
        for account in book.named_accounts:
            if account.owner.rep is not None:
                team_id = book.team_of(account.owner.rep)
                if team_id is not None:
                    used.add(team_id)
    for i, team in enumerate(book.teams):
        if team.id not in used:
            yield f"teams[{i}]", f"team {team.id!r} is not used by any route or named account"


def _segment_warnings(book: Rulebook) -> Iterator[tuple[str, str]]:
    referenced: set[str] = set()
    for path, cond in _conditions(book):
        own = path.split(".", 1)[0]  # `segments[2]` for a segment's own condition
        for name in cond.segment or ():
            if not any(own == f"segments[{i}]" and s.id == name for i, s in enumerate(book.segments)):
                referenced.add(name)
    for i, segment in enumerate(book.segments):
        if segment.id not in referenced:
            yield f"segments[{i}]", f"segment {segment.id!r} is not used by any route or segment condition"
