"""The pipeline benchmark's subprocesses connect as the benchmark itself does."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from router.bench.pipeline import connection_env
from router.settings import KafkaSettings, RedisSettings, Settings


def test_connection_env_carries_address_sasl_and_tls_to_a_subprocess(monkeypatch: pytest.MonkeyPatch) -> None:
    """The router and bare-loop processes a benchmark starts get its Kafka address, SASL
    and TLS settings and its Redis URL and TLS settings, secrets included, through
    LEADROUTER_* variables that build the same settings again."""
    kafka = KafkaSettings(
        bootstrap_servers="k1:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="bench",
        sasl_password=SecretStr("sasl-pw"),
        ssl_cafile=Path("/ca.pem"),
        ssl_certfile=Path("/client.pem"),
        ssl_keyfile=Path("/client.key"),
        ssl_password=SecretStr("key-pw"),
        ssl_check_hostname=False,
    )
    redis = RedisSettings(
        url=SecretStr("rediss://u:redis-pw@cache:6380/0"),
        ssl_cafile=Path("/redis-ca.pem"),
        ssl_certfile=Path("/client.pem"),
        ssl_keyfile=Path("/client.key"),
        ssl_password=SecretStr("key-pw"),
    )
    for name, value in connection_env(kafka, redis).items():
        monkeypatch.setenv(f"LEADROUTER_{name.upper()}", value)
    again = Settings()
    assert again.kafka == kafka
    assert again.redis == redis


def test_plaintext_connection_env_is_just_the_addresses() -> None:
    """Defaults stay defaults: a plaintext benchmark passes the addresses and protocol only."""
    env = connection_env(KafkaSettings(bootstrap_servers="k:9092"), RedisSettings())
    assert env == {
        "kafka__bootstrap_servers": "k:9092",
        "kafka__security_protocol": "PLAINTEXT",
        "kafka__ssl_check_hostname": "true",
        "redis__url": "redis://127.0.0.1:6379/0",
        "redis__ssl_check_hostname": "true",
    }
