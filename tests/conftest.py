"""Fixtures shared by every test tier: a clean environment and real services.

Kafka and Redis are session-scoped and lazy: only a session that runs a test
asking for them pays for starting them. Each test isolates itself with its own
topic and key prefixes instead.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator, Mapping

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from router.devinfra import LocalPki, ensure_topics
from tests.services import (
    KAFKA_ENV,
    KEPT_ENV,
    REDIS_ENV,
    MakeTopics,
    local_pki,
    start_kafka,
    start_redis,
    unique,
)


@pytest.fixture(autouse=True)
def _clean_leadrouter_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from what a test sets, never from the developer's shell."""
    for name in list(os.environ):
        if name.startswith("LEADROUTER_") and name not in KEPT_ENV:
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`host:port` of a Kafka broker (LEADROUTER_TEST_KAFKA, or one started here)."""
    if external := os.environ.get(KAFKA_ENV):
        yield external
        return
    broker = start_kafka(tmp_path_factory.mktemp("kafka"))
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a redis-server (LEADROUTER_TEST_REDIS, or one started here)."""
    if external := os.environ.get(REDIS_ENV):
        yield external
        return
    server = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield server.url
    finally:
        server.stop()


@pytest_asyncio.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    """A client of the test redis-server, closed after the test."""
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def tls_pki(tmp_path_factory: pytest.TempPathFactory) -> LocalPki:
    """A throwaway CA, a server certificate for localhost and 127.0.0.1, a client
    certificate whose key is encrypted with `client_key_password`, and a second CA
    that signed nothing (made with openssl; skipped without it)."""
    return local_pki(tmp_path_factory.mktemp("pki"), client_key_password=unique("Key-Pw-"))


@pytest.fixture
def topic_prefix() -> str:
    return unique("t") + "-"


@pytest.fixture
def redis_prefix() -> str:
    return unique("test:") + ":"


@pytest_asyncio.fixture
async def make_topics(kafka_bootstrap: str, topic_prefix: str) -> MakeTopics:
    async def make(partitions: Mapping[str, int]) -> dict[str, str]:
        names = {name: topic_prefix + name for name in partitions}
        await ensure_topics(kafka_bootstrap, {names[name]: n for name, n in partitions.items()})
        return names

    return make
