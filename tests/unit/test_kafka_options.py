"""Kafka client options from settings: plaintext, SASL, TLS."""

from __future__ import annotations

import ssl

from router.kafka import client_options, make_producer
from router.settings import KafkaSettings


def test_plaintext_has_no_tls_or_sasl() -> None:
    """The default talks PLAINTEXT with no credentials."""
    options = client_options(KafkaSettings())
    assert options["security_protocol"] == "PLAINTEXT"
    assert "ssl_context" not in options
    assert "sasl_mechanism" not in options


def test_sasl_ssl_builds_a_tls_context_and_passes_credentials() -> None:
    """SASL_SSL gets a verifying TLS context (the system CAs without ssl_cafile) and SCRAM credentials."""
    settings = KafkaSettings(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="svc",
        sasl_password="s3cret",
    )
    options = client_options(settings)
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("svc", "s3cret")
    assert "s3cret" not in repr(settings)


async def test_tls_client_can_be_built() -> None:
    """A producer can be constructed for SSL (it failed before: aiokafka requires a context)."""
    producer = make_producer(KafkaSettings(security_protocol="SSL"))
    try:
        assert producer.client._ssl_context is not None
    finally:
        await producer.stop()  # never started: closes it without touching the network
