"""TLS files and passphrases that cannot work are configuration errors at start,
named by their setting, for Kafka and Redis alike."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from router.devinfra import LocalPki
from router.errors import ConfigError
from router.kafka import client_options
from router.redis_client import make_redis
from router.settings import KafkaSettings, RedisSettings

Section = KafkaSettings | RedisSettings
Build = Callable[..., Section]


def kafka(pki: LocalPki, **changes: object) -> KafkaSettings:
    fields: dict[str, object] = {
        "security_protocol": "SSL",
        "ssl_cafile": pki.ca,
        "ssl_certfile": pki.client_cert,
        "ssl_keyfile": pki.client_key,
        "ssl_password": SecretStr(pki.client_key_password or ""),
    }
    return KafkaSettings.model_validate({**fields, **changes})


def redis(pki: LocalPki, **changes: object) -> RedisSettings:
    fields: dict[str, object] = {
        "url": SecretStr("rediss://cache.internal:6380/0"),
        "ssl_cafile": pki.ca,
        "ssl_certfile": pki.client_cert,
        "ssl_keyfile": pki.client_key,
        "ssl_password": SecretStr(pki.client_key_password or ""),
    }
    return RedisSettings.model_validate({**fields, **changes})


def build(settings: Section) -> None:
    """What every client of the section does first (nothing is contacted)."""
    if isinstance(settings, KafkaSettings):
        client_options(settings)
    else:
        make_redis(settings)


def rejected(settings: Section, pki: LocalPki) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        build(settings)
    message = str(caught.value)
    assert message.startswith(f"{caught.value.setting}: ")
    assert pki.client_key_password
    assert pki.client_key_password not in message
    return caught.value


SECTIONS = [pytest.param(kafka, "KAFKA", id="kafka"), pytest.param(redis, "REDIS", id="redis")]
FILES = ["cafile", "certfile", "keyfile"]


@pytest.mark.parametrize(("make", "section"), SECTIONS)
def test_the_right_files_and_passphrase_build(make: Build, section: str, tls_pki: LocalPki) -> None:
    """The PKI's CA, client certificate and encrypted key with its passphrase are accepted."""
    build(make(tls_pki))


@pytest.mark.parametrize(("make", "section"), SECTIONS)
@pytest.mark.parametrize("field", FILES)
def test_a_missing_file_is_named(
    make: Build, section: str, field: str, tls_pki: LocalPki, tmp_path: Path
) -> None:
    """A TLS file that does not exist: its setting, its path, "does not exist"."""
    missing = tmp_path / f"no-{field}.pem"
    error = rejected(make(tls_pki, **{f"ssl_{field}": missing}), tls_pki)
    assert error.setting == f"LEADROUTER_{section}__SSL_{field.upper()}"
    assert str(error) == f"{error.setting}: {missing} does not exist"


@pytest.mark.parametrize(("make", "section"), SECTIONS)
@pytest.mark.parametrize("field", FILES)
def test_an_unreadable_file_is_named(
    make: Build, section: str, field: str, tls_pki: LocalPki, tmp_path: Path
) -> None:
    """A TLS file this process may not read: its setting, its path, "not readable"."""
    original = {"cafile": tls_pki.ca, "certfile": tls_pki.client_cert, "keyfile": tls_pki.client_key}[field]
    locked = tmp_path / original.name
    shutil.copy(original, locked)
    locked.chmod(0)
    if os.access(locked, os.R_OK):
        pytest.skip("this user reads files whatever their mode (root)")
    error = rejected(make(tls_pki, **{f"ssl_{field}": locked}), tls_pki)
    assert error.setting == f"LEADROUTER_{section}__SSL_{field.upper()}"
    assert str(error) == f"{error.setting}: {locked} is not readable by this process (permission denied)"


@pytest.mark.parametrize(("make", "section"), SECTIONS)
@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("cafile", "is not a PEM certificate bundle (no BEGIN CERTIFICATE block)"),
        ("certfile", "is not a PEM certificate (no BEGIN CERTIFICATE block)"),
        ("keyfile", "is not a PEM private key (no BEGIN PRIVATE KEY block)"),
    ],
)
def test_a_file_that_is_not_pem_is_named(
    make: Build, section: str, field: str, expected: str, tls_pki: LocalPki, tmp_path: Path
) -> None:
    """A TLS file holding something else (here text): its setting, its path, what it is not."""
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    error = rejected(make(tls_pki, **{f"ssl_{field}": garbage}), tls_pki)
    assert error.setting == f"LEADROUTER_{section}__SSL_{field.upper()}"
    assert str(error) == f"{error.setting}: {garbage} {expected}"


@pytest.mark.parametrize(("make", "section"), SECTIONS)
@pytest.mark.parametrize("field", ["cafile", "certfile"])
def test_a_damaged_certificate_block_is_named(
    make: Build, section: str, field: str, tls_pki: LocalPki, tmp_path: Path
) -> None:
    """A BEGIN CERTIFICATE block that does not parse: its setting and path, "does not parse"."""
    damaged = tmp_path / "damaged.pem"
    damaged.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    error = rejected(make(tls_pki, **{f"ssl_{field}": damaged}), tls_pki)
    assert error.setting == f"LEADROUTER_{section}__SSL_{field.upper()}"
    assert str(error).startswith(f"{error.setting}: {damaged} holds a certificate block that does not parse")


@pytest.mark.parametrize(("make", "section"), SECTIONS)
def test_a_wrong_passphrase_is_named_not_shown(make: Build, section: str, tls_pki: LocalPki) -> None:
    """A passphrase that does not decrypt the key: the passphrase's setting, the key's
    path, "wrong passphrase", and neither passphrase in the message."""
    wrong = "Not-The-Passphrase-42"
    error = rejected(make(tls_pki, ssl_password=SecretStr(wrong)), tls_pki)
    assert error.setting == f"LEADROUTER_{section}__SSL_PASSWORD"
    assert str(error) == (
        f"{error.setting}: wrong passphrase for the encrypted key {tls_pki.client_key} "
        f"(LEADROUTER_{section}__SSL_KEYFILE)"
    )
    assert wrong not in str(error)


@pytest.mark.parametrize(("make", "section"), SECTIONS)
def test_an_encrypted_key_without_a_passphrase_says_so(make: Build, section: str, tls_pki: LocalPki) -> None:
    """An encrypted key and no passphrase: a clear error, never OpenSSL's prompt on the terminal."""
    error = rejected(make(tls_pki, ssl_password=None), tls_pki)
    assert str(error) == (
        f"LEADROUTER_{section}__SSL_KEYFILE: {tls_pki.client_key} is encrypted "
        f"and LEADROUTER_{section}__SSL_PASSWORD is not set"
    )


@pytest.mark.parametrize(("make", "section"), SECTIONS)
def test_a_key_of_another_certificate_is_named(make: Build, section: str, tls_pki: LocalPki) -> None:
    """A key that is not the client certificate's: both settings and paths."""
    error = rejected(make(tls_pki, ssl_keyfile=tls_pki.server.keyfile), tls_pki)
    assert str(error) == (
        f"LEADROUTER_{section}__SSL_KEYFILE: {tls_pki.server.keyfile} is not the private key of "
        f"the certificate in {tls_pki.client_cert} (LEADROUTER_{section}__SSL_CERTFILE)"
    )


def test_one_context_per_settings(tls_pki: LocalPki) -> None:
    """Every client built from the same settings shares one context: the files are read once."""
    settings = kafka(tls_pki)
    assert client_options(settings)["ssl_context"] is client_options(settings)["ssl_context"]
