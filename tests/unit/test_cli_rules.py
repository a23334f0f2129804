"""`leadrouter rules check` warnings, `simulate` and hypothetical `explain`: no Kafka, no Redis."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from router.cli import main
from router.settings import DEFAULT_RULEBOOK

EXAMPLES = DEFAULT_RULEBOOK.parent
DOCS = Path(__file__).resolve().parents[2] / "docs" / "rulebook.md"

CLEAN = """version: "1"
reps:
  - {id: ann, teams: [amer], hours: {mon: "09:00-17:00"}}
  - {id: bob, teams: [amer]}
teams: [{id: amer}]
routes:
  - {id: us, when: {country: [US]}, assign: {team: amer}}
  - {id: rest, assign: {queue: triage}}
"""
# Two warnings: a teamless rep and a route after the catch-all.
WARNED = CLEAN.replace("  - {id: bob, teams: [amer]}", "  - {id: bob, teams: [amer]}\n  - {id: zed}") + (
    "  - {id: late, assign: {team: amer}}\n"
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- rules check ---------------------------------------------------------------------


def test_clean_rulebook_prints_ok_and_no_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A rulebook without warnings: `FILE: ok (...)` and nothing else, exit 0, also under --strict."""
    path = write(tmp_path, "clean.yaml", CLEAN)
    assert main(["rules", "check", str(path)]) == 0
    assert main(["rules", "check", "--strict", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"{path}: ok (version 1: 2 reps, 1 teams, 2 routes)"
    assert "warning" not in out


def test_warnings_are_printed_and_exit_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Warnings follow the ok line as `warning: path (line N): message`; the exit is still 0."""
    path = write(tmp_path, "warned.yaml", WARNED)
    assert main(["rules", "check", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{path}: ok (version 1: 3 reps, 1 teams, 3 routes; 2 warnings)"
    assert lines[1].startswith("warning: routes[2] (line 10): route 'late' is unreachable")
    assert lines[2].startswith("warning: reps[2] (line 5): rep 'zed' is in no team")
    assert len(lines) == 3


def test_strict_turns_warnings_into_exit_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--strict` exits 1 when there are warnings, and says why on stderr."""
    path = write(tmp_path, "warned.yaml", WARNED)
    assert main(["rules", "check", "--strict", str(path)]) == 1
    captured = capsys.readouterr()
    assert "warning: " in captured.out
    assert "--strict" in captured.err


@pytest.mark.parametrize("strict", [[], ["--strict"]])
def test_invalid_and_unreadable_keep_their_exit_codes(
    tmp_path: Path, strict: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Invalid is 1 and unreadable is 2, with or without --strict."""
    bad = write(tmp_path, "bad.yaml", CLEAN.replace("team: amer}}", "team: nowhere}}"))
    assert main(["rules", "check", *strict, str(bad)]) == 1
    assert "unknown team 'nowhere'" in capsys.readouterr().err
    assert main(["rules", "check", *strict, str(tmp_path / "missing.yaml")]) == 2


def test_shipped_rulebook_passes_strict(capsys: pytest.CaptureFixture[str]) -> None:
    """The shipped rulebook has no warnings: `rules check --strict` passes."""
    assert main(["rules", "check", "--strict", str(DEFAULT_RULEBOOK)]) == 0
    assert "warning" not in capsys.readouterr().out


# --- simulate ------------------------------------------------------------------------


def test_simulate_ten_thousand_generated_leads(capsys: pytest.CaptureFixture[str]) -> None:
    """`simulate --generate 10000` on the shipped rulebook prints routes, teams, reps, queues,
    capacity hits and fairness, in a few seconds."""
    started = time.perf_counter()
    code = main(["simulate", "--rulebook", str(DEFAULT_RULEBOOK), "--generate", "10000", "--seed", "3"])
    elapsed = time.perf_counter() - started
    out = capsys.readouterr().out
    assert code == 0
    assert "on 10,000 generated leads (seed 3), none touched" in out
    for piece in ("route ", "team ", "fairness spread", "rep ", "queue ", "capacity hits:", "rep-amer-1"):
        assert piece in out
    assert "hint: without --touch-after" in out  # nobody touches: reps fill up
    assert elapsed < 20, f"took {elapsed:.1f}s"  # about 2 s on a laptop; generous for loaded CI


def test_simulate_is_deterministic_by_seed(capsys: pytest.CaptureFixture[str]) -> None:
    """The same seed prints the same report."""
    args = ["simulate", "--rulebook", str(DEFAULT_RULEBOOK), "--generate", "300", "--touch-after", "300"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert main(args) == 0
    assert capsys.readouterr().out == first
    assert "each touched 300s after assignment" in first


def test_simulate_compare_counts_owner_changes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--compare OTHER` prints how many leads change owner and a sample of them."""
    other = write(
        tmp_path,
        "other.yaml",
        DEFAULT_RULEBOOK.read_text().replace("strategy: weighted", "strategy: round_robin"),
    )
    args = ["simulate", "--rulebook", str(other), "--compare", str(DEFAULT_RULEBOOK), "--generate", "500"]
    assert main([*args, "--touch-after", "600"]) == 0
    out = capsys.readouterr().out
    assert f"owner changes from {DEFAULT_RULEBOOK} to {other}: " in out
    assert "first 10 changed leads:" in out
    assert "rep:rep-amer-" in out


def test_simulate_reads_a_lead_file_and_reports_bad_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Leads come from a .jsonl file; bad lines go to stderr with their numbers and are counted."""
    leads = write(
        tmp_path,
        "leads.jsonl",
        '{"id": "a", "country": "US"}\n{"id": "b", "country": "DE"}\n'
        'not json\n{"id": "c", "country": "JP"}\n',
    )
    assert main(["simulate", "--rulebook", str(DEFAULT_RULEBOOK), "--leads", str(leads)]) == 0
    captured = capsys.readouterr()
    assert f"{leads}: line 3: invalid JSON" in captured.err
    assert "skipped 1 bad line(s)" in captured.err
    assert f"on 3 leads from {leads}" in captured.out
    assert "north-america" in captured.out
    assert "asia-pacific" in captured.out


def test_simulate_uses_the_configured_rulebook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --rulebook, LEADROUTER_RULEBOOK is simulated (as the worker would load it)."""
    path = write(tmp_path, "mine.yaml", CLEAN)
    monkeypatch.setenv("LEADROUTER_RULEBOOK", str(path))
    assert main(["simulate", "--generate", "50"]) == 0
    assert f"simulate: {path} (version 1)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        ([], 2, "give either --leads FILE or --generate N"),
        (["--generate", "5", "--leads", "x.jsonl"], 2, "give either"),
        (["--generate", "0"], 2, "N >= 1"),
        (["--leads", "missing.jsonl"], 2, "cannot read"),
        (["--leads", "leads.txt"], 2, "expected a .jsonl or .csv"),
        (["--generate", "5", "--compare", "missing.yaml"], 2, "cannot read"),
    ],
)
def test_simulate_usage_errors(
    args: list[str], code: int, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Usage mistakes exit 2 with a one-line reason, not a traceback."""
    fixed = [str(tmp_path / a) if a.endswith((".jsonl", ".txt", ".yaml")) else a for a in args]
    assert main(["simulate", "--rulebook", str(DEFAULT_RULEBOOK), *fixed]) == code
    assert message in capsys.readouterr().err


def test_simulate_invalid_rulebook_exits_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An invalid rulebook is reported as by `rules check`, exit 1."""
    bad = write(tmp_path, "bad.yaml", CLEAN.replace("team: amer}}", "team: nowhere}}"))
    assert main(["simulate", "--rulebook", str(bad), "--generate", "5"]) == 1
    assert "unknown team 'nowhere'" in capsys.readouterr().err


# --- explain, hypothetical --------------------------------------------------------------


def lead_event(**lead: object) -> str:
    return json.dumps(
        {"event_id": "e1", "type": "lead.created", "occurred_at": "2026-11-23T10:00:00Z", "lead": lead}
    )


def test_explain_a_hypothetical_lead(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`explain --rulebook --lead --at` prints outcome, territories, segments, account, each
    route tried with why, and each candidate's verdict; never the lead's contact details."""
    lead = write(
        tmp_path,
        "lead.json",
        lead_event(
            id="L-1",
            email="pat@somewhere.example",
            phone="+15550001",
            country="US",
            region="CA",
            company={"employees": 400, "name": "Secret Corp"},
        ),
    )
    # Monday 20:00 UTC is 12:00 in Los Angeles: rep-amer-4 works, rep-amer-1 (New York) does not.
    args = [
        "explain",
        "--rulebook",
        str(DEFAULT_RULEBOOK),
        "--lead",
        str(lead),
        "--at",
        "2026-11-23T20:00:00Z",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("lead L-1: assigned to rep-amer-4 (team amer) by route us-west-mid-market\n")
    assert "decided at 2026-11-23T20:00:00+00:00 by rulebook 2026-11-23.1" in out
    assert "territories:   north-america, us-west" in out
    assert "segments:      mid-market" in out
    assert "named account: (none)" in out
    assert "1. named-accounts: skipped, not a named account" in out
    assert ". us-west-mid-market: matched, assigned" in out
    assert "rep-amer-1  lacks a required skill" in out
    assert "rep-amer-3  available, not their turn" in out
    assert "rep-amer-4  picked" in out
    assert "hypothetical" in out
    for pii in ("pat@somewhere.example", "+15550001", "Secret Corp"):
        assert pii not in out


def test_explain_shows_fallthrough_and_a_bare_lead(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bare lead JSON works too; a team with nobody available falls through to the next route."""
    book = write(
        tmp_path,
        "book.yaml",
        CLEAN.replace("{id: bob, teams: [amer]}", "{id: bob, teams: [amer], status: away}"),
    )
    lead = write(tmp_path, "lead.json", json.dumps({"id": "L-2", "country": "US"}))
    # Sunday: ann (Mondays only) is out of hours, bob is away.
    assert (
        main(["explain", "--rulebook", str(book), "--lead", str(lead), "--at", "2026-11-22T12:00:00+00:00"])
        == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("lead L-2: queued on triage by route rest\n")
    assert "1. us: matched, nobody available, falling through" in out
    assert "ann  outside working hours" in out
    assert "bob  away" in out
    assert "2. rest: matched, queued" in out


def test_explain_without_at_uses_the_current_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --at the lead is decided now (the CLI reads the clock, the rules never do)."""
    lead = write(tmp_path, "lead.json", json.dumps({"id": "L-3", "country": "BR"}))
    assert main(["explain", "--rulebook", str(DEFAULT_RULEBOOK), "--lead", str(lead)]) == 0
    assert "lead L-3: assigned to rep-inside-" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give a LEAD_ID"),
        (["L-1", "--lead", "lead.json"], "give a LEAD_ID"),
        (["L-1", "--at", "2026-11-23T10:00:00Z"], "go with --lead"),
        (["--lead", "missing.json"], "cannot read"),
        (["--lead", "broken.json"], "invalid JSON"),
        (["--lead", "noid.json"], "id: Field required"),
    ],
)
def test_explain_usage_errors(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Usage mistakes exit 2 with a one-line reason."""
    write(tmp_path, "lead.json", json.dumps({"id": "L-1"}))
    write(tmp_path, "broken.json", "{")
    write(tmp_path, "noid.json", json.dumps({"country": "US"}))
    fixed = [str(tmp_path / a) if a.endswith(".json") else a for a in args]
    assert main(["explain", *fixed]) == 2
    assert message in capsys.readouterr().err


def test_explain_at_needs_an_offset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A naive --at is refused (aware datetimes only)."""
    lead = write(tmp_path, "lead.json", json.dumps({"id": "L-1"}))
    with pytest.raises(SystemExit) as info:
        main(["explain", "--lead", str(lead), "--at", "2026-11-23T10:00:00"])
    assert info.value.code == 2
    assert "needs a UTC offset" in capsys.readouterr().err


# --- the shipped examples and the documentation ------------------------------------------


def test_example_lead_file_simulates_without_problems(capsys: pytest.CaptureFixture[str]) -> None:
    """rules/examples/leads.csv reads cleanly and every lead is placed by the shipped rulebook."""
    assert main(["simulate", "--leads", str(EXAMPLES / "leads.csv"), "--touch-after", "300"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "assigned 20 (100.0%), queued 0" in captured.out
    assert "named-accounts" in captured.out


def test_documented_explain_output_is_what_explain_prints(capsys: pytest.CaptureFixture[str]) -> None:
    """The `explain` example in docs/rulebook.md is the real output for rules/examples/lead.json."""
    args = ["--lead", "rules/examples/lead.json", "--at", "2026-11-23T20:00:00Z"]
    assert main(["explain", "--lead", str(EXAMPLES / "lead.json"), *args[2:]]) == 0
    printed = capsys.readouterr().out
    doc = DOCS.read_text(encoding="utf-8")
    block = doc.split("$ leadrouter explain " + " ".join(args) + "\n", 1)[1].split("```", 1)[0]
    assert printed == block
