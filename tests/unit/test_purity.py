"""`rules/` is pure: it imports nothing that does I/O and never reads the clock.

The checks walk every module's AST, so a forbidden import hidden inside a
function or behind `if TYPE_CHECKING` is caught too. The checkers themselves are
tested on small snippets, so a broken checker cannot pass silently.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

RULES = Path(__file__).resolve().parents[2] / "rules"

# Top-level modules that do I/O, talk to a network, or read the clock or entropy.
FORBIDDEN_MODULES = frozenset(
    {
        "kafka",
        "aiokafka",
        "faust",
        "redis",
        "prometheus_client",
        "aiohttp",
        "os",
        "time",
        "socket",
        "subprocess",
        "pathlib",
        "asyncio",
        "random",
        # Same spirit: files, threads, HTTP and dynamic imports.
        "io",
        "shutil",
        "threading",
        "multiprocessing",
        "urllib",
        "http",
        "httpx",
        "requests",
        "importlib",
    }
)

# `receiver.attr(` calls that read the clock.
CLOCK_CALLS = frozenset(
    {
        ("datetime", "now"),
        ("datetime", "utcnow"),
        ("datetime", "today"),
        ("date", "today"),
        ("time", "time"),
        ("time", "monotonic"),
        ("time", "perf_counter"),
        ("time", "time_ns"),
    }
)


def rules_modules() -> list[Path]:
    return sorted(RULES.rglob("*.py"))


def forbidden_imports(source: str) -> list[str]:
    """`line: module` for every import of a forbidden top-level module."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [f"{node.lineno}: {n}" for n in names if n.split(".")[0] in FORBIDDEN_MODULES]
    return found


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner else None
    return None


def clock_reads(source: str) -> list[str]:
    """`line: call` for every call such as `datetime.now(` or `datetime.datetime.utcnow(`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        receiver = _dotted(node.func.value)
        if receiver is None:
            continue
        if (receiver.rsplit(".", 1)[-1], node.func.attr) in CLOCK_CALLS:
            found.append(f"{node.lineno}: {receiver}.{node.func.attr}(")
    return found


def test_rules_has_modules_to_check() -> None:
    """The walk finds the rules modules (an empty walk would pass vacuously)."""
    names = {p.name for p in rules_modules()}
    assert {"__init__.py", "decide.py", "events.py", "rulebook.py", "sla.py"} <= names


@pytest.mark.parametrize("path", rules_modules(), ids=lambda p: str(p.relative_to(RULES)))
def test_rules_module_imports_nothing_with_io(path: Path) -> None:
    """No module under rules/ imports an I/O, network, process or clock module."""
    assert forbidden_imports(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("path", rules_modules(), ids=lambda p: str(p.relative_to(RULES)))
def test_rules_module_never_reads_the_clock(path: Path) -> None:
    """No module under rules/ calls datetime.now, utcnow, date.today or time.time: now is passed in."""
    assert clock_reads(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import os", ["1: os"]),
        ("import os.path", ["1: os.path"]),
        ("from os import environ", ["1: os"]),
        ("import redis.asyncio as r", ["1: redis.asyncio"]),
        ("from aiokafka import AIOKafkaConsumer", ["1: aiokafka"]),
        ("import json, socket", ["1: socket"]),
        ("def f():\n    import random\n", ["2: random"]),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pathlib\n", ["3: pathlib"]),
        ("from prometheus_client import Counter", ["1: prometheus_client"]),
        ("import time", ["1: time"]),
        ("from datetime import datetime, timedelta", []),
        ("import yaml\nimport pydantic\nfrom typing import Any", []),
        ("import dataclasses, collections.abc, uuid, re", []),
        ("from . import events\nfrom .os import thing", []),
        ("import timeit_like_name_osx", []),
    ],
)
def test_import_checker_flags_exactly_the_forbidden_modules(source: str, expected: list[str]) -> None:
    """The import checker flags I/O modules at any depth and lets pure ones through."""
    assert forbidden_imports(source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("datetime.now(UTC)", ["1: datetime.now("]),
        ("datetime.utcnow()", ["1: datetime.utcnow("]),
        ("datetime.datetime.now()", ["1: datetime.datetime.now("]),
        ("date.today()", ["1: date.today("]),
        ("x = 1\ntime.time()", ["2: time.time("]),
        ("time.monotonic()", ["1: time.monotonic("]),
        ("now + timedelta(seconds=1)", []),
        ("lead.time.isoformat()", []),
        ("datetime(2026, 1, 1, tzinfo=UTC)", []),
        ("datetime.fromisoformat(s)", []),
    ],
)
def test_clock_checker_flags_clock_reads_only(source: str, expected: list[str]) -> None:
    """The clock checker flags reads of the current time and ignores datetime arithmetic."""
    assert clock_reads(source) == expected
