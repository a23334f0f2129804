"""`leadrouter bench pipeline` against a real broker and redis-server, at a size that runs in seconds."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import redis

from router.cli import main

pytestmark = pytest.mark.integration

TINY = [
    "--count",
    "300",
    "--rates",
    "50,200",
    "--duration",
    "1",
    "--partitions",
    "2",
    "--drain-seconds",
    "60",
]
MS = r"[\d,.]+ m?s"
FIGURES = [
    r"pipeline: one router process \(subprocess\) vs a bare aiokafka consume-and-produce loop",
    r"rulebook: synthetic, 200 reps, 50 routes, 2,000 named accounts",
    r"1-minute load average [\d.]+ before, [\d.]+ after",
    r"max sustained \(300 leads\)\s+[\d,]+ leads/s\s+[\d,]+ records/s",
    r"share of the ceiling\s+\d+%\s+>= 50%: (ok|MISSED)",
    rf"latency while saturated\s+p50 {MS}, p99 {MS}, max {MS}\s+p50 {MS}, p99 {MS}, max {MS}",
    r"CPU of the process\s+\d+% of a core\s+\d+% of a core",
    r"CPU per lead\s+[\d,]+ us\s+[\d,]+ us",
    rf"50/s for 1 s \(n=50\)\s+p50 {MS}, p99 {MS}, max {MS}\s+p50 {MS}",
    rf"200/s for 1 s \(n=200\)\s+p50 {MS}, p99 {MS}, max {MS}\s+p50 {MS}",
]


def _leftover_keys(redis_url: str) -> list[bytes]:
    client = redis.Redis.from_url(redis_url)
    try:
        return list(client.scan_iter("bench-pipeline-*"))
    finally:
        client.close()


@pytest.mark.timeout(170)
def test_tiny_run_reports_and_records_every_figure(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A tiny run routes every lead through a real router process and the bare loop, prints
    every figure beside its target, appends them to the --record file, and leaves no
    Redis keys behind."""
    record = tmp_path / "benchmarks.md"
    started = time.monotonic()
    args = ["bench", "pipeline", *TINY, "--kafka", kafka_bootstrap, "--redis-url", redis_url]
    code = main([*args, "--record", str(record)])
    elapsed = time.monotonic() - started
    out = capsys.readouterr().out
    assert code == 0, out
    missing = [figure for figure in FIGURES if not re.search(figure, out)]
    assert not missing, f"missing from the output:\n{missing}\n{out}"
    assert "MISSING" not in out, out
    recorded = record.read_text()
    assert "## pipeline (" in recorded
    assert all(line in recorded for line in out.splitlines() if line.startswith("  "))
    assert not _leftover_keys(redis_url)
    assert elapsed < 150, f"took {elapsed:.1f} s"


def test_bad_sizes_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """Non-positive sizes are a usage error (exit 2), said before any Kafka or Redis work."""
    assert main(["bench", "pipeline", "--count", "0"]) == 2
    assert "must be positive" in capsys.readouterr().err


@pytest.mark.timeout(170)
def test_tiny_scale_run_reports_each_process_count(
    kafka_bootstrap: str, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """bench scale routes every lead with one and with two router processes in one group."""
    args = ["bench", "scale", "--processes", "1,2", "--partitions", "2", "--count", "200", "--rate", "100"]
    args += ["--duration", "1", "--drain-seconds", "60", "--kafka", kafka_bootstrap, "--redis-url", redis_url]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert re.search(r"scale: 1, 2 router processes .* on topics of 2 partitions", out), out
    for n in (1, 2):
        assert re.search(rf"\n  {n}\s+[\d,]+ leads/s\s+\d+% core\s+[\d,]+ us\s+p50 {MS}, p99 {MS}", out), out
    assert "MISSING" not in out, out
    assert not _leftover_keys(redis_url)
