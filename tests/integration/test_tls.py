"""TLS on real servers: Kafka SASL_SSL with mutual TLS, Redis TLS with mutual TLS.

A broker and a redis-server of their own, with throwaway certificates (`tls_pki`:
made with openssl). The broker's SASL_SSL listener wants a client certificate
signed by the test CA and then a SCRAM-SHA-512 login; its PLAINTEXT listener is
left for the broker's own readiness probe and is not used here. redis-server listens
on a TLS port only (`--port 0`) and wants a client certificate too. The client key
is encrypted, so its passphrase (a secret, like the SASL password) must reach every
client and no output. Workers, CLI and test clients get their options from
`router.kafka.client_options` and `router.redis_client`, as in production.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from pydantic import SecretStr

from router.credentials import check_kafka, check_redis
from router.devinfra import KafkaBroker, LocalPki, RedisServer, ensure_topics
from router.errors import CredentialsRejected
from router.kafka import client_options, make_producer
from router.redis_client import make_redis
from router.settings import KafkaSettings, RedisSettings, Settings, TopicSettings
from tests.services import start_kafka_tls, start_redis_tls
from tests.workers import next_events, workers_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

USER = "tls-alice"
# Distinctive, so a leak into any output is unmistakable.
PASSWORD = f"Tls-Scram-Pw-{uuid.uuid4().hex[:12]}"
RULEBOOK = """
version: tls-1
reps: [{id: r1, teams: [t], capacity: 100}]
teams: [{id: t}]
routes: [{id: all, assign: {team: t}}]
"""


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory, tls_pki: LocalPki) -> Iterator[KafkaBroker]:
    broker = start_kafka_tls(tmp_path_factory.mktemp("kafka-tls"), tls_pki.server, {USER: PASSWORD})
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory, tls_pki: LocalPki) -> Iterator[RedisServer]:
    server = start_redis_tls(tmp_path_factory.mktemp("redis-tls"), tls_pki.server)
    try:
        yield server
    finally:
        server.stop()


def tls_address(broker: KafkaBroker) -> str:
    assert broker.tls is not None
    return f"{broker.host}:{broker.tls.port}"


def kafka_settings(broker: KafkaBroker, pki: LocalPki, cafile: Path | None = None) -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers=tls_address(broker),
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username=USER,
        sasl_password=SecretStr(PASSWORD),
        ssl_cafile=cafile or pki.ca,
        ssl_certfile=pki.client_cert,
        ssl_keyfile=pki.client_key,
        ssl_password=SecretStr(pki.client_key_password or ""),
    )


def redis_settings(server: RedisServer, pki: LocalPki, cafile: Path | None = None) -> RedisSettings:
    return RedisSettings(
        url=SecretStr(server.url),
        ssl_cafile=cafile or pki.ca,
        ssl_certfile=pki.client_cert,
        ssl_keyfile=pki.client_key,
        ssl_password=SecretStr(pki.client_key_password or ""),
    )


def tls_env(pki: LocalPki, kafka_ca: Path | None = None, redis_ca: Path | None = None) -> dict[str, str]:
    """Worker settings: SASL_SSL + SCRAM and client certificates for both servers."""
    client = {
        "ssl_certfile": str(pki.client_cert),
        "ssl_keyfile": str(pki.client_key),
        "ssl_password": pki.client_key_password or "",
    }
    env = {
        "kafka__security_protocol": "SASL_SSL",
        "kafka__sasl_mechanism": "SCRAM-SHA-512",
        "kafka__sasl_username": USER,
        "kafka__sasl_password": PASSWORD,
        "kafka__ssl_cafile": str(kafka_ca or pki.ca),
        "redis__ssl_cafile": str(redis_ca or pki.ca),
    }
    for name, value in client.items():
        env[f"kafka__{name}"] = env[f"redis__{name}"] = value
    return env


def secrets_in(text: str, pki: LocalPki) -> list[str]:
    return [s for s in (PASSWORD, pki.client_key_password) if s and s in text]


async def test_start_up_check_trusts_the_right_ca_and_names_a_wrong_one(
    tls_broker: KafkaBroker, tls_redis: RedisServer, tls_pki: LocalPki
) -> None:
    """With the test CA and the client certificate the start-up check passes for Kafka
    and Redis. Trusting another CA, or offering no client certificate to the broker,
    raises CredentialsRejected naming a TLS handshake at the server and what failed,
    at once; no message or settings repr shows the SASL password or key passphrase."""
    right_kafka = kafka_settings(tls_broker, tls_pki)
    right_redis = redis_settings(tls_redis, tls_pki)
    await check_kafka(right_kafka)
    redis = make_redis(right_redis)
    try:
        await check_redis(redis, right_redis)
    finally:
        await redis.aclose()

    started = time.monotonic()
    wrong_kafka = kafka_settings(tls_broker, tls_pki, cafile=tls_pki.other_ca)
    without_cert = right_kafka.model_copy(update={"ssl_certfile": None, "ssl_keyfile": None})
    wrong_redis = redis_settings(tls_redis, tls_pki, cafile=tls_pki.other_ca)
    messages = []
    for settings, expected in ((wrong_kafka, "not trusted"), (without_cert, "refused the handshake")):
        with pytest.raises(CredentialsRejected) as caught:
            await check_kafka(settings)
        assert caught.value.service == "kafka"
        assert str(caught.value).startswith(f"Kafka TLS handshake failed at {tls_address(tls_broker)}: ")
        assert expected in str(caught.value)
        messages.append(str(caught.value))
    redis = make_redis(wrong_redis)
    try:
        with pytest.raises(CredentialsRejected) as caught:
            await check_redis(redis, wrong_redis)
    finally:
        await redis.aclose()
    assert caught.value.service == "redis"
    assert str(caught.value).startswith(
        f"Redis TLS handshake failed at rediss://127.0.0.1:{tls_redis.port}/0"
    )
    assert "certificate is not trusted (" in str(caught.value)
    messages.append(str(caught.value))
    assert time.monotonic() - started < 10, "a TLS verdict is immediate, not a timeout"
    shown = " ".join(messages) + repr(Settings(kafka=wrong_kafka, redis=wrong_redis))
    assert not secrets_in(shown, tls_pki)


async def test_worker_routes_and_breaches_over_tls_and_the_cli_reads_back(
    tls_broker: KafkaBroker,
    tls_redis: RedisServer,
    tls_pki: LocalPki,
    topic_prefix: str,
    redis_prefix: str,
    tmp_path: Path,
) -> None:
    """A worker process (router and monitor: every Kafka and Redis client a worker
    makes) given SASL_SSL + SCRAM + client-certificate settings and a rediss:// URL
    with a client certificate gets ready, routes a lead (lead.assigned) and fires its
    SLA breach (sla.breached), all over TLS: topics created, the lead produced and the
    events read back by TLS clients too. `leadrouter dlq inspect` (Kafka) and
    `leadrouter explain` (Redis) work with the same settings. Neither the SASL password
    nor the key passphrase is in any output."""
    settings = kafka_settings(tls_broker, tls_pki)
    topics = TopicSettings(prefix=topic_prefix, partitions=1)
    await ensure_topics(settings.bootstrap_servers, topics.all_topics(), options=client_options(settings))
    workers = workers_for(
        tls_address(tls_broker), tls_redis.url, topic_prefix, redis_prefix, tmp_path, RULEBOOK,
        sla__first_touch_seconds="1", **tls_env(tls_pki),
    )  # fmt: skip
    worker = workers.start("all")
    producer = make_producer(settings)
    out = AIOKafkaConsumer(
        topics.name("assignments"), topics.name("sla-events"),
        **client_options(settings), auto_offset_reset="earliest",
    )  # fmt: skip
    await producer.start()
    await out.start()
    try:
        await asyncio.to_thread(workers.wait_ready, 60)
        lead = {"event_id": "tls-1-c", "type": "lead.created", "occurred_at": datetime.now(UTC).isoformat(),
                "lead": {"id": "tls-1", "country": "US", "email": "tls@pii.example"}}  # fmt: skip
        await producer.send_and_wait(topics.name("leads"), orjson.dumps(lead), key=b"tls-1")
        events = await next_events(out, 2, seconds=30)
    finally:
        await out.stop()
        await producer.stop()
        workers.stop_all()
    assert sorted((e["type"], e["lead_id"]) for e in events) == [
        ("lead.assigned", "tls-1"),
        ("sla.breached", "tls-1"),
    ], worker.log()
    assert '"event":"lead.routed"' in worker.log()

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "router.cli", *args],
            env=workers.env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    dlq, explain = await asyncio.gather(
        asyncio.to_thread(cli, "dlq", "inspect", "leads"), asyncio.to_thread(cli, "explain", "tls-1")
    )
    assert dlq.returncode == 0, dlq.stderr
    assert dlq.stdout.strip().endswith(
        f"{topics.dlq(topics.name('leads'))}: 0 dead letter(s); by reason: none"
    )
    assert explain.returncode == 0, explain.stderr
    assert "r1" in explain.stdout
    shown = worker.log() + dlq.stdout + dlq.stderr + explain.stdout + explain.stderr
    assert not secrets_in(shown, tls_pki)


@pytest.mark.parametrize("service", ["kafka", "redis"])
def test_a_wrong_ca_stops_the_worker_with_a_clear_error(
    tls_broker: KafkaBroker,
    tls_redis: RedisServer,
    tls_pki: LocalPki,
    topic_prefix: str,
    redis_prefix: str,
    tmp_path: Path,
    service: str,
) -> None:
    """A worker that trusts another CA for one server neither hangs unready nor
    retries: it exits with status 3 within seconds after one
    `worker.credentials_rejected` line naming the service, a TLS handshake and the
    untrusted certificate; no traceback, and no secret in its output."""
    other = tls_pki.other_ca
    env = tls_env(tls_pki, kafka_ca=other) if service == "kafka" else tls_env(tls_pki, redis_ca=other)
    workers = workers_for(
        tls_address(tls_broker), tls_redis.url, topic_prefix, redis_prefix, tmp_path, RULEBOOK, **env
    )
    exited = workers.run_to_exit("all", "worker.credentials_rejected")
    log, rejected = exited.log, exited.lines
    assert exited.code == 3, log
    assert exited.seconds < 30, "fails fast, not after retries"
    assert len(rejected) == 1, log
    assert rejected[0]["level"] == "error"
    assert rejected[0]["service"] == service
    assert f"{service.capitalize()} TLS handshake failed" in rejected[0]["error"]
    assert "certificate is not trusted" in rejected[0]["error"]
    assert "Traceback" not in log
    assert not secrets_in(log, tls_pki)


@pytest.mark.parametrize("service", ["kafka", "redis"])
def test_a_missing_ca_file_is_a_configuration_error(
    tls_broker: KafkaBroker,
    tls_redis: RedisServer,
    tls_pki: LocalPki,
    topic_prefix: str,
    redis_prefix: str,
    tmp_path: Path,
    service: str,
) -> None:
    """A worker whose CA file for one server does not exist neither fails with a
    traceback (Kafka, building its TLS context) nor retries unready for ever (Redis,
    which reads the file only when it connects): it exits with status 2, the
    configuration-error status, after one `worker.config_invalid` line naming the
    setting, the path and "does not exist"; no secret in its output."""
    missing = tmp_path / "no-such-ca.pem"
    env = tls_env(tls_pki, kafka_ca=missing) if service == "kafka" else tls_env(tls_pki, redis_ca=missing)
    workers = workers_for(
        tls_address(tls_broker), tls_redis.url, topic_prefix, redis_prefix, tmp_path, RULEBOOK, **env
    )
    exited = workers.run_to_exit("all", "worker.config_invalid")
    log = exited.log
    assert exited.code == 2, log
    assert exited.seconds < 30, "fails at start, not after retries"
    setting = f"LEADROUTER_{service.upper()}__SSL_CAFILE"
    (line,) = exited.lines
    assert line["level"] == "error"
    assert line["setting"] == setting
    assert line["error"] == f"{setting}: {missing} does not exist"
    assert "Traceback" not in log
    assert "worker.started" not in log
    assert not secrets_in(log, tls_pki)
