"""Kafka clients built from settings: the only place that knows connection options."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from router.settings import KafkaSettings
from router.tls import client_context


def client_options(settings: KafkaSettings) -> dict[str, Any]:
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": settings.client_id,
        "security_protocol": settings.security_protocol,
    }
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        # Built once per settings (raises ConfigError for a bad TLS file or passphrase).
        options["ssl_context"] = client_context(settings)
    if settings.sasl_mechanism is not None:
        options["sasl_mechanism"] = settings.sasl_mechanism
        options["sasl_plain_username"] = settings.sasl_username
        options["sasl_plain_password"] = (
            settings.sasl_password.get_secret_value() if settings.sasl_password else None
        )
    return options


def make_producer(settings: KafkaSettings) -> AIOKafkaProducer:
    # acks=all + idempotence: a retried send never duplicates or reorders within a
    # partition. A poll's outputs wait (linger) to share requests: with idempotence
    # only one request per broker is in flight, so many small ones queue behind each
    # other; `send_now` sends the rest as soon as the batch is processed, and batches
    # of up to 1 MiB (the broker's default record batch limit) let it be one request.
    return AIOKafkaProducer(
        **client_options(settings),
        acks="all",
        enable_idempotence=True,
        linger_ms=LINGER_MS,
        max_batch_size=1_048_000,
        request_timeout_ms=30_000,
    )


LINGER_MS = 10


def send_now(producer: AIOKafkaProducer) -> None:
    """Send what the producer holds now instead of after linger_ms.

    aiokafka has no public call for it (flush() waits out the linger): this is what
    its flush_for_commit does, closing the open batches and waking the sender.
    Without those internals (another aiokafka), records go out after the linger.
    """
    accumulator = getattr(producer, "_message_accumulator", None)
    try:
        for batches in accumulator._batches.values():  # type: ignore[union-attr]
            for batch in batches:
                batch._builder.close()
        waiter = accumulator._waiter_future  # type: ignore[union-attr]
        if not waiter.done():
            waiter.set_result(None)
    except AttributeError:
        return


def make_consumer(
    settings: KafkaSettings,
    group: str,
    *topics: str,
    fetch_max_wait_ms: int = 500,
    heartbeat_interval_ms: int = 2_000,
) -> AIOKafkaConsumer:
    # Offsets are committed by hand, only after every side effect of a batch
    # (Redis writes, produced events) is acknowledged: at-least-once, never lossy.
    return AIOKafkaConsumer(
        *topics,
        **client_options(settings),
        group_id=f"{settings.group_prefix}-{group}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=settings.max_poll_records,
        # The broker's default floor: a dead worker's partitions move on after 6 s
        # (its SLA bucket's breaches wait that long rather than risk a false one).
        session_timeout_ms=6_000,
        heartbeat_interval_ms=heartbeat_interval_ms,
        fetch_max_wait_ms=fetch_max_wait_ms,
    )


async def describe_partitions(admin: AIOKafkaAdminClient, topics: Sequence[str]) -> list[TopicPartition]:
    """Every partition of `topics` (empty if any of them does not exist)."""
    described = await admin.describe_topics(list(topics))
    found = [
        TopicPartition(topic["topic"], part["partition"])
        for topic in described
        if topic["error_code"] == 0
        for part in topic["partitions"]
    ]
    return sorted(found) if {tp.topic for tp in found} == set(topics) else []
