"""`make audit` (tests/deploy/audit.py): what it audits and how it reads the allow-list.

pip-audit itself needs PyPI's per-release JSON API, which these machines cannot reach
(docs/deploy.md, "Dependency audit"), so the audit is not part of `make test`; these
tests keep its inputs right.
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pytest

from tests.deploy.audit import (
    ALLOW_LIST,
    AllowListError,
    audit_command,
    read_allow_list,
    runtime_requirements,
)


def test_requirements_are_the_installed_runtime_closure_without_dev_tools() -> None:
    """Every runtime dependency, direct or transitive, pinned at its installed version;
    no dev tool (they never ship in the image) and not leadrouter itself."""
    pinned = dict(line.split("==") for line in runtime_requirements())
    for direct in (
        "aiokafka",
        "redis",
        "pydantic",
        "pydantic-settings",
        "faust-streaming",
        "aiohttp",
        "orjson",
    ):
        assert pinned[direct] == version(direct)
    assert pinned["pydantic-core"] == version("pydantic-core"), "transitive dependencies too"
    assert not {"pytest", "hypothesis", "ruff", "mypy", "fakeredis", "pip-audit", "leadrouter"} & set(pinned)


def test_shipped_allow_list_parses_and_every_entry_has_a_reason(tmp_path: Path) -> None:
    """The shipped allow-list is valid; entries are `ID reason`, comments and blank lines
    are skipped, and an entry without a reason is refused with its line number."""
    read_allow_list(ALLOW_LIST)
    good = tmp_path / "allow.txt"
    good.write_text("# comment\n\nGHSA-abcd-efgh-ijkl  only in the CLI's unused X path (2026-11-23)\n")
    assert read_allow_list(good) == {"GHSA-abcd-efgh-ijkl": "only in the CLI's unused X path (2026-11-23)"}
    bad = tmp_path / "bad.txt"
    bad.write_text("# comment\nPYSEC-2024-1\n")
    with pytest.raises(AllowListError, match=r"bad.txt:2: expected `VULN-ID  reason`"):
        read_allow_list(bad)


def test_audit_is_strict_and_ignores_only_the_allowed_ids(tmp_path: Path) -> None:
    """pip-audit runs --strict (a package it cannot look up fails the audit rather than
    passing unaudited) on the pinned list without resolving, ignoring each allowed id."""
    cmd = audit_command(tmp_path / "r.txt", {"PYSEC-2024-1": "why", "GHSA-a-b-c": "why"})
    assert cmd[1:3] == ["-m", "pip_audit"]
    assert "--strict" in cmd
    assert {"--disable-pip", "--no-deps"} <= set(cmd)
    assert [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "--ignore-vuln"] == [
        "GHSA-a-b-c",
        "PYSEC-2024-1",
    ]
