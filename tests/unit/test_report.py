"""The speed-to-lead report: counts per rep and team from recorded events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rules.events import LeadAssigned, SlaBreached, SlaMet, derived_event_id
from rules.report import aggregate, report_lines

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


DUE = T0 + timedelta(minutes=5)


def who(lead: str, rep: str, team: str, kind: str) -> dict[str, str]:
    return {"event_id": derived_event_id(lead, 1, kind), "lead_id": lead, "rep_id": rep, "team": team}


def assigned(lead: str, rep: str, team: str) -> LeadAssigned:
    return LeadAssigned(
        **who(lead, rep, team, "lead.assigned"), route="r", rulebook_version="v", assigned_at=T0,
        first_touch_due_at=DUE,
    )  # fmt: skip


def met(lead: str, rep: str, team: str, seconds: float, late_arrival: bool = False) -> SlaMet:
    return SlaMet(
        **who(lead, rep, team, "sla.met"), assigned_at=T0, due_at=DUE,
        touched_at=T0 + timedelta(seconds=seconds), response_seconds=seconds, within_sla=seconds <= 300,
        late_arrival=late_arrival,
    )  # fmt: skip


def breached(lead: str, rep: str, team: str) -> SlaBreached:
    return SlaBreached(**who(lead, rep, team, "sla.breached"), assigned_at=T0, due_at=DUE, detected_at=DUE)


def test_counts_per_rep_team_and_total() -> None:
    """Assigned, touched, in-SLA share and breaches add up per rep, per team and overall;
    a copy of an event (same id) counts once; a late arrival is not in SLA."""
    events = [
        assigned("a", "ann", "amer"), met("a", "ann", "amer", 60),
        assigned("b", "ann", "amer"), breached("b", "ann", "amer"), met("b", "ann", "amer", 400),
        assigned("c", "bob", "amer"), breached("c", "bob", "amer"),
        met("c", "bob", "amer", 200, late_arrival=True),
        assigned("d", "eve", "emea"), assigned("d", "eve", "emea"),  # a copy
    ]  # fmt: skip
    report = aggregate(events)
    ann, bob, eve = report.by_rep["ann"], report.by_rep["bob"], report.by_rep["eve"]
    assert (ann.assigned, ann.touched, ann.within, ann.breached) == (2, 2, 1, 1)
    assert (bob.assigned, bob.touched, bob.within, bob.breached) == (1, 1, 0, 1)
    assert (eve.assigned, eve.touched, eve.breached) == (1, 0, 0)
    assert ann.share_within == 0.5
    assert eve.share_within is None
    amer = report.by_team["amer"]
    assert (amer.assigned, amer.breached) == (3, 2)
    assert amer.quantile(0.5) == 200
    assert report.total.assigned == 4


def test_report_lines_show_every_rep_and_team() -> None:
    """The printed report has a row per team and per rep, and a total."""
    lines = report_lines(aggregate([assigned("a", "ann", "amer"), met("a", "ann", "amer", 61)]))
    text = "\n".join(lines)
    assert "amer" in text
    assert "ann" in text
    assert lines[-1].startswith("all")
    assert "61s" in text
