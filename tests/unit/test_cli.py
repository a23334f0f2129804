"""The CLI commands that need no infrastructure."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.cli import main
from router.settings import DEFAULT_RULEBOOK


def test_rules_check_accepts_the_shipped_rulebook(capsys: pytest.CaptureFixture[str]) -> None:
    """`leadrouter rules check` on the example rulebook exits 0 and summarises it."""
    assert main(["rules", "check", str(DEFAULT_RULEBOOK)]) == 0
    out = capsys.readouterr().out
    assert ": ok (version " in out
    assert "reps" in out


def test_rules_check_reports_every_problem_with_its_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A broken rulebook exits 1 and lists each problem as `path (line N): message`."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\n"
        "reps: [{id: a, teams: [ghost]}, {id: a, teams: [t]}]\n"
        "teams: [{id: t}]\n"
        "routes: [{id: r, assign: {team: nowhere}}]\n"
    )
    assert main(["rules", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "reps[1].id (line 2): duplicate id 'a'" in err
    assert "reps[0].teams[0] (line 2): unknown team 'ghost'" in err
    assert "routes[0].assign.team (line 4): unknown team 'nowhere'" in err


def test_rules_check_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file that cannot be read is a usage error (exit 2), not a traceback."""
    assert main(["rules", "check", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_schemas_check_passes_on_the_checked_in_files() -> None:
    """`leadrouter schemas --check` exits 0 while docs/schemas matches the models."""
    assert main(["schemas", "--check"]) == 0
