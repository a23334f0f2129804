"""Speed-to-lead report per rep and team, from the recorded events (not from metrics).

Copies of an event (same event_id) count once. Shares are of leads with an
outcome: met in time, or breached.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from rules.events import LeadAssigned, SlaBreached, SlaMet


@dataclass
class Stats:
    assigned: int = 0
    touched: int = 0
    within: int = 0
    breached: int = 0
    responses: list[float] = field(default_factory=list)

    @property
    def share_within(self) -> float | None:
        decided = self.within + self.breached
        return self.within / decided if decided else None

    def quantile(self, q: float) -> float | None:
        if not self.responses:
            return None
        ordered = sorted(self.responses)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Report:
    by_rep: dict[str, Stats] = field(default_factory=dict)
    by_team: dict[str, Stats] = field(default_factory=dict)
    total: Stats = field(default_factory=Stats)


def aggregate(events: Iterable[LeadAssigned | SlaMet | SlaBreached]) -> Report:
    report = Report()
    seen: set[str] = set()
    for event in events:
        if event.event_id in seen:
            continue
        seen.add(event.event_id)
        for stats in (
            report.by_rep.setdefault(event.rep_id, Stats()),
            report.by_team.setdefault(event.team, Stats()),
            report.total,
        ):
            if isinstance(event, LeadAssigned):
                stats.assigned += 1
            elif isinstance(event, SlaMet):
                stats.touched += 1
                stats.responses.append(event.response_seconds)
                stats.within += event.within_sla and not event.late_arrival
            else:
                stats.breached += 1
    return report


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.0f}s" if seconds < 600 else f"{seconds / 60:.1f}m"


def _row(name: str, s: Stats) -> str:
    share = "-" if s.share_within is None else f"{s.share_within:.0%}"
    return (
        f"{name:<24} {s.assigned:>8} {s.touched:>8} {_fmt(s.quantile(0.5)):>8} {_fmt(s.quantile(0.9)):>8} "
        f"{share:>8} {s.breached:>8}"
    )


def report_lines(report: Report) -> list[str]:
    head = f"{'':<24} {'assigned':>8} {'touched':>8} {'median':>8} {'p90':>8} {'in SLA':>8} {'breached':>8}"
    lines = ["by team", head]
    lines += [_row(team, s) for team, s in sorted(report.by_team.items())]
    lines += ["", "by rep", head]
    lines += [_row(rep, s) for rep, s in sorted(report.by_rep.items())]
    lines += ["", _row("all", report.total)]
    return lines
