"""`leadrouter dlq inspect|replay` on a real broker: dead letters are listed without
their values, replayed to their source topic once, and a dry run changes nothing."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from router.cli import main
from router.devinfra import ensure_topics

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

Received = tuple[bytes | None, bytes | None, dict[str, bytes]]
Headers = list[tuple[str, bytes]]
VALID = b'{"type":"lead.created","lead":{"id":"lead-1","email":"jane.doe@example.com"}}'


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The CLI configures the root logger (to the captured stderr): put it back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    aiokafka_level = logging.getLogger("aiokafka").level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("aiokafka").setLevel(aiokafka_level)


@pytest.fixture
def names(kafka_bootstrap: str, topic_prefix: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A fresh `<prefix>leads` (2 partitions) and `<prefix>leads.dlq`, and the CLI's env."""
    monkeypatch.setenv("LEADROUTER_KAFKA__BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("LEADROUTER_TOPICS__PREFIX", topic_prefix)
    monkeypatch.setenv("LEADROUTER_KAFKA__GROUP_PREFIX", f"{topic_prefix}g")
    topics = {"source": f"{topic_prefix}leads", "dlq": f"{topic_prefix}leads.dlq"}
    asyncio.run(ensure_topics(kafka_bootstrap, {topics["source"]: 2, topics["dlq"]: 1}))
    return topics


def dead_letter(source: str, reason: str, offset: int, detail: str = "") -> Headers:
    """The headers ConsumeLoop.dead_letter writes."""
    headers = {
        "dlq.reason": reason,
        "dlq.detail": detail or f"{reason} detail",
        "dlq.topic": source,
        "dlq.partition": "1",
        "dlq.offset": str(offset),
        "dlq.failed_at": datetime(2026, 11, 23, 14, 2, 11, 412345, tzinfo=UTC).isoformat(),
        "dlq.worker": "router",
    }
    return [(name, value.encode()) for name, value in headers.items()]


def produce(
    bootstrap: str, topic: str, records: Sequence[tuple[bytes | None, bytes | None, Headers]]
) -> None:
    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            for key, value, headers in records:
                await producer.send_and_wait(topic, value, key=key, headers=headers)
        finally:
            await producer.stop()

    asyncio.run(run())


def read_all(bootstrap: str, topic: str, partitions: int = 2) -> list[Received]:
    """Every record of the `partitions` of `topic` up to their current end, read without a group."""

    async def run() -> list[Received]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        got: list[Received] = []
        try:
            tps = [TopicPartition(topic, p) for p in range(partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            async with asyncio.timeout(20):
                for tp in tps:
                    while await consumer.position(tp) < ends[tp]:
                        for record in (await consumer.getmany(tp, timeout_ms=200)).get(tp, []):
                            got.append((record.key, record.value, dict(record.headers)))
        finally:
            await consumer.stop()
        return got

    return asyncio.run(run())


def test_inspect_and_replay_once(
    names: dict[str, str], kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Inspect lists each dead letter without its value and counts them by reason; a dry
    run publishes nothing; replay republishes key and value with dlq.replayed_from; a
    second replay publishes nothing; a new dead letter is replayed on its own."""
    source, dlq = names["source"], names["dlq"]
    letters = [
        (b"lead-1", VALID, dead_letter(source, "schema_violation", 10, "lead.email: too long")),
        (b"lead-2", b"\xff\xfe not utf-8", dead_letter(source, "not_utf8", 11)),
        (b"other-key", VALID, dead_letter(source, "bad_key", 12)),
        (b"lead-4", None, dead_letter(source, "not_an_object", 13)),
    ]
    produce(kafka_bootstrap, dlq, letters)

    assert main(["dlq", "inspect", "leads"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        f"0:0  2026-11-23T14:02:11.412345+00:00  {source}[1]@10  schema_violation  {len(VALID)} B  "
        "lead.email: too long"
    )
    assert out[3].startswith(f"0:3  2026-11-23T14:02:11.412345+00:00  {source}[1]@13  not_an_object  0 B")
    assert out[4] == (
        f"{dlq}: 4 dead letter(s); by reason: bad_key 1, not_an_object 1, not_utf8 1, schema_violation 1"
    )
    assert not any("jane" in line for line in out), "values stay hidden without --show-value"

    assert main(["dlq", "inspect", "leads", "--json", "--reason", "bad_key", "--show-value"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(d["offset"], d["reason"], d["value"]) for d in lines[:-1]] == [(2, "bad_key", VALID.decode())]
    assert lines[-1] == {
        "kind": "summary", "topic": dlq, "read": 4, "matched": 1, "shown": 1, "by_reason": {"bad_key": 1},
    }  # fmt: skip

    assert main(["dlq", "replay", "leads", "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len([line for line in out if line.startswith("would replay 0:")]) == 4
    assert out[-1].startswith(f"would replay 4 dead letter(s) from {dlq} to {source}")
    assert read_all(kafka_bootstrap, source) == [], "a dry run publishes nothing"

    assert main(["dlq", "replay", "leads"]) == 0
    assert capsys.readouterr().out.startswith(
        f"replayed 4 dead letter(s) from {dlq} to {source}; by reason: "
    )
    replayed = read_all(kafka_bootstrap, source)
    expected = {(key, value, f"{dlq}:0:{offset}".encode()) for offset, (key, value, _) in enumerate(letters)}
    assert {(key, value, headers["dlq.replayed_from"]) for key, value, headers in replayed} == expected
    assert all(set(headers) == {"dlq.replayed_from"} for _, _, headers in replayed)
    assert len(replayed) == 4

    assert main(["dlq", "replay", "leads"]) == 0
    assert capsys.readouterr().out.startswith("replayed 0 dead letter(s)")
    assert main(["dlq", "replay", "leads", "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith("would replay 0 dead letter(s)")
    assert len(read_all(kafka_bootstrap, source)) == 4, "a second replay publishes nothing"

    produce(kafka_bootstrap, dlq, [(b"lead-5", VALID, dead_letter(source, "schema_violation", 14))])
    assert main(["dlq", "replay", "leads"]) == 0
    assert capsys.readouterr().out.startswith("replayed 1 dead letter(s)")
    replayed = read_all(kafka_bootstrap, source)
    assert len(replayed) == 5
    assert (b"lead-5", VALID, {"dlq.replayed_from": f"{dlq}:0:4".encode()}) in replayed


def test_replay_by_reason_then_the_rest(
    names: dict[str, str], kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A replay limited to one reason keeps the others for a later run, and that run
    does not republish the first reason's records (the progress lives in the group's
    commit metadata on the broker)."""
    source, dlq = names["source"], names["dlq"]
    reasons = ["schema_violation", "bad_key", "schema_violation", "bad_key"]
    produce(
        kafka_bootstrap,
        dlq,
        [(f"lead-{i}".encode(), VALID, dead_letter(source, r, i)) for i, r in enumerate(reasons)],
    )
    assert main(["dlq", "replay", "leads", "--reason", "schema_violation"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("replayed 2 dead letter(s)")
    assert "2 left (other reasons)" in out
    assert main(["dlq", "replay", "leads"]) == 0
    assert capsys.readouterr().out.startswith(
        f"replayed 2 dead letter(s) from {dlq} to {source}; by reason: bad_key 2"
    )
    keys = sorted(key for key, _, _ in read_all(kafka_bootstrap, source) if key is not None)
    assert keys == [b"lead-0", b"lead-1", b"lead-2", b"lead-3"], "each dead letter exactly once"


def test_from_offset_skips_earlier_dead_letters(
    names: dict[str, str], kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--from-offset N replays from offset N on; the earlier ones count as handled."""
    source = names["source"]
    produce(
        kafka_bootstrap,
        names["dlq"],
        [(f"lead-{i}".encode(), VALID, dead_letter(source, "bad_key", i)) for i in range(4)],
    )
    assert main(["dlq", "replay", "leads", "--from-offset", "2"]) == 0
    assert capsys.readouterr().out.startswith("replayed 2 dead letter(s)")
    assert main(["dlq", "replay", "leads"]) == 0
    assert capsys.readouterr().out.startswith("replayed 0 dead letter(s)")
    assert sorted(key for key, _, _ in read_all(kafka_bootstrap, source) if key) == [b"lead-2", b"lead-3"]


def test_a_missing_dlq_topic_is_reported(names: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    """A TOPIC without a dead-letter topic exits 1 and says what was looked for."""
    assert main(["dlq", "inspect", "nothing-here"]) == 1
    assert "no topic" in capsys.readouterr().err


def test_an_unreachable_broker_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No broker is an operational error (exit 2) with one line, not a traceback."""
    monkeypatch.setenv("LEADROUTER_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:1")
    assert main(["dlq", "inspect", "leads"]) == 2
    assert "leadrouter dlq inspect: Kafka unavailable: KafkaConnectionError" in capsys.readouterr().err
