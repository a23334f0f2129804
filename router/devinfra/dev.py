"""`leadrouter dev up|down|status`: local Kafka and redis-server under one state dir.

The ports chosen at `up` are kept in `<state_dir>/dev.json`, so `status` and `down`
find the services again and a repeated `up` reuses what is already running.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from router.devinfra.kafka import KafkaBroker
from router.devinfra.process import InfraError
from router.devinfra.redis_server import RedisServer
from router.devinfra.topics import ensure_topics, run_coro

_STATE_FILE = "dev.json"


@dataclass(frozen=True)
class DevStatus:
    state_dir: Path
    kafka_running: bool
    kafka_pid: int | None
    kafka_bootstrap: str | None
    redis_running: bool
    redis_pid: int | None
    redis_url: str | None

    @property
    def running(self) -> bool:
        return self.kafka_running and self.redis_running

    def lines(self) -> list[str]:
        def line(name: str, running: bool, pid: int | None, address: str | None) -> str:
            if running:
                return f"{name}: running (pid {pid}) at {address}"
            return f"{name}: stopped"

        return [
            line("kafka", self.kafka_running, self.kafka_pid, self.kafka_bootstrap),
            line("redis", self.redis_running, self.redis_pid, self.redis_url),
            f"state: {self.state_dir}",
        ]


def _load_ports(state_dir: Path) -> dict[str, int]:
    try:
        raw = json.loads((state_dir / _STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(raw, dict):
        return {}
    return {str(k): v for k, v in raw.items() if isinstance(v, int)}


def _save_ports(state_dir: Path, ports: Mapping[str, int]) -> None:
    tmp = state_dir / f"{_STATE_FILE}.tmp"
    tmp.write_text(json.dumps(dict(ports), indent=2, sort_keys=True) + "\n")
    tmp.replace(state_dir / _STATE_FILE)


def _services(state_dir: Path, ports: Mapping[str, int]) -> tuple[KafkaBroker, RedisServer]:
    # Port 0 stands in for "unknown": stopping and pid checks only need the pidfile.
    kafka = KafkaBroker(
        state_dir / "kafka",
        port=ports.get("kafka_port", 0),
        controller_port=ports.get("kafka_controller_port", 0),
    )
    return kafka, RedisServer(state_dir / "redis", port=ports.get("redis_port", 0))


def dev_status(state_dir: Path) -> DevStatus:
    ports = _load_ports(state_dir)
    kafka, redis = _services(state_dir, ports)
    kafka_pid, redis_pid = kafka.pid, redis.pid
    return DevStatus(
        state_dir=state_dir.resolve(),
        kafka_running=kafka_pid is not None,
        kafka_pid=kafka_pid,
        kafka_bootstrap=kafka.bootstrap_servers if kafka_pid is not None and "kafka_port" in ports else None,
        redis_running=redis_pid is not None,
        redis_pid=redis_pid,
        redis_url=redis.url if redis_pid is not None and "redis_port" in ports else None,
    )


def dev_up(
    state_dir: Path,
    kafka_port: int,
    kafka_controller_port: int,
    redis_port: int,
    topics: Mapping[str, int],
) -> DevStatus:
    """Start what is not running yet (running ones keep their ports); create topics.

    Raises InfraError if a needed port is taken by a process we did not start.
    """
    if kafka_port == kafka_controller_port:
        raise InfraError(f"kafka port and controller port must differ (both {kafka_port})")
    state_dir.mkdir(parents=True, exist_ok=True)
    saved = _load_ports(state_dir)
    kafka, redis = _services(state_dir, saved)
    ports = dict(saved)
    if not redis.running:
        ports["redis_port"] = redis_port
    if not kafka.running:
        ports["kafka_port"] = kafka_port
        ports["kafka_controller_port"] = kafka_controller_port
    kafka, redis = _services(state_dir, ports)
    # Saved first, so `down` finds a half-started set-up too.
    _save_ports(state_dir, ports)
    redis.start()
    kafka.start()
    if topics:
        bootstrap = kafka.bootstrap_servers
        run_coro(lambda: ensure_topics(bootstrap, topics))
    return dev_status(state_dir)


def dev_down(state_dir: Path) -> list[str]:
    """Stop the services started under `state_dir`; data stays for the next `up`."""
    kafka, redis = _services(state_dir, _load_ports(state_dir))
    messages: list[str] = []
    for name, service in (("kafka", kafka), ("redis", redis)):
        stale = service.pidfile.exists() and not service.running
        pid = service.stop()
        if pid is not None:
            messages.append(f"{name}: stopped (pid {pid})")
        elif stale:
            messages.append(f"{name}: not running (removed a stale pidfile)")
        else:
            messages.append(f"{name}: not running")
    return messages
