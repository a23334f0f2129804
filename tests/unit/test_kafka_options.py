"""Kafka client options from settings: plaintext, SASL, TLS."""

from __future__ import annotations

import ssl

import pytest
from pydantic import SecretStr

from router.devinfra import LocalPki
from router.errors import ConfigError
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


def test_tls_context_loads_the_ca_and_an_encrypted_client_key(tls_pki: LocalPki) -> None:
    """ssl_cafile is what the context trusts, the client key is unlocked with
    ssl_password, and ssl_check_hostname turns the hostname check off; a wrong
    passphrase fails while the context is built, not later, as a ConfigError naming
    the passphrase's setting."""
    settings = KafkaSettings(
        security_protocol="SSL",
        ssl_cafile=tls_pki.ca,
        ssl_certfile=tls_pki.client_cert,
        ssl_keyfile=tls_pki.client_key,
        ssl_password=SecretStr(tls_pki.client_key_password or ""),
    )
    context = client_options(settings)["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    (trusted,) = context.get_ca_certs()
    assert dict(item[0] for item in trusted["subject"])["commonName"].startswith("leadrouter local ca ")
    unchecked = client_options(settings.model_copy(update={"ssl_check_hostname": False}))["ssl_context"]
    assert not unchecked.check_hostname
    with pytest.raises(ConfigError, match=r"^LEADROUTER_KAFKA__SSL_PASSWORD: wrong passphrase"):
        client_options(settings.model_copy(update={"ssl_password": SecretStr("not-the-passphrase")}))
