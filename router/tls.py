"""TLS client contexts from settings: the TLS files are checked once, at start.

Kafka and Redis each take a CA bundle, a client certificate and key (paths to
mounted PEM files) and the key's passphrase. A file that is missing, unreadable or
not what it should be, or a passphrase that does not open the key, is a
`ConfigError` naming the setting, the path and what is wrong (never the
passphrase): the CLI exits 2 on it. Without this, aiokafka failed with a traceback
from deep in `load_cert_chain`, and redis-py, which reads the files only when it
connects, turned them into a connection error retried for ever, unready.

One context per settings section (cached: every consumer and producer of a process
shares it). aiokafka takes it as it is. redis-py's asyncio client takes no context
(it builds its own from the same paths), so for Redis it only checks the files.
"""

from __future__ import annotations

import functools
import re
import ssl
from dataclasses import dataclass
from pathlib import Path

from router.errors import ConfigError
from router.settings import KafkaSettings, RedisSettings

_CERT_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)
_KEY_BLOCK = re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")
# PKCS#8 and the older OpenSSL ("traditional") form of an encrypted key.
_ENCRYPTED = (b"-----BEGIN ENCRYPTED PRIVATE KEY-----", b"Proc-Type: 4,ENCRYPTED")


@dataclass(frozen=True)
class _Names:
    """The environment variables of one section's TLS settings, for messages."""

    cafile: str
    certfile: str
    keyfile: str
    password: str

    @classmethod
    def of(cls, settings: KafkaSettings | RedisSettings) -> _Names:
        prefix = "LEADROUTER_KAFKA__SSL_" if isinstance(settings, KafkaSettings) else "LEADROUTER_REDIS__SSL_"
        return cls(*(prefix + field for field in ("CAFILE", "CERTFILE", "KEYFILE", "PASSWORD")))


class _NoPassphrase(Exception):
    """Raised instead of OpenSSL's prompt on the terminal for an encrypted key."""


def client_context(settings: KafkaSettings | RedisSettings) -> ssl.SSLContext:
    """A verifying client context: the CA bundle (or the system's), the client
    certificate for mutual TLS, and a hostname check unless turned off.

    Raises ConfigError for a TLS file or passphrase that cannot work.
    """
    return _context(settings)


@functools.lru_cache(maxsize=16)
def _context(settings: KafkaSettings | RedisSettings) -> ssl.SSLContext:
    names = _Names.of(settings)
    context = _trusting(settings.ssl_cafile, names.cafile)
    if settings.ssl_certfile is not None:
        password = settings.ssl_password.get_secret_value() if settings.ssl_password else None
        _load_client_cert(context, names, settings.ssl_certfile, settings.ssl_keyfile, password)
    context.check_hostname = settings.ssl_check_hostname
    return context


def _read(setting: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(setting, f"{path} {_unreadable(exc)}") from None


def _unreadable(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "does not exist"
    if isinstance(exc, IsADirectoryError):
        return "is a directory, not a file"
    if isinstance(exc, PermissionError):
        return "is not readable by this process (permission denied)"
    return f"cannot be read ({exc.strerror or type(exc).__name__})"


def _trusting(cafile: Path | None, setting: str) -> ssl.SSLContext:
    """A client context trusting `cafile` only, or the system's CAs without one (as
    aiokafka's create_ssl_context does)."""
    if cafile is None:
        return ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if not _CERT_BLOCK.search(_read(setting, cafile)):
        raise ConfigError(setting, f"{cafile} is not a PEM certificate bundle (no BEGIN CERTIFICATE block)")
    try:
        return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    except ssl.SSLError as exc:
        problem = f"holds a certificate block that does not parse ({_why(exc)})"
        raise ConfigError(setting, f"{cafile} {problem}") from None


def _load_client_cert(
    context: ssl.SSLContext, names: _Names, certfile: Path, keyfile: Path | None, password: str | None
) -> None:
    cert_pem = _read(names.certfile, certfile)
    _check_certificates(cert_pem, names.certfile, certfile)
    # Without a keyfile, the key must be in the certificate file.
    key_setting, key_path = (names.certfile, certfile) if keyfile is None else (names.keyfile, keyfile)
    key_pem = cert_pem if keyfile is None else _read(names.keyfile, keyfile)
    if not _KEY_BLOCK.search(key_pem):
        if keyfile is None:
            raise ConfigError(names.certfile, f"{certfile} holds no private key: set {names.keyfile}")
        raise ConfigError(names.keyfile, f"{keyfile} is not a PEM private key (no BEGIN PRIVATE KEY block)")
    encrypted = any(marker in key_pem for marker in _ENCRYPTED)
    no_passphrase = ConfigError(key_setting, f"{key_path} is encrypted and {names.password} is not set")
    if encrypted and password is None:
        raise no_passphrase
    try:
        context.load_cert_chain(certfile, keyfile, password if password is not None else _no_prompt)
    except _NoPassphrase:
        raise no_passphrase from None
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise ConfigError(
                key_setting,
                f"{key_path} is not the private key of the certificate in {certfile} ({names.certfile})",
            ) from None
        if encrypted:
            raise ConfigError(
                names.password, f"wrong passphrase for the encrypted key {key_path} ({key_setting})"
            ) from None
        problem = f"holds a private key that cannot be loaded ({_why(exc)})"
        raise ConfigError(key_setting, f"{key_path} {problem}") from None


def _check_certificates(pem: bytes, setting: str, path: Path) -> None:
    blocks = _CERT_BLOCK.findall(pem)
    if not blocks:
        raise ConfigError(setting, f"{path} is not a PEM certificate (no BEGIN CERTIFICATE block)")
    try:
        # Parses each certificate; a throwaway store, so nothing is trusted by it.
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(
            cadata=b"\n".join(blocks).decode("ascii")
        )
    except (ssl.SSLError, UnicodeDecodeError):
        # (OpenSSL's reason here speaks of cadata, the throwaway store's input.)
        raise ConfigError(setting, f"{path} holds a certificate block that does not parse") from None


def _no_prompt() -> str:
    raise _NoPassphrase


def _why(exc: ssl.SSLError) -> str:
    """OpenSSL's reason, without CPython's source location ("PEM lib" when it gives none)."""
    text = re.sub(r"^\[\w+(: \w+)?\] |\s*\(_ssl\.c:\d+\)$", "", str(exc.strerror or exc))
    return str(exc.reason or text or type(exc).__name__)
