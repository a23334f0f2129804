"""A local redis-server with AOF persistence, for tests and `dev up`."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

import redis

from router.devinfra.process import DetachedServer, InfraError

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
    ) -> None:
        super().__init__(workdir, host, port, owner_pid)
        # ACL users: name -> (password, rules such as "~* &* +@all"). With any, the
        # `default` user is off unless listed (listing it is `requirepass`).
        self.acl = dict(acl or {})
        self.config_path = self.workdir / "redis.conf"
        self.data_dir = self.workdir / "data"

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

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
        )
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def _prepare(self) -> list[str]:
        executable = redis_server_executable()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        lines = [
            f"bind {self.host}",
            f"port {self.port}",
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

    def _acl_lines(self) -> list[str]:
        if not self.acl:
            return []
        lines = [] if "default" in self.acl else ["user default off"]
        for name, (password, rules) in self.acl.items():
            lines.append(f"user {name} reset on >{password} {rules}")
        return lines
