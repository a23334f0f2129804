"""Scenario `decide`: pure routing decisions per second on one core."""

from __future__ import annotations

import time
from dataclasses import dataclass

from router.bench.synthetic import leads, rulebook
from rules.compiled import compile_rulebook
from rules.decide import decide
from rules.rulebook import Rulebook
from rules.selection import RepState


@dataclass(frozen=True)
class DecideResult:
    reps: int
    routes: int
    accounts: int
    decisions: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.decisions / self.seconds

    def lines(self) -> list[str]:
        return [
            f"decide: {self.reps} reps, {self.routes} routes, {self.accounts} named accounts",
            f"  {self.decisions} decisions in {self.seconds:.3f} s on one core: "
            f"{self.per_second:,.0f} decisions/s ({1e6 / self.per_second:.1f} us each)",
        ]


def run(reps: int = 200, routes: int = 50, accounts: int = 2000, count: int = 20_000) -> DecideResult:
    book = compile_rulebook(Rulebook.model_validate(rulebook(reps, routes, accounts)))
    stream = leads(count, accounts)
    state = RepState()
    for lead, at in stream[:500]:  # warm caches (calendars, holiday tables)
        decide(lead, book, state, at)
    started = time.perf_counter()
    for lead, at in stream:
        decide(lead, book, state, at)
    return DecideResult(reps, len(book.book.routes), accounts, count, time.perf_counter() - started)
