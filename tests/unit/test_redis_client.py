"""Redis client options from settings: plain, and TLS for rediss:// URLs."""

from __future__ import annotations

from pydantic import SecretStr
from redis.asyncio.connection import Connection, SSLConnection

from router.devinfra import LocalPki
from router.redis_client import connection_options, make_redis
from router.settings import RedisSettings


def test_plain_url_has_no_tls_options() -> None:
    """A redis:// URL gets timeouts only: redis-py's plain connection refuses ssl_* arguments."""
    settings = RedisSettings(url=SecretStr("redis://:pw@127.0.0.1:6379/0"), socket_timeout_seconds=2)
    assert connection_options(settings) == {"socket_timeout": 2, "socket_connect_timeout": 2}
    client = make_redis(settings)
    assert client.connection_pool.connection_class is Connection


async def test_rediss_url_takes_the_tls_files_and_passphrase(tls_pki: LocalPki) -> None:
    """A rediss:// URL gets an SSLConnection with the CA bundle, client certificate, key,
    passphrase and hostname check from the settings (nothing is contacted; the files
    are real, as they are checked first)."""
    password = tls_pki.client_key_password or ""
    settings = RedisSettings(
        url=SecretStr("rediss://app:pw@cache.internal:6380/0"),
        ssl_cafile=tls_pki.ca,
        ssl_certfile=tls_pki.client_cert,
        ssl_keyfile=tls_pki.client_key,
        ssl_password=SecretStr(password),
        ssl_check_hostname=False,
    )
    client = make_redis(settings, health_check_interval=10)
    try:
        pool = client.connection_pool
        assert pool.connection_class is SSLConnection
        kwargs = pool.connection_kwargs
        assert kwargs["ssl_ca_certs"] == str(tls_pki.ca)
        assert kwargs["ssl_certfile"] == str(tls_pki.client_cert)
        assert kwargs["ssl_keyfile"] == str(tls_pki.client_key)
        assert kwargs["ssl_password"] == password
        assert kwargs["ssl_check_hostname"] is False
        assert kwargs["health_check_interval"] == 10
        assert (kwargs["host"], kwargs["port"], kwargs["username"]) == ("cache.internal", 6380, "app")
    finally:
        await client.aclose()


def test_tls_options_in_the_url_still_apply() -> None:
    """The older way, CA bundle in the URL's query string, keeps working without settings."""
    settings = RedisSettings(url=SecretStr("rediss://h:6380/0?ssl_ca_certs=/etc/ca.pem"))
    assert make_redis(settings).connection_pool.connection_kwargs["ssl_ca_certs"] == "/etc/ca.pem"
    assert "ssl_ca_certs" not in connection_options(settings)
