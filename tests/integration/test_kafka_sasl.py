"""Kafka SASL (SCRAM-SHA-256, SCRAM-SHA-512, PLAIN) against a real broker of its own,
not the session broker.

The broker has a SASL_PLAINTEXT listener that accepts all three mechanisms for one
user (SCRAM credentials created at format time, PLAIN from the listener's JAAS
config); its PLAINTEXT listener is left for the broker's own readiness probe and is
not used by these tests. Workers, CLI and test clients get their connection options
from `router.kafka.client_options`, as in production.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from router.credentials import check_kafka
from router.devinfra import KafkaBroker, ensure_topics
from router.errors import CredentialsRejected
from router.kafka import client_options, make_producer
from router.settings import KafkaSettings, Settings, TopicSettings
from tests.services import start_kafka_sasl
from tests.workers import next_events, workers_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

USER = "alice"
# Distinctive, so a leak into any output is unmistakable.
PASSWORD = f"Scram-Pw-{uuid.uuid4().hex[:12]}"
WRONG_PASSWORD = f"Wrong-Pw-{uuid.uuid4().hex[:12]}"
MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN")
RULEBOOK = """
version: sasl-1
reps: [{id: r1, teams: [t], capacity: 100}]
teams: [{id: t}]
routes: [{id: all, assign: {team: t}}]
"""


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    broker = start_kafka_sasl(tmp_path_factory.mktemp("kafka-sasl"), {USER: PASSWORD}, MECHANISMS)
    try:
        yield broker
    finally:
        broker.stop()


def sasl_address(broker: KafkaBroker) -> str:
    assert broker.sasl is not None
    return f"{broker.host}:{broker.sasl.port}"


def sasl_env(password: str, mechanism: str = "SCRAM-SHA-512") -> dict[str, str]:
    return {
        "kafka__security_protocol": "SASL_PLAINTEXT",
        "kafka__sasl_mechanism": mechanism,
        "kafka__sasl_username": USER,
        "kafka__sasl_password": password,
    }


def kafka_settings(broker: KafkaBroker, password: str, mechanism: str = "SCRAM-SHA-512") -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers=sasl_address(broker),
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism=mechanism,  # type: ignore[arg-type]
        sasl_username=USER,
        sasl_password=password,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("mechanism", MECHANISMS)
async def test_credentials_check_accepts_the_right_password_and_names_a_wrong_one(
    sasl_broker: KafkaBroker, mechanism: str
) -> None:
    """The start-up check passes with the right password and raises
    CredentialsRejected naming Kafka authentication, the user and the mechanism (never
    the password) with a wrong one; a settings repr never shows the password."""
    await check_kafka(kafka_settings(sasl_broker, PASSWORD, mechanism))
    wrong = kafka_settings(sasl_broker, WRONG_PASSWORD, mechanism)
    with pytest.raises(CredentialsRejected) as caught:
        await check_kafka(wrong)
    message = str(caught.value)
    assert caught.value.service == "kafka"
    assert "Kafka authentication failed" in message
    assert repr(USER) in message
    assert mechanism in message
    assert WRONG_PASSWORD not in message + repr(wrong) + repr(Settings(kafka=wrong))


async def test_worker_routes_a_lead_over_sasl_scram(
    sasl_broker: KafkaBroker, redis_url: str, topic_prefix: str, redis_prefix: str, tmp_path: Path
) -> None:
    """A worker process (router and monitor: every Kafka client a worker makes) given
    SASL_PLAINTEXT + SCRAM-SHA-512 settings gets ready and routes a lead end to end:
    topics created over SASL, the lead produced over SASL, its lead.assigned read back
    by a SASL consumer. `leadrouter dlq inspect` reaches the broker with the same
    settings. The password is in no output."""
    settings = kafka_settings(sasl_broker, PASSWORD)
    topics = TopicSettings(prefix=topic_prefix, partitions=1)
    await ensure_topics(settings.bootstrap_servers, topics.all_topics(), options=client_options(settings))
    workers = workers_for(
        sasl_address(sasl_broker), redis_url, topic_prefix, redis_prefix, tmp_path, RULEBOOK,
        **sasl_env(PASSWORD),
    )  # fmt: skip
    router = workers.start("all")
    producer = make_producer(settings)
    out = AIOKafkaConsumer(
        topics.name("assignments"), **client_options(settings), auto_offset_reset="earliest"
    )
    await producer.start()
    await out.start()
    try:
        workers.wait_ready(timeout=60)
        lead = {"event_id": "sasl-1-c", "type": "lead.created", "occurred_at": datetime.now(UTC).isoformat(),
                "lead": {"id": "sasl-1", "country": "US", "email": "sasl@pii.example"}}  # fmt: skip
        await producer.send_and_wait(topics.name("leads"), orjson.dumps(lead), key=b"sasl-1")
        events = await next_events(out, 1, seconds=30)
    finally:
        await out.stop()
        await producer.stop()
        workers.stop_all()
    assert [(e["type"], e["lead_id"], e["rep_id"]) for e in events] == [("lead.assigned", "sasl-1", "r1")]
    assert '"event":"lead.routed"' in router.log()
    assert PASSWORD not in router.log()

    cli = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "router.cli", "dlq", "inspect", "leads"],
        env=workers.env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    dlq = topics.dlq(topics.name("leads"))
    assert cli.stdout.strip().endswith(f"{dlq}: 0 dead letter(s); by reason: none"), cli.stdout
    assert PASSWORD not in cli.stdout + cli.stderr


def test_wrong_password_stops_the_worker_with_a_clear_error(
    sasl_broker: KafkaBroker, redis_url: str, topic_prefix: str, redis_prefix: str, tmp_path: Path
) -> None:
    """A worker given a wrong SASL password neither hangs nor retries: it exits with
    status 3 after one `worker.credentials_rejected` line that names Kafka
    authentication and the user; neither password appears anywhere in its output."""
    workers = workers_for(
        sasl_address(sasl_broker), redis_url, topic_prefix, redis_prefix, tmp_path, RULEBOOK,
        **sasl_env(WRONG_PASSWORD),
    )  # fmt: skip
    exited = workers.run_to_exit("router", "worker.credentials_rejected")
    log, rejected = exited.log, exited.lines
    assert exited.code == 3, log
    assert exited.seconds < 30, "fails fast, not after retries"
    assert len(rejected) == 1, log
    assert rejected[0]["level"] == "error"
    assert rejected[0]["service"] == "kafka"
    assert "Kafka authentication failed" in rejected[0]["error"]
    assert f"user {USER!r}" in rejected[0]["error"]
    assert "Traceback" not in log
    assert WRONG_PASSWORD not in log
    assert PASSWORD not in log
