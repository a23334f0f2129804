"""Real Kafka and Redis for tests: taken from the environment or started locally.

`LEADROUTER_TEST_KAFKA` (host:port) and `LEADROUTER_TEST_REDIS` (a redis:// URL)
point at running services. Otherwise a broker and a redis-server are started in a
temporary dir. A service that cannot be had skips its tests, or fails them when
`LEADROUTER_REQUIRE_SERVICES=1` (CI, where a silent skip would hide a broken set-up).
Servers started here are owned by the pytest process: if it is killed before its
teardown, they stop on their own.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NoReturn, Protocol, TypeVar

import pytest

from router.devinfra import (
    InfraError,
    KafkaBroker,
    LocalPki,
    PortInUseError,
    RedisServer,
    SaslListener,
    TlsFiles,
    TlsListener,
    free_ports,
    make_pki,
)

REQUIRE_ENV = "LEADROUTER_REQUIRE_SERVICES"
KAFKA_ENV = "LEADROUTER_TEST_KAFKA"
REDIS_ENV = "LEADROUTER_TEST_REDIS"
CACHE_ENV = "LEADROUTER_CACHE_DIR"
# The only LEADROUTER_* variables tests may see: they choose services, not behaviour.
KEPT_ENV = frozenset({REQUIRE_ENV, KAFKA_ENV, REDIS_ENV, CACHE_ENV})

S = TypeVar("S", KafkaBroker, RedisServer)


class MakeTopics(Protocol):
    """Creates `{prefix + name: partitions}` topics; returns name -> prefixed name."""

    async def __call__(self, partitions: Mapping[str, int]) -> dict[str, str]: ...


def unique(prefix: str = "") -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def unavailable(reason: str) -> NoReturn:
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1)", pytrace=False)
    pytest.skip(reason)


def _start(make: Callable[[list[int]], S], ports: int, what: str) -> S:
    # Free ports can be taken between choosing and binding; choose again then.
    for _ in range(3):
        server = make(free_ports(ports))
        try:
            server.start()
        except PortInUseError:
            continue
        except InfraError as exc:
            unavailable(f"{what} unavailable: {exc}")
        return server
    unavailable(f"{what} unavailable: no free port after 3 tries")


def start_kafka(workdir: Path) -> KafkaBroker:
    return _start(
        lambda p: KafkaBroker(workdir, port=p[0], controller_port=p[1], owner_pid=os.getpid()),
        2,
        "Kafka broker",
    )


def start_redis(workdir: Path) -> RedisServer:
    return _start(
        lambda p: RedisServer(workdir, port=p[0], owner_pid=os.getpid()),
        1,
        "redis-server",
    )


def start_kafka_sasl(workdir: Path, users: Mapping[str, str], mechanisms: tuple[str, ...]) -> KafkaBroker:
    """A broker of its own with a SASL_PLAINTEXT listener (`broker.sasl.port`) besides
    the PLAINTEXT one, where `users` authenticate with any of `mechanisms`."""
    return _start(
        lambda p: KafkaBroker(
            workdir,
            port=p[0],
            controller_port=p[1],
            owner_pid=os.getpid(),
            sasl=SaslListener(p[2], users, mechanisms),
        ),
        3,
        "Kafka broker with SASL",
    )


def start_redis_acl(workdir: Path, acl: Mapping[str, tuple[str, str]]) -> RedisServer:
    """A redis-server of its own with ACL users: name -> (password, rules)."""
    return _start(
        lambda p: RedisServer(workdir, port=p[0], owner_pid=os.getpid(), acl=acl),
        1,
        "redis-server with ACL users",
    )


def start_kafka_tls(
    workdir: Path,
    files: TlsFiles,
    users: Mapping[str, str],
    mechanisms: tuple[str, ...] = ("SCRAM-SHA-512",),
) -> KafkaBroker:
    """A broker of its own with a SASL_SSL listener (`broker.tls.port`) that wants a
    client certificate signed by `files.cafile` and then a SASL login by one of
    `users`; its PLAINTEXT and SASL_PLAINTEXT listeners stay for the readiness probe."""
    return _start(
        lambda p: KafkaBroker(
            workdir,
            port=p[0],
            controller_port=p[1],
            owner_pid=os.getpid(),
            sasl=SaslListener(p[2], users, mechanisms),
            tls=TlsListener(p[3], files, "SASL_SSL", client_auth="required"),
        ),
        4,
        "Kafka broker with SASL_SSL",
    )


def start_redis_tls(workdir: Path, files: TlsFiles) -> RedisServer:
    """A redis-server of its own on a TLS port only (`rediss://`), wanting client
    certificates signed by `files.cafile`."""
    return _start(
        lambda p: RedisServer(workdir, port=p[0], owner_pid=os.getpid(), tls=files),
        1,
        "redis-server with TLS",
    )


def local_pki(workdir: Path, client_key_password: str | None = None) -> LocalPki:
    """Throwaway certificates (router.devinfra.tls); skips, or fails under
    LEADROUTER_REQUIRE_SERVICES=1, without the openssl command."""
    try:
        return make_pki(workdir, client_key_password)
    except InfraError as exc:
        unavailable(f"TLS certificates unavailable: {exc}")
