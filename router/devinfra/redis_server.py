"""A local redis-server with AOF persistence, for tests and `dev up`."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import redis

from router.devinfra.process import DetachedServer, InfraError
from router.devinfra.tls import TlsFiles

_MISSING = (
    "redis-server not found: install it with `apt-get install -y redis-server`"
    " (Debian) or set LEADROUTER_TEST_REDIS"
)


def _quote(value: object) -> str:
    """A redis.conf string argument; quoting keeps paths with spaces in one argument."""
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def redis_server_executable() -> str:
    path = shutil.which("redis-server")
    if path is None:
        raise InfraError(_MISSING)
    return path


class RedisServer(DetachedServer):
    """redis-server whose config, data and log live in `workdir`."""

    name = "redis"

    def __init__(
        self,
        workdir: Path,
        *,
        port: int,
        host: str = "127.0.0.1",
        owner_pid: int | None = None,
        acl: Mapping[str, tuple[str, str]] | None = None,
        tls: TlsFiles | None = None,
    ) -> None:
        super().__init__(workdir, host, port, owner_pid)
        # With TLS, `port` is the TLS port and there is no plaintext one; clients
        # must present a certificate signed by `tls.cafile` (tls-auth-clients yes).
        self.tls = tls
        # ACL users: name -> (password, rules such as "~* &* +@all"). With any, the
        # `default` user is off unless listed (listing it is `requirepass`).
        self.acl = dict(acl or {})
        self.config_path = self.workdir / "redis.conf"
        self.data_dir = self.workdir / "data"

    @property
    def url(self) -> str:
        return f"{'rediss' if self.tls else 'redis'}://{self.host}:{self.port}/0"

    def start(self, timeout: float = 30) -> None:
        super().start(timeout)

    def _markers(self) -> list[str]:
        # redis rewrites its process title; our template keeps the config path in it.
        return ["redis-server", str(self.config_path)]

    def _ready(self) -> bool:
        user, (password, _) = next(iter(self.acl.items()), (None, (None, "")))
        client = redis.Redis(
            host=self.host,
            port=self.port,
            username=user,
            password=password,
            socket_connect_timeout=1,
            socket_timeout=1,
            **self._probe_tls(),
        )
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def _probe_tls(self) -> dict[str, Any]:
        if self.tls is None:
            return {}
        # The server's own certificate doubles as the probe's client certificate.
        return {
            "ssl": True,
            "ssl_ca_certs": str(self.tls.cafile),
            "ssl_certfile": str(self.tls.certfile),
            "ssl_keyfile": str(self.tls.keyfile),
        }

    def _prepare(self) -> list[str]:
        executable = redis_server_executable()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        lines = [
            f"bind {self.host}",
            *self._port_lines(),
            f"dir {_quote(self.data_dir)}",
            "appendonly yes",
            "appendfsync everysec",
            'save ""',
            "daemonize no",
            "protected-mode yes",
            # Also our stdout redirect (both append): config errors go to stderr.
            f"logfile {_quote(self.log_path)}",
            'proc-title-template "{title} {listen-addr} {server-mode} {config-file}"',
            *self._acl_lines(),
        ]
        self.config_path.write_text("".join(f"{line}\n" for line in lines))
        return [executable, str(self.config_path)]

    def _port_lines(self) -> list[str]:
        if self.tls is None:
            return [f"port {self.port}"]
        return [
            "port 0",
            f"tls-port {self.port}",
            f"tls-cert-file {_quote(self.tls.certfile)}",
            f"tls-key-file {_quote(self.tls.keyfile)}",
            f"tls-ca-cert-file {_quote(self.tls.cafile)}",
            "tls-auth-clients yes",
        ]

    def _acl_lines(self) -> list[str]:
        if not self.acl:
            return []
        lines = [] if "default" in self.acl else ["user default off"]
        for name, (password, rules) in self.acl.items():
            lines.append(f"user {name} reset on >{password} {rules}")
        return lines
