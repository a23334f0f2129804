"""The live rulebook of a worker: loaded at start, swapped atomically on change.

A changed file (checked every few seconds, or at once on SIGHUP) is parsed and
compiled off to the side; only a valid rulebook replaces the one serving. An
invalid one is rejected with its errors logged and the previous one keeps
serving. Content, not mtime, decides "changed": a Kubernetes ConfigMap update
swaps a symlink and may keep timestamps.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from monitors.metrics import Metrics
from router.logs import log
from rules.compiled import CompiledRulebook, compile_rulebook
from rules.policies import PolicyBook, default_policy
from rules.rulebook import Rulebook, RulebookError, parse_rulebook

logger = logging.getLogger("leadrouter.rulebook")


@dataclass(frozen=True, slots=True)
class Rules:
    """One loaded rulebook: parsed, compiled for decisions, and its SLA policies."""

    book: Rulebook
    compiled: CompiledRulebook
    policies: PolicyBook

    @classmethod
    def load(cls, text: str, source: str, default_sla: timedelta) -> Rules:
        book = parse_rulebook(text, source)
        return cls(book, compile_rulebook(book), PolicyBook(book.sla_policies, default_policy(default_sla)))


class RulebookSource:
    def __init__(self, path: Path, metrics: Metrics, role: str, default_sla: timedelta) -> None:
        self.path = path
        self._metrics = metrics
        self._role = role
        self._default_sla = default_sla
        text = path.read_text(encoding="utf-8")
        self.current = Rules.load(text, str(path), default_sla)
        self._digest = hashlib.sha256(text.encode()).hexdigest()
        metrics.worker_info.labels(role, self.book.version).set(1)

    @property
    def book(self) -> Rulebook:
        return self.current.book

    @property
    def compiled(self) -> CompiledRulebook:
        return self.current.compiled

    @property
    def version(self) -> str:
        return self.book.version

    def reload(self) -> bool:
        """Load the file if its content changed; True if a new rulebook now serves."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError as exc:
            log(logger, "rulebook.unreadable", logging.ERROR, path=str(self.path), error=exc.strerror)
            self._metrics.rulebook_reloads.labels("rejected").inc()
            return False
        digest = hashlib.sha256(text.encode()).hexdigest()
        if digest == self._digest:
            return False
        self._digest = digest  # a rejected file is not retried until it changes again
        try:
            rules = Rules.load(text, str(self.path), self._default_sla)
        except RulebookError as exc:
            self._metrics.rulebook_reloads.labels("rejected").inc()
            log(logger, "rulebook.rejected", logging.ERROR, path=str(self.path),
                serving=self.book.version, problems=list(exc.problems)[:20])  # fmt: skip
            return False
        previous = self.book.version
        self.current = rules  # one assignment: readers see the old rules or the new, never a mix
        self._metrics.worker_info.remove(self._role, previous)
        self._metrics.worker_info.labels(self._role, rules.book.version).set(1)
        self._metrics.rulebook_reloads.labels("ok").inc()
        log(logger, "rulebook.reloaded", previous=previous, version=rules.book.version)
        return True

    async def watch(self, stop: asyncio.Event, wake: asyncio.Event, interval: float = 2.0) -> None:
        """Reload every `interval` seconds, or at once when `wake` is set (SIGHUP)."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_first(stop, wake), timeout=interval)
            wake.clear()
            if not stop.is_set():
                self.reload()


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
