"""A worker started with LEADROUTER_HTTP__BEARER_TOKEN serves /metrics and /readyz to
that token only, and /healthz to anyone."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from router.devinfra import ensure_topics
from router.settings import TopicSettings
from tests.workers import WorkerProcess, workers_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

TOKEN = f"Http-Token-{uuid.uuid4().hex[:12]}"
RULEBOOK = """
version: http-1
reps: [{id: r1, teams: [t]}]
teams: [{id: t}]
routes: [{id: all, assign: {team: t}}]
"""


def status(worker: WorkerProcess, path: str, token: str | None = None) -> int:
    request = urllib.request.Request(worker.url(path))
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


async def test_worker_endpoints_need_the_bearer_token(
    kafka_bootstrap: str, redis_url: str, topic_prefix: str, redis_prefix: str, tmp_path: Path
) -> None:
    """/metrics and /readyz answer 401 without the token and 200 with it; /healthz
    answers 200 without; the token is in no log line."""
    topics = TopicSettings(prefix=topic_prefix, partitions=1)
    await ensure_topics(kafka_bootstrap, topics.all_topics())
    workers = workers_for(
        kafka_bootstrap, redis_url, topic_prefix, redis_prefix, tmp_path, RULEBOOK, http__bearer_token=TOKEN
    )
    worker = workers.start("router")
    try:
        deadline = time.monotonic() + 30
        while status_or_none(worker, "/readyz", TOKEN) != 200:
            assert worker.proc.poll() is None, worker.log()
            assert time.monotonic() < deadline, worker.log()
            await asyncio.sleep(0.1)
        assert status(worker, "/metrics") == 401
        assert status(worker, "/readyz") == 401
        assert status(worker, "/metrics", "wrong") == 401
        assert status(worker, "/metrics", TOKEN) == 200
        assert status(worker, "/healthz") == 200
    finally:
        workers.stop_all()
    assert TOKEN not in worker.log()


def status_or_none(worker: WorkerProcess, path: str, token: str) -> int | None:
    try:
        return status(worker, path, token)
    except OSError:
        return None  # not listening yet
