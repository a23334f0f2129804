"""Redis authentication against a real redis-server of its own (not the session one).

The server has ACL users: `default` with a password (what `requirepass` sets) and
`leadrouter`, limited to the keys of its prefix and to non-dangerous commands (the
least privilege docs/deploy.md recommends). Workers and the CLI take credentials
from `LEADROUTER_REDIS__URL` only.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pydantic import SecretStr
from redis.asyncio import Redis
from redis.exceptions import NoPermissionError

from router.credentials import check_redis, redis_address
from router.devinfra import RedisServer, ensure_topics
from router.errors import CredentialsRejected
from router.settings import RedisSettings, Settings, TopicSettings
from tests.services import start_redis_acl
from tests.workers import next_events, workers_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

DEFAULT_PASSWORD = f"Default-Pw-{uuid.uuid4().hex[:12]}"
USER_PASSWORD = f"User-Pw-{uuid.uuid4().hex[:12]}"
WRONG_PASSWORD = f"Wrong-Pw-{uuid.uuid4().hex[:12]}"
SECRETS = (DEFAULT_PASSWORD, USER_PASSWORD, WRONG_PASSWORD)
# Every key leadrouter writes starts with the prefix, or with `{` + prefix (SLA
# timer buckets are hash-tagged): the user may touch those and nothing else.
PREFIX = "lrsec"
USER_RULES = f"resetchannels ~{PREFIX}* ~{{{PREFIX}* +@all -@dangerous"
RULEBOOK = """
version: redis-auth-1
reps: [{id: r1, teams: [t], capacity: 100}]
teams: [{id: t}]
routes: [{id: all, assign: {team: t}}]
"""


@pytest.fixture(scope="module")
def acl_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    acl = {
        "default": (DEFAULT_PASSWORD, "~* &* +@all"),
        "leadrouter": (USER_PASSWORD, USER_RULES),
    }
    server = start_redis_acl(tmp_path_factory.mktemp("redis-acl"), acl)
    try:
        yield server
    finally:
        server.stop()


def url(server: RedisServer, user: str, password: str) -> str:
    return f"redis://{user}:{password}@{server.host}:{server.port}/0"


@pytest.mark.parametrize("user", ["leadrouter", ""], ids=["acl-user", "requirepass"])
async def test_credentials_check_accepts_right_and_names_wrong_passwords(
    acl_redis: RedisServer, user: str
) -> None:
    """The start-up check passes with an ACL user's password and with the default
    user's (`redis://:password@`), and raises CredentialsRejected naming Redis
    authentication, the address and the user (never a password) with a wrong one or
    none; settings reprs never show the URL's password."""
    right = USER_PASSWORD if user else DEFAULT_PASSWORD
    for password, ok in ((right, True), (WRONG_PASSWORD, False), ("", False)):
        settings = RedisSettings(url=SecretStr(url(acl_redis, user, password)))
        redis = Redis.from_url(settings.url.get_secret_value())
        try:
            if ok:
                await check_redis(redis, settings)
                continue
            with pytest.raises(CredentialsRejected) as caught:
                await check_redis(redis, settings)
        finally:
            await redis.aclose()
        message = str(caught.value)
        assert caught.value.service == "redis"
        assert message.startswith(f"Redis authentication failed at {redis_address(settings)}")
        assert redis_address(settings) == f"redis://{user + '@' if user else ''}127.0.0.1:{acl_redis.port}/0"
        shown = message + repr(settings) + repr(Settings(redis=settings)) + str(Settings(redis=settings))
        assert not [s for s in SECRETS if s in shown]


async def test_worker_with_a_least_privilege_acl_user_routes_and_breaches(
    acl_redis: RedisServer, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    """A worker (router and monitor) whose LEADROUTER_REDIS__URL names an ACL user limited
    to its key prefix and to non-dangerous commands routes a lead (lead.assigned) and
    fires its SLA breach (sla.breached): every script and command it needs is allowed,
    while keys outside the prefix and dangerous commands are not.
    `leadrouter explain` reads the decision with the same URL. No password is printed."""
    limited = Redis.from_url(url(acl_redis, "leadrouter", USER_PASSWORD))
    try:
        with pytest.raises(NoPermissionError):
            await limited.set("elsewhere", 1)
        with pytest.raises(NoPermissionError):
            await limited.flushall()
    finally:
        await limited.aclose()
    topics = TopicSettings(prefix=topic_prefix, partitions=1)
    await ensure_topics(kafka_bootstrap, topics.all_topics())
    workers = workers_for(
        kafka_bootstrap, url(acl_redis, "leadrouter", USER_PASSWORD), topic_prefix,
        f"{PREFIX}-{uuid.uuid4().hex[:6]}", tmp_path, RULEBOOK, sla__first_touch_seconds="1",
    )  # fmt: skip
    worker = workers.start("all")
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    out = AIOKafkaConsumer(
        topics.name("assignments"), topics.name("sla-events"),
        bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
    )  # fmt: skip
    await producer.start()
    await out.start()
    try:
        workers.wait_ready(timeout=60)
        lead = {"event_id": "acl-1-c", "type": "lead.created", "occurred_at": datetime.now(UTC).isoformat(),
                "lead": {"id": "acl-1", "country": "US"}}  # fmt: skip
        await producer.send_and_wait(topics.name("leads"), orjson.dumps(lead), key=b"acl-1")
        events = await next_events(out, 2, seconds=40)
        explain = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "router.cli", "explain", "acl-1"],
            env=workers.env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    finally:
        await out.stop()
        await producer.stop()
        workers.stop_all()
    assert sorted(e["type"] for e in events) == ["lead.assigned", "sla.breached"], worker.log()
    assert explain.returncode == 0, explain.stderr
    assert "r1" in explain.stdout
    assert "NOPERM" not in worker.log()
    shown = worker.log() + explain.stdout + explain.stderr
    assert not [s for s in SECRETS if s in shown]


async def test_wrong_password_stops_the_worker_and_explain_with_a_clear_error(
    acl_redis: RedisServer, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    """With a wrong password in LEADROUTER_REDIS__URL the worker neither hangs unready
    nor retries: it exits with status 3 after one `worker.credentials_rejected` line that
    names Redis authentication and the user; `leadrouter explain` exits 2 naming
    AuthenticationError. Neither prints a password."""
    topics = TopicSettings(prefix=topic_prefix, partitions=1)
    await ensure_topics(kafka_bootstrap, topics.all_topics())
    workers = workers_for(
        kafka_bootstrap, url(acl_redis, "leadrouter", WRONG_PASSWORD), topic_prefix,
        f"{PREFIX}-{uuid.uuid4().hex[:6]}", tmp_path, RULEBOOK,
    )  # fmt: skip
    exited = await asyncio.to_thread(workers.run_to_exit, "all", "worker.credentials_rejected")
    explain = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "router.cli", "explain", "acl-1"],
        env=workers.env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    log, rejected = exited.log, exited.lines
    assert exited.code == 3, log
    assert exited.seconds < 30, "fails fast, not after retries"
    assert len(rejected) == 1, log
    assert rejected[0]["service"] == "redis"
    assert rejected[0]["error"].startswith(
        f"Redis authentication failed at redis://leadrouter@127.0.0.1:{acl_redis.port}/0"
    )
    assert "Traceback" not in log
    assert explain.returncode == 2
    assert "AuthenticationError" in explain.stderr
    shown = log + explain.stdout + explain.stderr
    assert not [s for s in SECRETS if s in shown]
