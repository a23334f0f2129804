"""Hot reload: a valid changed rulebook replaces the serving one; an invalid one never does."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry

from monitors.metrics import Metrics
from router.rulebook_source import RulebookSource

BOOK = """
version: "{version}"
reps: [{{id: a, teams: [t]}}]
teams: [{{id: t}}]
routes: [{{id: all, assign: {{team: t}}}}]
"""


def source(tmp_path: Path) -> tuple[RulebookSource, Path, Metrics]:
    path = tmp_path / "rulebook.yaml"
    path.write_text(BOOK.format(version="v1"))
    metrics = Metrics(CollectorRegistry())
    return RulebookSource(path, metrics, "router", timedelta(minutes=5)), path, metrics


def reloads(metrics: Metrics, result: str) -> float:
    return float(metrics.rulebook_reloads.labels(result)._value.get())


def test_unchanged_file_is_not_reloaded(tmp_path: Path) -> None:
    """Rewriting the same content changes nothing."""
    rules, path, metrics = source(tmp_path)
    path.write_text(BOOK.format(version="v1"))
    assert rules.reload() is False
    assert reloads(metrics, "ok") == 0


def test_changed_file_swaps_book_and_compiled_together(tmp_path: Path) -> None:
    """A valid change serves the new version; worker_info moves to it."""
    rules, path, metrics = source(tmp_path)
    path.write_text(BOOK.format(version="v2"))
    assert rules.reload() is True
    assert rules.version == "v2"
    assert rules.compiled.version == "v2"
    assert reloads(metrics, "ok") == 1
    info = {s.labels["rulebook_version"] for s in next(iter(metrics.worker_info.collect())).samples}
    assert info == {"v2"}


def test_invalid_file_is_rejected_and_old_book_keeps_serving(tmp_path: Path) -> None:
    """An invalid rulebook is rejected with its errors; the previous one keeps serving."""
    rules, path, metrics = source(tmp_path)
    path.write_text(BOOK.format(version="v2").replace("team: t}", "team: ghost}"))
    assert rules.reload() is False
    assert rules.version == "v1"
    assert reloads(metrics, "rejected") == 1
    path.write_text("not: [valid")
    assert rules.reload() is False
    assert rules.version == "v1"
    path.unlink()
    assert rules.reload() is False, "a vanished file keeps the old rulebook too"


async def test_watch_reloads_on_wake_without_waiting(tmp_path: Path) -> None:
    """SIGHUP (the wake event) reloads at once, not at the next interval."""
    rules, path, _ = source(tmp_path)
    stop, wake = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(rules.watch(stop, wake, interval=60))
    path.write_text(BOOK.format(version="v3"))
    wake.set()
    for _ in range(100):
        if rules.version == "v3":
            break
        await asyncio.sleep(0.01)
    stop.set()
    await task
    assert rules.version == "v3"
