"""A real Prometheus server for tests: its own config, storage and port, owned by the test."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from router.devinfra import free_port
from tests.ops.deploy import ALERTS, PROMETHEUS_CONFIG


def scrape_config(targets: Sequence[str], interval: str = "1s") -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml with fast intervals, the given targets, the rules
    by absolute path and no Alertmanager (nothing listens on its port in tests)."""
    config: dict[str, Any] = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    config["global"] = {
        "scrape_interval": interval,
        "scrape_timeout": interval,
        "evaluation_interval": interval,
    }
    config["rule_files"] = [str(ALERTS)]
    config.pop("alerting", None)
    (job,) = config["scrape_configs"]
    job["scrape_interval"] = interval
    job["static_configs"] = [{"targets": list(targets)}]
    return config


@dataclass
class PrometheusServer:
    binary: str
    workdir: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "prometheus.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, config: dict[str, Any], timeout: float = 30) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config_path = self.workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
        self.port = free_port()
        cmd = [
            self.binary,
            f"--config.file={config_path}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        self.wait_for(lambda: self._get("/-/ready")[0] == 200, timeout, "Prometheus ready")

    def stop(self, timeout: float = 10) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def _get(self, path: str) -> tuple[int, str]:
        url = f"http://127.0.0.1:{self.port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                return int(resp.status), resp.read().decode()
        except urllib.error.HTTPError as exc:  # Prometheus explains 4xx in a JSON body
            return exc.code, exc.read().decode()
        except OSError:
            return 0, ""

    def api(self, path: str, **params: str) -> dict[str, Any]:
        """GET /api/v1/<path>; the JSON answer, successful or not."""
        status, body = self._get(f"/api/v1/{path}?{urllib.parse.urlencode(params)}")
        if not body:
            raise AssertionError(f"no answer from Prometheus (HTTP {status}):\n{self.log()}")
        answer: dict[str, Any] = json.loads(body)
        return answer

    def query(self, expr: str) -> dict[str, Any]:
        """An instant query at the current time."""
        return self.api("query", query=expr, time=f"{time.time():.3f}")

    def values(self, expr: str) -> list[float]:
        answer = self.query(expr)
        assert answer["status"] == "success", f"{expr}: {answer}"
        return [float(sample["value"][1]) for sample in answer["data"]["result"]]

    def wait_for(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"Prometheus exited {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}:\n{self.log()}")
            time.sleep(0.25)
