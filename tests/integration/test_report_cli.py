"""`leadrouter report` reads recorded events back from a real broker."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaProducer

from router.cli import main
from router.codec import encode
from router.devinfra import ensure_topics
from router.settings import TopicSettings
from rules.events import LeadAssigned, SlaBreached, SlaMet, derived_event_id

pytestmark = pytest.mark.integration


async def test_report_counts_recorded_outcomes(
    kafka_bootstrap: str,
    topic_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Assignments and SLA outcomes published in the period show up per rep and team."""
    topics = TopicSettings(prefix=topic_prefix, partitions=2)
    await ensure_topics(kafka_bootstrap, topics.all_topics())
    now = datetime.now(UTC)
    due = now + timedelta(minutes=5)
    events: list[tuple[str, LeadAssigned | SlaMet | SlaBreached]] = []
    for i, rep in enumerate(["ann", "ann", "bob"]):
        lead = f"r-{i}"
        who = {"lead_id": lead, "rep_id": rep, "team": "amer"}
        assigned = LeadAssigned(event_id=derived_event_id(lead, 1, "lead.assigned"), **who, route="r",
                                rulebook_version="v", assigned_at=now, first_touch_due_at=due)  # fmt: skip
        events.append(("assignments", assigned))
        outcome: SlaMet | SlaBreached
        if rep == "ann":
            touched = now + timedelta(seconds=42)
            met_id = derived_event_id(lead, 1, "sla.met")
            outcome = SlaMet(event_id=met_id, **who, assigned_at=now, due_at=due, touched_at=touched,
                             response_seconds=42.0, within_sla=True)  # fmt: skip
        else:
            outcome = SlaBreached(event_id=derived_event_id(lead, 1, "sla.breached"), **who, assigned_at=now,
                                  due_at=due, detected_at=due)  # fmt: skip
        events.append(("sla-events", outcome))
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for topic, event in events:
            await producer.send_and_wait(topics.name(topic), encode(event), key=event.lead_id.encode())
    finally:
        await producer.stop()
    monkeypatch.setenv("LEADROUTER_KAFKA__BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("LEADROUTER_TOPICS__PREFIX", topic_prefix)
    assert await asyncio.to_thread(main, ["report", "--since", "1h"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.split()}
    assert rows["ann"][:2] == ["2", "2"], out  # assigned, touched
    assert rows["ann"][4] == "100%"
    assert rows["bob"][-1] == "1", out  # breached
    assert rows["all"][0] == "3"
