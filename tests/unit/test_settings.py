"""Settings come from LEADROUTER_* variables, nested with `__`, validated once."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from router.settings import DEFAULT_RULEBOOK, Settings, TopicSettings


def test_defaults() -> None:
    """With no LEADROUTER_* variables, the documented defaults apply."""
    settings = Settings()
    assert settings.model_config["env_prefix"] == "LEADROUTER_"
    assert settings.model_config["env_nested_delimiter"] == "__"
    assert settings.sla.first_touch_seconds == 300
    assert settings.topics.prefix == ""
    assert settings.topics.partitions == 6
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert settings.redis.prefix == "lr"
    assert settings.rulebook == DEFAULT_RULEBOOK
    assert DEFAULT_RULEBOOK.is_file()


def test_default_topics() -> None:
    """Without a prefix, the six topics have the configured partitions and the five
    consumed ones have a 1-partition DLQ."""
    assert TopicSettings().all_topics() == {
        "leads": 6,
        "activities": 6,
        "reps": 6,
        "assignments": 6,
        "sla-events": 6,
        "routing-decisions": 6,
        "leads.dlq": 1,
        "activities.dlq": 1,
        "reps.dlq": 1,
        "assignments.dlq": 1,
        "sla-events.dlq": 1,
    }


@pytest.mark.parametrize(
    ("name", "value", "section", "field", "expected"),
    [
        ("LEADROUTER_SLA__FIRST_TOUCH_SECONDS", "5", "sla", "first_touch_seconds", 5.0),
        ("LEADROUTER_SLA__GRACE_SECONDS", "0", "sla", "grace_seconds", 0.0),
        (
            "LEADROUTER_KAFKA__BOOTSTRAP_SERVERS",
            "k1:9092,k2:9092",
            "kafka",
            "bootstrap_servers",
            "k1:9092,k2:9092",
        ),
        ("LEADROUTER_KAFKA__MAX_POLL_RECORDS", "10", "kafka", "max_poll_records", 10),
        ("LEADROUTER_TOPICS__PARTITIONS", "12", "topics", "partitions", 12),
        ("LEADROUTER_REDIS__PREFIX", "test:1", "redis", "prefix", "test:1"),
        ("LEADROUTER_HTTP__PORT", "0", "http", "port", 0),
        ("LEADROUTER_LOG__LEVEL", "DEBUG", "log", "level", "DEBUG"),
    ],
)
def test_nested_env_vars(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, section: str, field: str, expected: object
) -> None:
    """LEADROUTER_<SECTION>__<FIELD> sets that nested field, parsed to its type."""
    monkeypatch.setenv(name, value)
    assert getattr(getattr(Settings(), section), field) == expected


def test_topic_prefix_applies_to_every_topic_and_dlq(monkeypatch: pytest.MonkeyPatch) -> None:
    """LEADROUTER_TOPICS__PREFIX prefixes every topic; DLQs have 1 partition."""
    monkeypatch.setenv("LEADROUTER_TOPICS__PREFIX", "x-")
    monkeypatch.setenv("LEADROUTER_TOPICS__PARTITIONS", "3")
    topics = Settings().topics.all_topics()
    assert topics == {
        "x-leads": 3,
        "x-activities": 3,
        "x-reps": 3,
        "x-assignments": 3,
        "x-sla-events": 3,
        "x-routing-decisions": 3,
        "x-leads.dlq": 1,
        "x-activities.dlq": 1,
        "x-reps.dlq": 1,
        "x-assignments.dlq": 1,
        "x-sla-events.dlq": 1,
    }
    assert all(name.startswith("x-") for name in topics)


def test_rulebook_path_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """LEADROUTER_RULEBOOK points at another rulebook file."""
    monkeypatch.setenv("LEADROUTER_RULEBOOK", "/etc/leadrouter/rules.yaml")
    assert str(Settings().rulebook) == "/etc/leadrouter/rules.yaml"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LEADROUTER_SLA__FIRST_TOUCH_SECONDS", "-1"),
        ("LEADROUTER_SLA__FIRST_TOUCH_SECONDS", "0"),
        ("LEADROUTER_SLA__FIRST_TOUCH_SECONDS", "soon"),
        ("LEADROUTER_TOPICS__PARTITIONS", "0"),
        ("LEADROUTER_HTTP__PORT", "70000"),
        ("LEADROUTER_KAFKA__SECURITY_PROTOCOL", "TLS"),
        ("LEADROUTER_LOG__LEVEL", "chatty"),
        ("LEADROUTER_REDIS__RETENTION_SECONDS", "59"),
        # A misspelt nested field is an error, not silently ignored.
        ("LEADROUTER_SLA__FIRST_TOCH_SECONDS", "5"),
    ],
)
def test_invalid_value_raises(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    """An out-of-range, badly typed or unknown nested setting raises ValidationError at start."""
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


def test_settings_are_frozen() -> None:
    """Settings cannot be changed after they are built; copies are made explicitly."""
    settings = Settings()
    with pytest.raises(ValidationError, match="frozen"):
        settings.sla = settings.sla  # type: ignore[misc]
    with pytest.raises(ValidationError, match="frozen"):
        settings.sla.first_touch_seconds = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("name", "value", "secret"),
    [
        ("LEADROUTER_REDIS__URL", "redis://:hunter2@cache.internal:6379/0", "hunter2"),
        ("LEADROUTER_REDIS__URL", "redis://app:s3cr3t-pw@cache.internal:6379/0", "s3cr3t-pw"),
        ("LEADROUTER_KAFKA__SASL_PASSWORD", "kafka-pass-77", "kafka-pass-77"),
    ],
)
def test_secrets_are_hidden(monkeypatch: pytest.MonkeyPatch, name: str, value: str, secret: str) -> None:
    """The Redis URL and SASL password are SecretStr: readable on purpose, never in repr or str."""
    monkeypatch.setenv(name, value)
    settings = Settings()
    assert isinstance(settings.redis.url, SecretStr)
    for text in (repr(settings), str(settings), repr(settings.redis), repr(settings.kafka)):
        assert secret not in text
    shown = settings.model_dump_json()
    assert secret not in shown
    if name == "LEADROUTER_REDIS__URL":
        assert settings.redis.url.get_secret_value() == value
    else:
        assert settings.kafka.sasl_password is not None
        assert settings.kafka.sasl_password.get_secret_value() == value


def test_other_environment_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """Variables without the LEADROUTER_ prefix do not configure anything."""
    monkeypatch.setenv("SLA__FIRST_TOUCH_SECONDS", "5")
    monkeypatch.setenv("TOPICS__PREFIX", "x-")
    settings = Settings()
    assert settings.sla.first_touch_seconds == 300
    assert settings.topics.prefix == ""


def test_tls_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kafka and Redis TLS settings come from LEADROUTER_*__SSL_* variables; key
    passphrases are SecretStr, and hostname checks are on unless turned off."""
    env = {
        "LEADROUTER_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
        "LEADROUTER_KAFKA__SSL_CAFILE": "/etc/leadrouter/kafka-ca.pem",
        "LEADROUTER_KAFKA__SSL_CERTFILE": "/etc/leadrouter/client.pem",
        "LEADROUTER_KAFKA__SSL_KEYFILE": "/etc/leadrouter/client.key",
        "LEADROUTER_KAFKA__SSL_PASSWORD": "key-pass-31",
        "LEADROUTER_REDIS__URL": "rediss://cache.internal:6380/0",
        "LEADROUTER_REDIS__SSL_CAFILE": "/etc/leadrouter/redis-ca.pem",
        "LEADROUTER_REDIS__SSL_CERTFILE": "/etc/leadrouter/client.pem",
        "LEADROUTER_REDIS__SSL_KEYFILE": "/etc/leadrouter/client.key",
        "LEADROUTER_REDIS__SSL_PASSWORD": "key-pass-32",
        "LEADROUTER_REDIS__SSL_CHECK_HOSTNAME": "false",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert str(settings.kafka.ssl_cafile) == "/etc/leadrouter/kafka-ca.pem"
    assert str(settings.kafka.ssl_keyfile) == "/etc/leadrouter/client.key"
    assert settings.kafka.ssl_check_hostname
    assert settings.redis.tls
    assert str(settings.redis.ssl_cafile) == "/etc/leadrouter/redis-ca.pem"
    assert not settings.redis.ssl_check_hostname
    assert isinstance(settings.kafka.ssl_password, SecretStr)
    assert isinstance(settings.redis.ssl_password, SecretStr)
    shown = repr(settings) + str(settings) + settings.model_dump_json()
    assert "key-pass-31" not in shown
    assert "key-pass-32" not in shown


KAFKA_SSL = {"LEADROUTER_KAFKA__SECURITY_PROTOCOL": "SSL"}
REDIS_PLAIN = {"LEADROUTER_REDIS__URL": "redis://:pw-in-url-9@h:6379/0"}
REDIS_TLS = {"LEADROUTER_REDIS__URL": "rediss://:pw-in-url-9@h/0"}


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"LEADROUTER_KAFKA__SSL_CAFILE": "/ca.pem"}, "kafka.ssl_cafile"),
        (
            {"LEADROUTER_KAFKA__SECURITY_PROTOCOL": "SASL_PLAINTEXT", "LEADROUTER_KAFKA__SSL_CERTFILE": "/c"},
            "kafka.ssl_certfile",
        ),
        ({**KAFKA_SSL, "LEADROUTER_KAFKA__SSL_KEYFILE": "/k"}, "kafka.ssl_keyfile"),
        ({**REDIS_PLAIN, "LEADROUTER_REDIS__SSL_CAFILE": "/ca.pem"}, "redis.ssl_cafile"),
        ({**REDIS_TLS, "LEADROUTER_REDIS__SSL_KEYFILE": "/k"}, "redis.ssl_keyfile"),
    ],
)
def test_tls_files_that_would_be_ignored_are_refused(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], field: str
) -> None:
    """TLS files with a plaintext Kafka protocol or a redis:// URL, or a client key
    without its certificate, are errors at start rather than silently unused; the
    error names the field and never the Redis URL (it may hold a password)."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert [".".join(str(part) for part in error["loc"]) for error in caught.value.errors()] == [field]
    assert "pw-in-url-9" not in str(caught.value)
