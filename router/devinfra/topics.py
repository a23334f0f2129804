"""Topic set-up and broker readiness through aiokafka's admin client, and a sync bridge."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from router.devinfra.process import InfraError

T = TypeVar("T")


def run_coro(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, even inside a running loop.

    A private thread with its own loop leaves the caller's event-loop state alone.
    """
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(factory()))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            error.append(exc)

    thread = threading.Thread(target=target, name="devinfra-run-coro", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def _admin(
    bootstrap_servers: str, timeout: float, options: Mapping[str, Any] | None = None
) -> AIOKafkaAdminClient:
    # `options`: router.kafka.client_options, so SASL and TLS apply here too.
    return AIOKafkaAdminClient(
        **{
            "bootstrap_servers": bootstrap_servers,
            "client_id": "leadrouter-devinfra",
            "request_timeout_ms": max(1000, int(timeout * 1000)),
            **(options or {}),
        }
    )


async def broker_ready(bootstrap_servers: str, probe_seconds: float = 5) -> bool:
    """True once a metadata request lists a broker (starting brokers are not listed)."""
    admin = _admin(bootstrap_servers, probe_seconds)
    try:
        async with asyncio.timeout(probe_seconds):
            await admin.start()
            cluster: dict[str, Any] = await admin.describe_cluster()
            return bool(cluster.get("brokers"))
    except (KafkaError, OSError, TimeoutError):
        return False
    finally:
        await admin.close()


async def ensure_topics(
    bootstrap_servers: str,
    topics: Mapping[str, int],
    timeout: float = 30,  # noqa: ASYNC109 - one overall deadline, as sync callers pass it
    options: Mapping[str, Any] | None = None,
) -> None:
    """Create missing topics (replication 1); wait until every partition has a leader.

    An existing topic with another partition count is an error, not a silent mismatch.
    """
    if not topics:
        return
    admin = _admin(bootstrap_servers, timeout, options)
    try:
        async with asyncio.timeout(timeout):
            await admin.start()
            await _create_missing(admin, topics)
            await _wait_for_leaders(admin, topics)
    except TimeoutError as exc:
        raise InfraError(
            f"topics {sorted(topics)} not ready on {bootstrap_servers} after {timeout:.0f}s"
        ) from exc
    finally:
        await admin.close()


async def _create_missing(admin: AIOKafkaAdminClient, topics: Mapping[str, int]) -> None:
    existing = set(await admin.list_topics()) & set(topics)
    for meta in await admin.describe_topics(sorted(existing)) if existing else []:
        name, found = meta["topic"], len(meta["partitions"])
        if found != topics[name]:
            raise InfraError(f"topic {name!r} has {found} partitions, expected {topics[name]}")
    missing = [NewTopic(name, count, 1) for name, count in topics.items() if name not in existing]
    if not missing:
        return
    response = await admin.create_topics(missing)
    for result in response.to_object()["topic_errors"]:
        code = result["error_code"]
        # Another process may create the same topic between our list and create.
        if code in (0, TopicAlreadyExistsError.errno):
            continue
        error = for_code(code).__name__
        detail = result.get("error_message") or ""
        raise InfraError(f"creating topic {result['topic']!r} failed: {error} {detail}".rstrip())


async def _wait_for_leaders(admin: AIOKafkaAdminClient, topics: Mapping[str, int]) -> None:
    while True:
        pending: list[str] = []
        for meta in await admin.describe_topics(list(topics)):
            name = meta["topic"]
            partitions = meta["partitions"]
            ready = meta["error_code"] == 0 and len(partitions) == topics[name]
            if not ready or any(p["error_code"] != 0 or p["leader"] < 0 for p in partitions):
                pending.append(name)
        if not pending:
            return
        await asyncio.sleep(0.1)
