"""Webhook payloads: Slack text and generic JSON, one alert or a digest; no PII."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from router.codec import decode_sla_event, encode
from router.errors import InvalidEvent
from router.settings import Settings, WebhookEndpoint
from rules.events import SlaBreached, SlaEscalated, SlaWarning, derived_event_id
from rules.notify import DIGEST_LISTED, alert_payload, digest_payload

AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DUE = datetime(2026, 11, 23, 12, 5, tzinfo=UTC)


def breach(lead: str = "L-1") -> SlaBreached:
    event_id = derived_event_id(lead, 1, "sla.breached")
    return SlaBreached(event_id=event_id, alert_id=event_id, lead_id=lead, rep_id="r-7", team="emea",
                       assigned_at=AT, due_at=DUE, detected_at=DUE, policy="web")  # fmt: skip


def test_slack_alert_names_the_lead_rep_team_and_deadline() -> None:
    """A Slack payload is one `text` line with ids and the deadline, nothing personal."""
    body = alert_payload("slack", "emea", breach())
    assert body == {
        "text": ":rotating_light: SLA breached: lead L-1 (rep r-7, team emea, attempt 1) has no first touch; "
        "due 2026-11-23 12:05:00Z, policy web"
    }


def test_json_alert_carries_the_event_and_its_alert_id() -> None:
    """The generic payload wraps the published event unchanged, so receivers parse one contract."""
    event = breach()
    body = alert_payload("json", "emea", event)
    assert body["kind"] == "alert"
    assert body["alert_id"] == event.alert_id
    assert body["event"] == json.loads(encode(event))


@pytest.mark.parametrize(
    ("event", "words"),
    [
        (SlaWarning(event_id="w", alert_id="w", lead_id="L", rep_id="r", team="t", policy="p", assigned_at=AT,
                    due_at=DUE, warned_at=AT), "SLA at risk"),
        (SlaEscalated(event_id="e", alert_id="e", lead_id="L", rep_id="r", team="t", policy="p", level=1,
                      action="notify_contact", contact="ops-lead", due_at=DUE, escalated_at=DUE),
         "escalation step 2: notify contact (contact ops-lead)"),
    ],
)  # fmt: skip
def test_every_alert_kind_has_its_own_wording(event: SlaWarning | SlaEscalated, words: str) -> None:
    """Warnings and escalations read differently from breaches."""
    assert words in alert_payload("slack", "t", event)["text"]


def test_a_digest_counts_every_breach_and_names_a_few() -> None:
    """A burst is one message: the count, the first leads by name, and how many more."""
    events = [breach(f"L-{i}") for i in range(30)]
    ids = [e.alert_id for e in events]
    slack = digest_payload("slack", "emea", ids, events, 60)["text"]
    assert slack.startswith(":rotating_light: 30 SLA breaches in team emea within 60 s")
    assert slack.count("• lead") == DIGEST_LISTED
    assert slack.endswith(f"… and {30 - DIGEST_LISTED} more")
    generic = digest_payload("json", "emea", ids, events[:5], 60)
    assert generic["count"] == 30
    assert generic["alert_ids"] == ids
    assert len(generic["events"]) == 5


def test_sla_events_decode_at_the_boundary() -> None:
    """The notifier parses sla-events like any input: a bad record is an InvalidEvent with a reason."""
    event = breach()
    assert decode_sla_event(b"L-1", encode(event)) == event
    with pytest.raises(InvalidEvent) as wrong_key:
        decode_sla_event(b"L-2", encode(event))
    assert wrong_key.value.reason == "bad_key"
    with pytest.raises(InvalidEvent) as unknown:
        decode_sla_event(b"L-1", b'{"type": "lead.assigned"}')
    assert unknown.value.reason == "unknown_type"


def test_webhook_settings_from_json_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Endpoints come as JSON in one variable; '*' serves teams without their own; the URL stays secret."""
    monkeypatch.setenv(
        "LEADROUTER_WEBHOOKS__ENDPOINTS",
        '{"emea": {"url": "https://hooks.example/T1", "format": "slack"}, "*": {"url": "http://h/x"}}',
    )
    hooks = Settings().webhooks
    emea = hooks.endpoint("emea")
    assert emea is not None
    assert emea.format == "slack"
    fallback = hooks.endpoint("amer")
    assert fallback is not None
    assert fallback.format == "json"
    assert fallback.kinds == ("sla.breached", "sla.escalated")
    assert "hooks.example" not in repr(hooks)


def test_a_webhook_url_must_be_http() -> None:
    """A typo in the scheme fails at start-up, not at the first breach."""
    with pytest.raises(ValueError, match="http"):
        WebhookEndpoint.model_validate({"url": "hooks.example/T1"})
