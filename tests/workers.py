"""Worker processes for e2e tests: started through the real CLI, one env per test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from router.devinfra import free_port


@dataclass
class WorkerProcess:
    role: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url(path), timeout=2) as resp:
                return int(resp.status), resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of `name` whose labels include `labels`."""
        total = 0.0
        for line in self.get("/metrics")[1].splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            head, value = line.rsplit(" ", 1)
            if all(f'{k}="{v}"' in head for k, v in labels.items()):
                total += float(value)
        return total

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass(frozen=True)
class Exited:
    """A worker that stopped on its own: how, how soon, and what it said."""

    code: int
    seconds: float
    log: str
    lines: list[dict[str, Any]]  # its log lines of the event asked for


@dataclass
class Workers:
    env: dict[str, str]
    log_dir: Path
    started: list[WorkerProcess] = field(default_factory=list)

    def start(self, role: str) -> WorkerProcess:
        port = free_port()
        log_path = self.log_dir / f"{role}-{len(self.started)}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "router.cli", "worker", "--role", role, "--http-port", str(port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        worker = WorkerProcess(role, port, proc, log_path)
        self.started.append(worker)
        return worker

    def run_to_exit(self, role: str, event: str, timeout: float = 60) -> Exited:
        """Start a worker that must stop by itself (a setting or a credential it cannot
        use) and wait for it; a worker still running after `timeout` is stopped."""
        worker = self.start(role)
        started = time.monotonic()
        try:
            code = worker.proc.wait(timeout=timeout)
        finally:
            self.stop_all()
        log = worker.log()
        lines = [orjson.loads(line) for line in log.splitlines() if f'"{event}"' in line]
        return Exited(code, time.monotonic() - started, log, lines)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        for worker in self.started:
            while True:
                if worker.proc.poll() is not None:
                    raise AssertionError(f"{worker.role} exited {worker.proc.returncode}:\n{worker.log()}")
                try:
                    if worker.get("/readyz")[0] == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"{worker.role} not ready in {timeout}s:\n{worker.log()}")
                time.sleep(0.1)

    def stop_all(self, timeout: float = 15) -> None:
        for worker in self.started:
            if worker.proc.poll() is None:
                worker.proc.send_signal(signal.SIGTERM)
        for worker in self.started:
            try:
                worker.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                worker.proc.wait()


def worker_env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADROUTER_")}
    env.update({f"LEADROUTER_{k.upper()}": v for k, v in settings.items()})
    env["LEADROUTER_LOG__FORMAT"] = "json"
    return env


def workers_for(
    kafka_bootstrap: str,
    redis_url: str,
    topic_prefix: str,
    redis_prefix: str,
    tmp_path: Path,
    rulebook: str,
    **settings: str,
) -> Workers:
    """Workers on the test's own topics and keys, with `rulebook` written to
    `tmp_path / "rulebook.yaml"` (rewrite that file to test a reload)."""
    path = tmp_path / "rulebook.yaml"
    path.write_text(rulebook)
    env = worker_env(
        kafka__bootstrap_servers=kafka_bootstrap,
        kafka__group_prefix=topic_prefix + "g",
        redis__url=redis_url,
        redis__prefix=redis_prefix,
        topics__prefix=topic_prefix,
        rulebook=str(path),
        **settings,
    )
    return Workers(env, tmp_path)


async def next_events(consumer: AIOKafkaConsumer, count: int, seconds: float = 20) -> list[dict[str, Any]]:
    """Up to `count` JSON events from `consumer`, waiting at most `seconds`."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and len(got) < count:
        for records in (await consumer.getmany(timeout_ms=200)).values():
            got += [orjson.loads(r.value) for r in records]
    return got
