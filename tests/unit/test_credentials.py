"""The start-up credentials check: only a rejection is fatal, never an outage.

Rejections themselves are tested on real servers (tests/integration/test_kafka_sasl.py,
test_redis_auth.py, test_tls.py); here, what must not be treated as one.
"""

from __future__ import annotations

import time

from pydantic import SecretStr
from redis.asyncio import Redis

from router.credentials import check_kafka, check_redis, redis_address
from router.devinfra import free_port
from router.settings import KafkaSettings, RedisSettings


async def test_kafka_plaintext_and_unreachable_ssl_pass_at_once() -> None:
    """PLAINTEXT has no credentials to check (nothing is contacted); an SSL bootstrap
    server that refuses connections is no verdict on the TLS settings. Both return at
    once. (TLS rejections: tests/integration/test_tls.py.)"""
    started = time.monotonic()
    await check_kafka(KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}"))
    await check_kafka(KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}", security_protocol="SSL"))
    assert time.monotonic() - started < 1


async def test_unreachable_kafka_is_no_verdict_on_credentials() -> None:
    """A SASL bootstrap server that refuses connections is skipped, not reported as a
    rejection: the worker's usual start-up path then deals with it."""
    settings = KafkaSettings(
        bootstrap_servers=f"127.0.0.1:{free_port()},127.0.0.1:{free_port()}",
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="svc",
        sasl_password=SecretStr("s3cret"),
    )
    await check_kafka(settings)


async def test_unreachable_redis_is_no_verdict_on_credentials() -> None:
    """A Redis that refuses connections leaves the worker to retry, unready, as before."""
    settings = RedisSettings(url=SecretStr(f"redis://svc:s3cret@127.0.0.1:{free_port()}/0"))
    redis = Redis.from_url(settings.url.get_secret_value())
    try:
        await check_redis(redis, settings)
    finally:
        await redis.aclose()


def test_redis_address_keeps_the_user_and_drops_the_password() -> None:
    """What error messages show of a Redis URL: scheme, user, host, port and db only."""

    def address(url: str) -> str:
        return redis_address(RedisSettings(url=SecretStr(url)))

    assert address("redis://svc:s3cret@redis.example:6380/2") == "redis://svc@redis.example:6380/2"
    assert address("rediss://:s3cret@redis.example/0") == "rediss://redis.example/0"
    assert address("redis://redis.example:notaport/0") == "redis://redis.example/0"
    assert address("redis://svc:p%40ss@h:1/0") == "redis://svc@h:1/0"
