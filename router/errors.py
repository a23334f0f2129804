"""Errors carry their nature: retry the transient, dead-letter the permanent.

    LeadrouterError
    ├── PermanentError      the event can never be processed as it is: dead-letter it
    │   ├── InvalidEvent    bytes that do not decode to a valid contract event
    │   ├── CredentialsRejected  Kafka or Redis refused our credentials, or TLS
    │   │                        trust failed either way: stop the worker (exit 3)
    │   └── ConfigError      a setting that cannot work, such as a TLS file that is
    │                        missing or not PEM: stop before connecting (exit 2)
    └── TransientError      the world is briefly unwell (Redis down, broker busy): retry

A broad `except` exists only at the per-event boundary of a worker.
"""

from __future__ import annotations

from typing import Literal

DlqReason = Literal[
    "too_large",
    "not_utf8",
    "invalid_json",
    "not_an_object",
    "unknown_type",
    "schema_violation",
    "bad_key",
    "processing_error",
]
DLQ_REASONS: tuple[DlqReason, ...] = DlqReason.__args__  # type: ignore[attr-defined]


class LeadrouterError(Exception):
    retriable: bool = False


class PermanentError(LeadrouterError):
    retriable = False


class InvalidEvent(PermanentError):
    """`reason` is a closed-set code (a metric label); `detail` is for people, PII-free."""

    def __init__(self, reason: DlqReason, detail: str) -> None:
        self.reason: DlqReason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


class CredentialsRejected(PermanentError):
    """Kafka or Redis refused the configured credentials, or a TLS handshake failed on
    trust (their certificate against our CA bundle, or ours refused). Fatal at start:
    a restart cannot fix a wrong password or certificate. `service` is "kafka" or
    "redis"; the message names the user and the server, never the secret."""

    def __init__(self, service: Literal["kafka", "redis"], message: str) -> None:
        self.service = service
        super().__init__(message)


class ConfigError(PermanentError):
    """A setting that cannot work as it is, found at start (a TLS file missing,
    unreadable or not PEM, a key passphrase that does not open the key). `setting` is
    the environment variable to fix; the message names it and the file, never a
    secret."""

    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        super().__init__(f"{setting}: {problem}")


class TransientError(LeadrouterError):
    retriable = True
