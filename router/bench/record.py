"""Append a benchmark run to docs/benchmarks.md with the machine and the exact command."""

from __future__ import annotations

import os
import platform
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    system = f"{platform.system()} {platform.release()}"
    return f"{cpu}, {os.cpu_count()} cores, {system}, Python {platform.python_version()}"


def append(path: Path, scenario: str, lines: list[str]) -> None:
    command = "leadrouter " + shlex.join(sys.argv[1:])
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = [f"## {scenario} ({stamp})", "", f"- command: `{command}`", f"- machine: {machine()}", "", "```"]
    block += [*lines, "```", ""]
    if not path.exists():
        path.write_text("# Benchmarks\n\nEvery figure here was produced by the command shown with it.\n\n")
    with path.open("a", encoding="utf-8") as out:
        out.write("\n".join(block) + "\n")
