"""The quickstart's main job: `leadrouter demo --workers` on a real broker and redis-server."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from router.devinfra import ensure_topics, free_ports
from router.devinfra.topics import run_coro
from router.settings import TopicSettings
from tests.workers import worker_env

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def test_demo_shows_assignments_touches_and_breaches(
    kafka_bootstrap: str, redis_url: str, topic_prefix: str, redis_prefix: str, tmp_path: Path
) -> None:
    """Within its run the demo prints assignments, first touches and breaches, and the
    workers it starts serve Prometheus metrics."""
    topics = TopicSettings(prefix=topic_prefix)
    run_coro(lambda: ensure_topics(kafka_bootstrap, topics.all_topics()))
    router_port, monitor_port = free_ports(2)
    env = worker_env(
        kafka__bootstrap_servers=kafka_bootstrap,
        kafka__group_prefix=topic_prefix + "g",
        redis__url=redis_url,
        redis__prefix=redis_prefix,
        topics__prefix=topic_prefix,
    )
    cmd = [
        sys.executable, "-m", "router.cli", "demo", "--workers", "--duration", "20", "--rate", "4",
        "--sla-seconds", "3", "--router-port", str(router_port), "--monitor-port", str(monitor_port),
        "--log-dir", str(tmp_path / "logs"),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        metrics = ""
        deadline = time.monotonic() + 18
        while time.monotonic() < deadline and "leadrouter_leads_routed_total{" not in metrics:
            time.sleep(1)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{router_port}/metrics", timeout=2) as r:
                    metrics = r.read().decode()
            except OSError:
                continue
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = output.decode()
    assert proc.returncode == 0, text
    assert "leadrouter_leads_routed_total{" in metrics, "the router served its metrics"
    for marker in ("ASSIGNED", "TOUCHED", "BREACHED", "SUMMARY"):
        assert marker in text, f"{marker} missing from the demo output:\n{text}"
    assert "@example.com" not in text, "the demo never prints contact details"
