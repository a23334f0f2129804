"""Property tests of rulebook loading: whatever the YAML, it either loads completely
(parsed, compiled and its SLA policies built, as a worker loads it) or fails with a
`RulebookError` whose problems each start with a path, never another exception; and
a hot reload of a broken file leaves the serving rulebook exactly as it was.

Inputs: arbitrary text, arbitrary YAML documents, and mutations of the shipped
`rules/examples/default.yaml`, both of its data (keys deleted, values of the wrong
type, random strings, numbers and nesting, duplicated list items) and of its text
(lines deleted, duplicated or cut, characters inserted). The budgets are fixed and
the examples derandomized, so CI runs the same examples every time.
"""

from __future__ import annotations

import copy
import re
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from monitors.metrics import Metrics
from router.rulebook_source import RulebookSource, Rules
from router.settings import DEFAULT_RULEBOOK
from rules.rulebook import Rulebook, RulebookError

DEFAULT_TEXT = DEFAULT_RULEBOOK.read_text(encoding="utf-8")
DEFAULT_DATA: dict[str, Any] = yaml.safe_load(DEFAULT_TEXT)
SLA = timedelta(minutes=5)


def budget(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# A problem is `path (line N): message`: the path is (root), (yaml), or starts at one
# of the document's top-level keys and goes down by `.key` and `[index]`.
PATH_END = re.compile(r"^([.\[]| \(line \d+\): |: )")


def top_level_keys(text: str) -> list[str]:
    """The document's own top-level keys and the rulebook's fields (a missing one is
    reported at its own path)."""
    fields = list(Rulebook.model_fields)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return fields
    return fields + ([str(key) for key in data] if isinstance(data, dict) else [])


def has_path(problem: str, keys: list[str]) -> bool:
    if problem.startswith(("(root)", "(yaml)")):
        return True
    return any(problem.startswith(key) and PATH_END.match(problem[len(key) :]) for key in keys)


def load(text: str) -> Rules | RulebookError:
    """What a worker does with a rulebook file's text; any other exception escapes."""
    try:
        return Rules.load(text, "fuzz.yaml", SLA)
    except RulebookError as exc:
        return exc


def check_outcome(text: str) -> Rules | RulebookError:
    outcome = load(text)
    if isinstance(outcome, RulebookError):
        assert outcome.problems, "a rejection says why"
        keys = top_level_keys(text)
        for problem in outcome.problems:
            assert has_path(problem, keys), f"problem without a path: {problem!r}"
            assert problem.split(": ", 1)[-1].strip(), f"problem without a message: {problem!r}"
        assert str(outcome).startswith("fuzz.yaml: invalid rulebook:")
    else:
        assert outcome.compiled.version == outcome.book.version, "parsed and compiled together"
    return outcome


# --- arbitrary documents ---------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["", "UTC", "Mars/Olympus", "09:00-18:00", "25:00-26:00", "2026-02-30", "*", "~"])
)
KEYS = sorted({*DEFAULT_DATA, "id", "teams", "team", "rep", "owner", "queue", "when", "assign", "fallback",
               "capacity", "weight", "hours", "name", "skills", "country", "domains", "members"})  # fmt: skip
keys = st.sampled_from(KEYS) | st.text(max_size=12)
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=25,
)


@budget(200)
@given(st.text(max_size=300))
def test_any_text_loads_or_fails_with_paths(text: str) -> None:
    """Arbitrary text (usually not YAML, or not a mapping) never crashes loading."""
    check_outcome(text)


@budget(200)
@given(documents)
def test_any_yaml_document_loads_or_fails_with_paths(document: Any) -> None:
    """Any YAML document (scalars, lists and mappings nested at random, with rulebook
    keys and random ones) loads or fails with RulebookError problems that have paths."""
    check_outcome(yaml.safe_dump(document, allow_unicode=True))


# --- mutations of the shipped rulebook ------------------------------------------


def nodes(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into `data` (dict keys and list indexes), the root excluded."""
    found: list[tuple[Any, ...]] = []
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else []
    for key, value in items:
        found.append((*path, key))
        found += nodes(value, (*path, key))
    return found


ALL_PATHS = nodes(DEFAULT_DATA)


def parent_of(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path[:-1]:
        data = data[part]
    return data


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    data = copy.deepcopy(DEFAULT_DATA)
    for _ in range(draw(st.integers(1, 3))):
        paths = nodes(data)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, last = parent_of(data, path), path[-1]
        op = draw(st.sampled_from(["delete", "replace", "wrap", "duplicate", "rename"]))
        if op == "delete":
            del parent[last]
        elif op == "replace":
            parent[last] = draw(documents)
        elif op == "wrap":  # the right value at the wrong depth
            parent[last] = draw(st.sampled_from([[parent[last]], {"value": parent[last]}]))
        elif op == "duplicate" and isinstance(parent, list):
            parent.insert(last, copy.deepcopy(parent[last]))
        elif op == "rename" and isinstance(parent, dict):
            parent[draw(keys)] = parent.pop(last)
    return data


@budget(100)
@given(mutated())
def test_mutated_default_rulebook_loads_or_fails_with_paths(data: dict[str, Any]) -> None:
    """The shipped rulebook with keys deleted or renamed, values replaced by anything
    (wrong types, random strings and numbers, nesting), wrapped one level deeper or
    duplicated (duplicate ids) loads or fails with path-bearing problems."""
    check_outcome(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))


@st.composite
def mutated_text(draw: st.DrawFn) -> str:
    lines = DEFAULT_TEXT.splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "cut", "insert"]))
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "cut":
            lines = lines[:i]
        else:
            at = draw(st.integers(0, len(lines[i])))
            noise = draw(st.text(alphabet=":-[]{}#&*!|>'\"%@` \t\n,?0123456789abc", min_size=1, max_size=6))
            lines[i] = lines[i][:at] + noise + lines[i][at:]
        if not lines:
            break
    return "".join(lines)


@budget(100)
@given(mutated_text())
def test_mutated_default_rulebook_text_loads_or_fails_with_paths(text: str) -> None:
    """The shipped rulebook's text with lines deleted, duplicated (duplicate keys) or
    cut off, and YAML punctuation inserted, loads or fails with path-bearing problems."""
    check_outcome(text)


def test_mutations_reach_both_outcomes() -> None:
    """The mutation strategies are not vacuous: the default loads, and breaking it is seen."""
    assert isinstance(check_outcome(DEFAULT_TEXT), Rules)
    broken = copy.deepcopy(DEFAULT_DATA)
    del broken["reps"][0]["id"]
    assert isinstance(check_outcome(yaml.safe_dump(broken)), RulebookError)
    assert len(ALL_PATHS) > 500


# --- hot reload ------------------------------------------------------------------


@budget(50)
@given(st.one_of(mutated().map(lambda d: yaml.safe_dump(d, sort_keys=False)), mutated_text()))
def test_reload_applies_a_rulebook_entirely_or_not_at_all(text: str) -> None:
    """Hot reload of a changed file either serves a new rulebook that is exactly the
    file's (book, compiled form and policies from one load), or rejects it and keeps
    serving the very same objects as before: never a partial mix, never an exception."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rulebook.yaml"
        path.write_text(DEFAULT_TEXT, encoding="utf-8")
        source = RulebookSource(path, Metrics(CollectorRegistry()), "router", SLA)
        before = source.current
        path.write_text(text, encoding="utf-8")
        expected = load(text)
        changed = source.reload()
    if text == DEFAULT_TEXT:
        assert changed is False
        assert source.current is before
    elif isinstance(expected, RulebookError):
        assert changed is False
        assert source.current is before, "the old rulebook keeps serving, untouched"
        assert source.version == DEFAULT_DATA["version"]
    else:
        assert changed is True
        assert source.current is not before
        assert source.book == expected.book
        assert source.compiled.version == source.book.version == expected.book.version
        assert source.current.policies.default == expected.policies.default


@pytest.mark.parametrize(
    "text",
    ["", "reps: [", "version: 1\nreps: {}", "\x00", "version: v\nreps: []\nteams: []\nroutes: []\n" * 2],
)
def test_reload_of_a_broken_file_keeps_the_old_rulebook(tmp_path: Path, text: str) -> None:
    """Empty, unparsable, wrongly typed and duplicate-key files are rejected on reload;
    the previous rulebook object keeps serving."""
    path = tmp_path / "rulebook.yaml"
    path.write_text(DEFAULT_TEXT, encoding="utf-8")
    source = RulebookSource(path, Metrics(CollectorRegistry()), "router", SLA)
    before = source.current
    path.write_text(text, encoding="utf-8")
    assert source.reload() is False
    assert source.current is before
