"""Webhook payloads for SLA alerts: a Slack-compatible one and a generic JSON one.

Pure: events in, a JSON-ready dict out. Only ids, teams, policies and times go
into a message (never a lead's contact details), so a chat channel is no new
place for personal data to leak to.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter

from rules.events import SlaBreached, SlaEscalated, SlaWarning

AlertEvent = SlaWarning | SlaBreached | SlaEscalated
ALERT = TypeAdapter(Annotated[AlertEvent, Field(discriminator="type")])
AlertType = Literal["sla.warning", "sla.breached", "sla.escalated"]
ALERT_TYPES: tuple[AlertType, ...] = ("sla.warning", "sla.breached", "sla.escalated")
Format = Literal["slack", "json"]

# A digest names this many leads; the rest are counted. Chat messages have size
# limits (Slack: 40,000 characters), and nobody reads a list of ten thousand.
DIGEST_LISTED = 20


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%SZ") if moment.utcoffset() is not None else moment.isoformat()


def alert_line(event: AlertEvent) -> str:
    """One line of plain text about one alert."""
    who = f"lead {event.lead_id} (rep {event.rep_id}, team {event.team}, attempt {event.attempt})"
    due = f"due {_time(event.due_at)}, policy {event.policy}"
    if isinstance(event, SlaBreached):
        return f":rotating_light: SLA breached: {who} has no first touch; {due}"
    if isinstance(event, SlaWarning):
        return f":warning: SLA at risk: {who} is still untouched; {due}"
    step = f"step {event.level + 1}: {event.action.replace('_', ' ')}"
    contact = f" (contact {event.contact})" if event.contact else ""
    return f":arrow_double_up: SLA escalation {step}{contact} for {who}; {due}"


def digest_line(team: str, count: int, window_seconds: float) -> str:
    return f":rotating_light: {count} SLA breaches in team {team} within {window_seconds:g} s"


def alert_payload(fmt: Format, team: str, event: AlertEvent) -> dict[str, Any]:
    """The body of the webhook call for one alert."""
    if fmt == "slack":
        return {"text": alert_line(event)}
    return {"kind": "alert", "alert_id": event.alert_id, "team": team, "event": _dumped(event)}


def digest_payload(
    fmt: Format, team: str, alert_ids: Sequence[str], sample: Sequence[AlertEvent], window_seconds: float
) -> dict[str, Any]:
    """The body of one call for a burst of breaches: every alert id, a few named leads."""
    listed = list(sample[:DIGEST_LISTED])
    count = len(alert_ids)
    if fmt == "slack":
        lines = [digest_line(team, count, window_seconds)]
        lines += [f"• lead {e.lead_id} (rep {e.rep_id}), due {_time(e.due_at)}" for e in listed]
        if count > len(listed):
            lines.append(f"… and {count - len(listed)} more")
        return {"text": "\n".join(lines)}
    return {
        "kind": "digest",
        "team": team,
        "count": count,
        "window_seconds": window_seconds,
        "alert_ids": list(alert_ids),
        "events": [_dumped(e) for e in listed],
    }


def _dumped(event: AlertEvent) -> dict[str, Any]:
    return event.model_dump(mode="json")
