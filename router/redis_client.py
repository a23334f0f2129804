"""Redis clients built from settings: the only place that knows connection options.

A `rediss://` URL turns TLS on; the CA bundle, client certificate and key come from
`RedisSettings.ssl_*` (paths to mounted files). Options in the URL's query string
(`?ssl_ca_certs=...`) still work and win over the settings, as redis-py merges them.
redis-py reads the files only when it connects, so they are checked here first
(`router.tls`): a bad one is a ConfigError at start, not a connection retried for ever.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from router.settings import RedisSettings
from router.tls import client_context


def connection_options(settings: RedisSettings) -> dict[str, Any]:
    options: dict[str, Any] = {
        "socket_timeout": settings.socket_timeout_seconds,
        "socket_connect_timeout": settings.socket_timeout_seconds,
    }
    if settings.tls:
        # Only with rediss://: a plain connection refuses ssl_* arguments.
        client_context(settings)  # the files' check; redis-py takes no context
        options["ssl_check_hostname"] = settings.ssl_check_hostname
        tls_files = {
            "ssl_ca_certs": settings.ssl_cafile,
            "ssl_certfile": settings.ssl_certfile,
            "ssl_keyfile": settings.ssl_keyfile,
        }
        options.update({name: str(path) for name, path in tls_files.items() if path is not None})
        if settings.ssl_password is not None:
            options["ssl_password"] = settings.ssl_password.get_secret_value()
    return options


def make_redis(settings: RedisSettings, **overrides: Any) -> Redis:
    """A client (nothing is contacted until the first command)."""
    return Redis.from_url(settings.url.get_secret_value(), **{**connection_options(settings), **overrides})
