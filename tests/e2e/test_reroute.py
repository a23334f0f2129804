"""`reroute_on_update`: an update that changes an untouched lead's routing fields moves it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from router.devinfra import ensure_topics
from router.settings import TopicSettings
from tests.workers import next_events, workers_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

RULEBOOK = """
version: rr-1
reroute_on_update: true
reps: [{id: us-1, teams: [us]}, {id: de-1, teams: [de]}]
teams: [{id: us}, {id: de}]
routes:
  - {id: us, when: {country: US}, assign: {team: us}}
  - {id: de, when: {country: DE}, assign: {team: de}}
"""


def lead(kind: str, country: str, tag: str) -> bytes:
    return orjson.dumps({"event_id": f"L-{tag}", "type": kind, "occurred_at": datetime.now(UTC).isoformat(),
                         "lead": {"id": "L", "country": country, "email": "pat@acme.example"}})  # fmt: skip


async def test_update_moves_an_untouched_lead_once(
    kafka_bootstrap: str, redis_url: str, topic_prefix: str, redis_prefix: str, tmp_path: Path
) -> None:
    """An update with the same routing fields changes nothing; one that moves the lead
    to Germany reroutes it (lead.reassigned + lead.assigned attempt 2 to the DE team);
    once touched, further updates leave it where it is."""
    topics = TopicSettings(prefix=topic_prefix, partitions=1)
    await ensure_topics(kafka_bootstrap, topics.all_topics())
    workers = workers_for(kafka_bootstrap, redis_url, topic_prefix, redis_prefix, tmp_path, RULEBOOK)
    workers.start("router")
    workers.start("monitor")
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    out = AIOKafkaConsumer(topics.name("assignments"), bootstrap_servers=kafka_bootstrap,
                           auto_offset_reset="earliest")  # fmt: skip
    await producer.start()
    await out.start()
    leads = topics.name("leads")
    try:
        workers.wait_ready()
        await producer.send_and_wait(leads, lead("lead.created", "US", "1"), key=b"L")
        first = await next_events(out, 1, seconds=15)
        await producer.send_and_wait(leads, lead("lead.updated", "US", "2"), key=b"L")  # same routing
        await producer.send_and_wait(leads, lead("lead.updated", "DE", "3"), key=b"L")
        moved = await next_events(out, 2, seconds=15)
        touch = {"event_id": "t", "type": "activity", "occurred_at": datetime.now(UTC).isoformat(),
                 "lead_id": "L", "rep_id": "de-1", "channel": "call"}  # fmt: skip
        await producer.send_and_wait(topics.name("activities"), orjson.dumps(touch), key=b"L")
        await asyncio.sleep(2)
        await producer.send_and_wait(leads, lead("lead.updated", "US", "4"), key=b"L")
        after = await next_events(out, 1, seconds=4)
    finally:
        await out.stop()
        await producer.stop()
        workers.stop_all()
    assert [(e["type"], e["rep_id"], e["attempt"]) for e in first] == [("lead.assigned", "us-1", 1)]
    assert [e["type"] for e in moved] == ["lead.reassigned", "lead.assigned"]
    assert moved[0]["reason"] == "routing fields changed"
    assert (moved[1]["rep_id"], moved[1]["team"], moved[1]["attempt"]) == ("de-1", "de", 2)
    assert after == [], "a touched lead stays with its rep"
