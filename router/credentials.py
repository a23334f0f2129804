"""Credentials checked once at start: a rejected password stops the worker at once.

Without this check a wrong Kafka SASL password or Redis password looks like an
outage: aiokafka reports "Unable to bootstrap" and redis-py's AuthenticationError
is a ConnectionError, which the loops retry with backoff for ever, unready and
silent about why. Credentials do not fix themselves, so a rejection is fatal with
a message that says what was rejected (and never the secret). Servers that are
merely unreachable at start are left to the usual paths (retry, or the start-up
timeout), as before.

TLS is checked the same way, in both directions: a server certificate our CA
bundle does not trust (or that names another host), and a TLS handshake the server
refuses (our client certificate), are configuration that no retry fixes.
"""

from __future__ import annotations

import asyncio
import ssl
from urllib.parse import urlsplit

from aiokafka.conn import collect_hosts, create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    IllegalSaslStateError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError, AuthenticationWrongNumberOfArgsError, RedisError

from router.errors import CredentialsRejected
from router.kafka import client_options
from router.settings import KafkaSettings, RedisSettings

KAFKA_AUTH_ERRORS = (
    SaslAuthenticationFailed,
    AuthenticationFailedError,
    UnsupportedSaslMechanismError,
    IllegalSaslStateError,
)
REDIS_AUTH_ERRORS = (AuthenticationError, AuthenticationWrongNumberOfArgsError)
CONNECT_SECONDS = 10.0


async def check_kafka(settings: KafkaSettings) -> None:
    """Authenticate to the first bootstrap server that answers; raise on rejection.

    Only SASL and TLS protocols have credentials to check. An unreachable server is
    skipped.
    """
    if settings.security_protocol == "PLAINTEXT":
        return
    options = client_options(settings)
    options.pop("bootstrap_servers")
    for host, port, _ in collect_hosts(settings.bootstrap_servers):
        try:
            conn = await asyncio.wait_for(
                create_conn(host, port, request_timeout_ms=int(CONNECT_SECONDS * 1000), **options),
                timeout=CONNECT_SECONDS,
            )
        except KAFKA_AUTH_ERRORS as exc:
            raise CredentialsRejected(
                "kafka",
                f"Kafka authentication failed at {host}:{port} for SASL user "
                f"{settings.sasl_username!r} ({settings.sasl_mechanism}): {type(exc).__name__}. "
                "Check LEADROUTER_KAFKA__SASL_USERNAME, _SASL_PASSWORD and _SASL_MECHANISM",
            ) from None
        except (KafkaError, OSError, TimeoutError) as exc:
            # aiokafka reports a refused client certificate as a closed connection
            # whose cause is the server's TLS alert.
            if (problem := tls_cause(exc)) is not None:
                raise CredentialsRejected(
                    "kafka",
                    f"Kafka TLS handshake failed at {host}:{port}: {problem}. Check "
                    "LEADROUTER_KAFKA__SSL_CAFILE, _SSL_CERTFILE, _SSL_KEYFILE and _SSL_CHECK_HOSTNAME",
                ) from None
            continue  # unreachable or unwell: no verdict on the credentials, try the next
        conn.close()
        return


async def check_redis(redis: Redis, settings: RedisSettings) -> None:
    """PING once; raise if Redis rejects the URL's user or password."""
    try:
        await asyncio.wait_for(redis.ping(), timeout=settings.socket_timeout_seconds)
    except REDIS_AUTH_ERRORS as exc:
        raise CredentialsRejected(
            "redis",
            f"Redis authentication failed at {redis_address(settings)}: {exc}. "
            "Check the user and password in LEADROUTER_REDIS__URL",
        ) from None
    except (RedisError, OSError, TimeoutError) as exc:
        if (problem := tls_cause(exc)) is not None:
            raise CredentialsRejected(
                "redis",
                f"Redis TLS handshake failed at {redis_address(settings)}: {problem}. Check "
                "LEADROUTER_REDIS__SSL_CAFILE, _SSL_CERTFILE, _SSL_KEYFILE and _SSL_CHECK_HOSTNAME",
            ) from None
        return  # unreachable: the loops retry and readiness says so, as before


def tls_problem(exc: ssl.SSLError) -> str | None:
    """What a TLS error says about the configuration, or None if it is no verdict.

    A certificate that fails verification (untrusted CA, wrong host, expired) is
    ours to fix; so is an alert the server sends during the handshake (it refused
    our client certificate, or we offered none). An EOF or reset mid-handshake may
    be a server restarting.
    """
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"the server's certificate is not trusted ({exc.verify_message})"
    reason = exc.reason or ""
    if "ALERT" in reason:
        return f"the server refused the handshake ({reason}: our client certificate?)"
    return None


def tls_cause(exc: BaseException) -> str | None:
    """tls_problem of the SSLError that is or caused `exc`, if any (clients wrap it)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLError):
            return tls_problem(current)
        current = current.__cause__ or current.__context__
    return None


def redis_address(settings: RedisSettings) -> str:
    """`scheme://[user@]host:port/db` of the URL: no password, fit for logs."""
    parts = urlsplit(settings.url.get_secret_value())
    user = f"{parts.username}@" if parts.username else ""
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{user}{parts.hostname or ''}{port}{parts.path}"
