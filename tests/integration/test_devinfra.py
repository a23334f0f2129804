"""The local Kafka and Redis that every integration test stands on."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from router.devinfra import (
    InfraError,
    KafkaBroker,
    PortInUseError,
    RedisServer,
    dev_down,
    dev_status,
    dev_up,
    ensure_kafka_jars,
    free_port,
    free_ports,
)
from router.devinfra.process import pid_alive, wait_for
from router.devinfra.redis_server import redis_server_executable
from tests.services import MakeTopics, unavailable

pytestmark = pytest.mark.integration


async def test_kafka_round_trip_on_three_partitions(
    kafka_bootstrap: str, make_topics: MakeTopics, topic_prefix: str
) -> None:
    """A record sent to each partition of a new topic is consumed back by a group."""
    topic = (await make_topics({"roundtrip": 3}))["roundtrip"]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        assert await producer.partitions_for(topic) == {0, 1, 2}
        for partition in range(3):
            await producer.send_and_wait(topic, b"m%d" % partition, partition=partition)
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"{topic_prefix}group",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    received: dict[int, bytes] = {}
    try:
        async with asyncio.timeout(60):
            while len(received) < 3:
                batches = await consumer.getmany(timeout_ms=500)
                for tp, records in batches.items():
                    received.update((tp.partition, r.value) for r in records)
    finally:
        await consumer.stop()
    assert received == {0: b"m0", 1: b"m1", 2: b"m2"}


async def test_redis_ping_set_get(redis_url: str, redis_prefix: str) -> None:
    """The test redis-server answers PING and keeps what is SET."""
    client = aioredis.Redis.from_url(redis_url)
    try:
        assert await client.ping()
        await client.set(f"{redis_prefix}key", "value", ex=60)
        assert await client.get(f"{redis_prefix}key") == b"value"
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    "argv",
    [
        ["sleep", "60"],
        # Names the main class but not our config: still not our broker.
        [sys.executable, "-c", "import time; time.sleep(60)", "kafka.Kafka"],
    ],
    ids=["sleep", "other-kafka"],
)
def test_stop_never_kills_a_process_it_did_not_start(tmp_path: Path, argv: list[str]) -> None:
    """A pidfile naming someone else's process is dropped; the process survives."""
    bystander = subprocess.Popen(argv)
    try:
        port, controller_port = free_ports(2)
        broker = KafkaBroker(tmp_path, port=port, controller_port=controller_port)
        broker.pidfile.write_text(f"{bystander.pid}\n")
        assert broker.pid is None
        assert broker.stop(timeout=1) is None
        assert bystander.poll() is None
        assert not broker.pidfile.exists()
    finally:
        bystander.kill()
        bystander.wait()


def test_server_stops_when_its_owner_exits(tmp_path: Path) -> None:
    """A server started for a process is stopped once that process is gone."""
    try:
        redis_server_executable()
    except InfraError as exc:
        unavailable(str(exc))
    owner = subprocess.Popen(["sleep", "60"])
    server = RedisServer(tmp_path, port=free_port(), owner_pid=owner.pid)
    try:
        server.start()
        pid = server.pid
        assert pid is not None
        owner.kill()
        owner.wait()
        assert wait_for(lambda: not pid_alive(pid), timeout=10)
    finally:
        owner.kill()
        owner.wait()
        server.stop()


def _require_local_binaries() -> None:
    try:
        ensure_kafka_jars()
        redis_server_executable()
    except InfraError as exc:
        unavailable(str(exc))


def test_dev_up_refuses_a_busy_port(tmp_path: Path) -> None:
    """`dev up` names the port when something else already listens on it."""
    _require_local_binaries()
    kafka_port, controller_port = free_ports(2)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        busy = squatter.getsockname()[1]
        with pytest.raises(PortInUseError, match=str(busy)):
            dev_up(tmp_path, kafka_port, controller_port, busy, {})
    assert not dev_status(tmp_path).redis_running


def test_dev_up_status_down_round_trip(tmp_path: Path) -> None:
    """`dev up` starts both services once, `status` reports them, `down` stops them."""
    _require_local_binaries()
    state = tmp_path / "dev"
    kafka_port, controller_port, redis_port = free_ports(3)
    try:
        up = dev_up(state, kafka_port, controller_port, redis_port, {"leads": 3})
        assert up.running
        assert up.kafka_bootstrap == f"127.0.0.1:{kafka_port}"
        assert up.redis_url == f"redis://127.0.0.1:{redis_port}/0"

        # A second `up` reuses the running services and their ports.
        other_kafka, other_controller, other_redis = free_ports(3)
        again = dev_up(state, other_kafka, other_controller, other_redis, {"leads": 3})
        assert again == up
        assert dev_status(state) == up
        assert up.lines()[0] == (f"kafka: running (pid {up.kafka_pid}) at 127.0.0.1:{kafka_port}")
    finally:
        messages = dev_down(state)

    assert messages == [
        f"kafka: stopped (pid {up.kafka_pid})",
        f"redis: stopped (pid {up.redis_pid})",
    ]
    down = dev_status(state)
    assert not down.kafka_running
    assert not down.redis_running
    assert down.lines()[:2] == ["kafka: stopped", "redis: stopped"]
    assert dev_down(state) == ["kafka: not running", "redis: not running"]
