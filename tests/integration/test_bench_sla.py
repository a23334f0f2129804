"""`leadrouter bench sla` against a real redis-server, at a size that runs in seconds."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import redis

from router.cli import main

pytestmark = pytest.mark.integration

TINY = ["--timers", "2000", "--burst", "500", "--rate", "300", "--seconds", "3", "--buckets", "3"]
FIGURES = [
    r"publish is a no-op \(no Kafka\)",
    r"grace of 0\.25 s",
    r"memory per open timer \(due zset entry\)\s+-?[\d,]+ B\s+< 200 B: (ok|MISSED)",
    r"\+ untouched index entry\s+-?[\d,]+ B",
    r"\+ lead record \(7-field hash with TTL\)\s+-?[\d,]+ B",
    r"= per open lead\s+-?[\d,]+ B",
    r"load \(direct, pipelined\)\s+2,000 leads in [\d.]+ s",
    r"steady 300/s due for 3 s: lateness\s+p50 [\d,.]+ m?s, p99 [\d,.]+ m?s, max [\d,.]+ m?s \(n=900\)"
    r"\s+p99 < 1 s: (ok|MISSED)",
    r"burst 500 due at once: all claimed\+acked\s+[\d,.]+ m?s",
    r"lateness\s+p50 [\d,.]+ m?s, p99 [\d,.]+ m?s, max [\d,.]+ m?s \(n=500\)\s+p99 < 2 s: (ok|MISSED)",
    r"p99 \+ grace\s+[\d,.]+ m?s",
    r"CPU\s+redis-server \d+% of a core, sweeper/bench process \d+%",
    r"claimed \(steady \+ burst\)\s+1,400 of 1,400, 0 duplicates",
    r"touch, sequential\s+[\d,]+/s \(n=[\d,]+\)",
    r"touch, 50 concurrent tasks\s+[\d,]+/s \(n=[\d,]+\)",
    r"clocks stopped \(met\)\s+600 of 600",
    r"1-minute load average [\d.]+ before, [\d.]+ after",
]


def _leftover_keys(redis_url: str) -> list[bytes]:
    client = redis.Redis.from_url(redis_url)
    try:
        return [key for pattern in ("bench-sla-*", "{bench-sla-*") for key in client.scan_iter(pattern)]
    finally:
        client.close()


@pytest.mark.timeout(60)
def test_tiny_run_reports_and_records_every_figure(
    redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A tiny run claims every timer that falls due exactly once, prints every figure next to
    its target, appends them to the --record file and leaves no keys behind, within 15 s."""
    record = tmp_path / "benchmarks.md"
    started = time.monotonic()
    code = main(["bench", "sla", *TINY, "--redis-url", redis_url, "--record", str(record)])
    elapsed = time.monotonic() - started
    out = capsys.readouterr().out
    assert code == 0, out
    missing = [figure for figure in FIGURES if not re.search(figure, out)]
    assert not missing, f"missing from the output:\n{missing}\n{out}"
    recorded = record.read_text()
    assert "## sla (" in recorded
    assert all(line in recorded for line in out.splitlines() if line.startswith("  "))
    assert not _leftover_keys(redis_url)
    assert elapsed < 15, f"took {elapsed:.1f} s"


def test_sizes_that_leave_nothing_to_touch_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """More timers falling due than are loaded is a usage error (exit 2), said before any Redis work."""
    assert (
        main(["bench", "sla", "--timers", "1000", "--burst", "500", "--rate", "300", "--seconds", "3"]) == 2
    )
    assert "leaves no open timers to touch" in capsys.readouterr().err
