"""Dead-letter inspect and replay logic on fake records: formatting, filtering and the
replay progress that makes a second run republish nothing (no Kafka)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndMetadata

from router.cli import main
from router.dlq import (
    MISSING,
    REPLAYED_FROM,
    DeadLetter,
    Inspection,
    Progress,
    ReplayResult,
    _replay_partitions,
    dlq_topic,
    letter_json,
    letter_line,
    matches,
    reason_summary,
    replay_group,
)
from router.settings import KafkaSettings, Settings, TopicSettings

DLQ = "staging-leads.dlq"
SOURCE = "staging-leads"
EMAIL_VALUE = b'{"type":"lead.created","lead":{"id":"lead-1","email":"jane.doe@example.com"}}'


@dataclass
class FakeRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = ()


def dead_letter_record(
    offset: int,
    reason: str = "schema_violation",
    *,
    partition: int = 0,
    source: str = SOURCE,
    key: bytes | None = b"lead-1",
    value: bytes | None = EMAIL_VALUE,
    detail: str = "lead.email: String should have at most 256 characters",
) -> FakeRecord:
    """A record as ConsumeLoop.dead_letter writes it."""
    headers = {
        "dlq.reason": reason,
        "dlq.detail": detail,
        "dlq.topic": source,
        "dlq.partition": "3",
        "dlq.offset": str(100 + offset),
        "dlq.failed_at": "2026-11-23T14:02:11.412345+00:00",
        "dlq.worker": "router",
    }
    return FakeRecord(DLQ, partition, offset, key, value, [(k, v.encode()) for k, v in headers.items()])


# -- names ----------------------------------------------------------------------------


def test_topic_and_group_names_follow_the_settings() -> None:
    """TOPIC is a base name: the DLQ gets the environment prefix and suffix, the replay
    group the group prefix."""
    settings = Settings(
        topics=TopicSettings(prefix="staging-", dlq_suffix=".dead"),
        kafka=KafkaSettings(group_prefix="lr-staging"),
    )
    assert dlq_topic(settings, "leads") == "staging-leads.dead"
    assert replay_group(settings, "leads") == "lr-staging-dlq-replay-leads"


# -- records and formatting -------------------------------------------------------------


def test_a_dead_letter_reads_the_worker_headers() -> None:
    """Reason, source and position come from the dlq.* headers; the value's size is kept
    even when the value itself is not."""
    letter = DeadLetter.of(dead_letter_record(7), keep_value=False)
    assert (letter.reason, letter.source_topic) == ("schema_violation", SOURCE)
    assert letter.value is None
    assert letter.key is None
    assert letter.value_size == len(EMAIL_VALUE)
    assert letter.replayed_from == f"{DLQ}:0:7"


def test_the_line_never_shows_the_value_or_key() -> None:
    """One line per dead letter: position, when, where from, reason, size and detail; the
    value (PII) and the key only with --show-value."""
    letter = DeadLetter.of(dead_letter_record(7))
    line = letter_line(letter)
    assert line == (
        f"0:7  2026-11-23T14:02:11.412345+00:00  {SOURCE}[3]@107  schema_violation  "
        f"{len(EMAIL_VALUE)} B  lead.email: String should have at most 256 characters"
    )
    assert "jane.doe" not in line
    shown = letter_line(letter, show_value=True)
    assert "jane.doe@example.com" in shown
    assert "key: lead-1" in shown


def test_json_lines_carry_numbers_and_no_value_unless_asked() -> None:
    letter = DeadLetter.of(dead_letter_record(7))
    data = json.loads(letter_json(letter))
    assert data == {
        "kind": "dead_letter",
        "partition": 0,
        "offset": 7,
        "failed_at": "2026-11-23T14:02:11.412345+00:00",
        "source_topic": SOURCE,
        "source_partition": 3,
        "source_offset": 107,
        "reason": "schema_violation",
        "detail": "lead.email: String should have at most 256 characters",
        "worker": "router",
        "value_bytes": len(EMAIL_VALUE),
    }
    shown = json.loads(letter_json(letter, show_value=True))
    assert shown["value"] == EMAIL_VALUE.decode()
    assert shown["key"] == "lead-1"


def test_records_without_headers_or_value_still_print() -> None:
    """A record someone produced by hand (no headers, a tombstone) prints with
    `(missing)` fields and a size of 0 instead of failing."""
    letter = DeadLetter.of(FakeRecord(DLQ, 0, 1, None, None, []))
    assert letter.reason == MISSING
    line = letter_line(letter, show_value=True)
    assert line.startswith(f"0:1  {MISSING}  {MISSING}[{MISSING}]@{MISSING}  {MISSING}  0 B")
    assert "value: null" in line
    data = json.loads(letter_json(letter))
    assert data["reason"] is None
    assert data["source_offset"] is None


def test_control_characters_cannot_break_a_line() -> None:
    """Details and values are escaped: every dead letter is one terminal line (plus the
    value lines with --show-value), whatever bytes it holds."""
    record = dead_letter_record(1, detail="a\nb\x1b[31mred", value=b"x\ny\xff")
    letter = DeadLetter.of(record)
    assert "\n" not in letter_line(letter)
    assert "\x1b" not in letter_line(letter)
    assert "a\\nb\\x1b[31mred" in letter_line(letter)
    assert letter_line(letter, show_value=True).splitlines()[-1] == "    value: x\\ny\\xff"


def test_bad_utf8_in_headers_is_replaced() -> None:
    record = FakeRecord(DLQ, 0, 1, b"k", b"v", [("dlq.reason", b"bad\xffkey")])
    assert DeadLetter.of(record).reason == "bad\ufffdkey"


# -- filtering and summaries -----------------------------------------------------------


def test_reason_filter() -> None:
    letter = DeadLetter.of(dead_letter_record(1, "bad_key"))
    assert matches(letter, None)
    assert matches(letter, frozenset())
    assert matches(letter, {"bad_key", "too_large"})
    assert not matches(letter, {"schema_violation"})


def test_reason_summary_is_most_frequent_first() -> None:
    assert reason_summary({"bad_key": 1, "schema_violation": 3, "too_large": 1}) == (
        "schema_violation 3, bad_key 1, too_large 1"
    )
    assert reason_summary({}) == "none"


def inspection(reasons: set[str] | None, limit: int | None) -> Inspection:
    result = Inspection(DLQ)
    for offset, reason in enumerate(["bad_key", "schema_violation", "bad_key", "too_large", "bad_key"]):
        result.add(DeadLetter.of(dead_letter_record(offset, reason)), reasons, limit)
    return result


def test_inspect_counts_everything_and_shows_up_to_the_limit() -> None:
    """--limit bounds the lines, not the summary: the counts cover the whole topic."""
    result = inspection(None, 2)
    assert [letter.offset for letter in result.letters] == [0, 1]
    assert result.by_reason == {"bad_key": 3, "schema_violation": 1, "too_large": 1}
    assert result.summary_line() == (
        f"{DLQ}: 5 dead letter(s), 2 shown; by reason: bad_key 3, schema_violation 1, too_large 1"
    )
    assert json.loads(result.summary_json()) == {
        "kind": "summary",
        "topic": DLQ,
        "read": 5,
        "matched": 5,
        "shown": 2,
        "by_reason": {"bad_key": 3, "schema_violation": 1, "too_large": 1},
    }


def test_inspect_with_a_reason_counts_only_that_reason() -> None:
    result = inspection({"bad_key"}, None)
    assert [letter.offset for letter in result.letters] == [0, 2, 4]
    assert result.summary_line() == f"{DLQ}: 3 dead letter(s); by reason: bad_key 3"
    assert result.read == 5


def test_inspect_limit_zero_prints_only_the_summary() -> None:
    result = inspection(None, 0)
    assert result.letters == []
    assert result.matched == 5


# -- replay progress --------------------------------------------------------------------


def test_progress_round_trips_through_commit_metadata() -> None:
    progress = Progress(4, {"schema_violation": 9, "bad_key": 6})
    assert Progress.parse(progress.offset, progress.metadata()) == progress
    assert Progress(4).metadata() == ""


@pytest.mark.parametrize(
    ("offset", "metadata", "expected"),
    [
        (-1, None, Progress(0)),  # nothing committed
        (-1, "", Progress(0)),
        (5, "not json", Progress(5)),  # someone else's commit: only the offset counts
        (5, '["x"]', Progress(5)),
        (
            5,
            '{"bad_key": "7", "too_large": true, "schema_violation": 9}',
            Progress(5, {"schema_violation": 9}),
        ),
        (5, '{"bad_key": 3}', Progress(5)),  # below the offset: nothing to remember
    ],
)
def test_progress_parse_is_tolerant(offset: int, metadata: str | None, expected: Progress) -> None:
    assert Progress.parse(offset, metadata) == expected


def test_progress_handled() -> None:
    progress = Progress(3, {"bad_key": 6})
    letters = {o: DeadLetter.of(dead_letter_record(o, r)) for o, r in [(2, "too_large"), (4, "bad_key")]}
    assert progress.handled(letters[2])  # below the offset, any reason
    assert progress.handled(letters[4])  # replayed by a --reason bad_key run
    assert not progress.handled(DeadLetter.of(dead_letter_record(4, "too_large")))
    assert not progress.handled(DeadLetter.of(dead_letter_record(6, "bad_key")))


def test_progress_advance_keeps_what_a_reason_run_left_behind() -> None:
    """A run with --reason moves the offset only up to the first record it left; the
    reasons it replayed remember their own watermark."""
    start = Progress(2, {"too_large": 5})
    after = start.advanced(end=10, first_pending=4, reasons={"bad_key"})
    assert after == Progress(4, {"too_large": 5, "bad_key": 10})
    assert start.advanced(end=10, first_pending=None, reasons=None) == Progress(10)
    assert start.advanced(end=10, first_pending=7, reasons={"bad_key"}) == Progress(7, {"bad_key": 10})


# -- replay against fake clients --------------------------------------------------------


class FakeConsumer:
    """The part of AIOKafkaConsumer replay uses, over fixed records."""

    def __init__(self, records: Mapping[int, list[FakeRecord]], start: Mapping[int, int]) -> None:
        self.records = {TopicPartition(DLQ, p): recs for p, recs in records.items()}
        self.positions = {TopicPartition(DLQ, p): start.get(p, 0) for p in records}
        self.commits: list[dict[TopicPartition, OffsetAndMetadata]] = []

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: len(self.records[tp]) for tp in partitions}

    async def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]

    async def getmany(self, *partitions: TopicPartition, timeout_ms: int) -> dict[TopicPartition, list[Any]]:
        out = {}
        for tp in partitions:
            batch = self.records[tp][self.positions[tp] : self.positions[tp] + 2]  # small batches
            if batch:
                out[tp] = batch
                self.positions[tp] += len(batch)
        return out

    async def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        self.commits.append(offsets)


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]] = []

    async def send(
        self, topic: str, value: bytes | None, key: bytes | None, headers: list[tuple[str, bytes]]
    ) -> asyncio.Future[None]:
        self.sent.append((topic, value, key, headers))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


REASONS = ["schema_violation", "bad_key", "schema_violation", "bad_key", "too_large"]


class Store:
    """A replay group's committed progress between runs."""

    def __init__(self, records: list[FakeRecord]) -> None:
        self.records = records
        self.progress = Progress()
        self.tp = TopicPartition(DLQ, 0)

    async def run(
        self, reasons: set[str] | None = None, dry_run: bool = False
    ) -> tuple[ReplayResult, FakeProducer]:
        consumer = FakeConsumer({0: self.records}, {0: self.progress.offset})
        producer = FakeProducer()
        result = ReplayResult(DLQ, SOURCE, "g", dry_run)
        progress = {self.tp: self.progress}
        await _replay_partitions(
            consumer, None if dry_run else producer, [self.tp], progress, reasons, result
        )
        if consumer.commits:
            committed = consumer.commits[-1][self.tp]
            self.progress = Progress.parse(committed.offset, committed.metadata)
        return result, producer


async def test_replay_republishes_key_value_and_origin_once() -> None:
    """Each dead letter goes back to its source with its key and value and a
    dlq.replayed_from header; a second run republishes nothing."""
    store = Store([dead_letter_record(o, r, key=f"lead-{o}".encode()) for o, r in enumerate(REASONS)])
    result, producer = await store.run()
    assert result.replayed == 5
    assert result.by_reason == {"schema_violation": 2, "bad_key": 2, "too_large": 1}
    assert [sent[2] for sent in producer.sent] == [f"lead-{o}".encode() for o in range(5)]
    assert producer.sent[0] == (SOURCE, EMAIL_VALUE, b"lead-0", [(REPLAYED_FROM, f"{DLQ}:0:0".encode())])
    assert store.progress == Progress(5)
    again, producer = await store.run()
    assert (again.replayed, producer.sent) == (0, [])


async def test_replay_by_reason_leaves_the_rest_for_later() -> None:
    """Replaying one reason neither loses the others (the offset stays at the first one
    left) nor replays that reason twice when everything is replayed afterwards."""
    store = Store([dead_letter_record(o, r) for o, r in enumerate(REASONS)])
    first, producer = await store.run({"schema_violation"})
    assert [letter.offset for letter in first.letters] == [0, 2]
    assert first.left == 3
    assert store.progress == Progress(1, {"schema_violation": 5})
    second, producer = await store.run({"schema_violation"})
    assert producer.sent == []
    assert second.already == 1  # offset 2, read again because offset 1 is still pending
    rest, producer = await store.run()
    assert [letter.offset for letter in rest.letters] == [1, 3, 4]
    assert len(producer.sent) == 3
    assert store.progress == Progress(5)


async def test_dry_run_publishes_and_commits_nothing() -> None:
    store = Store([dead_letter_record(o, r) for o, r in enumerate(REASONS)])
    result, producer = await store.run(dry_run=True)
    assert result.replayed == 5
    assert result.summary_line().startswith(f"would replay 5 dead letter(s) from {DLQ} to {SOURCE}")
    assert producer.sent == []
    assert store.progress == Progress()


async def test_a_dead_letter_from_another_topic_is_never_published() -> None:
    """Replay writes only to this DLQ's own source topic, whatever a header says."""
    records = [dead_letter_record(0), dead_letter_record(1, source="payments"), dead_letter_record(2)]
    store = Store(records)
    result, producer = await store.run()
    assert [letter.offset for letter in result.unreplayable] == [1]
    assert {sent[0] for sent in producer.sent} == {SOURCE}
    assert len(producer.sent) == 2
    assert "1 skipped (dlq.topic is not staging-leads)" in result.summary_line()
    assert store.progress == Progress(3)


# -- the command line (no broker needed for these) --------------------------------------


@pytest.fixture
def _restore_logging() -> Iterator[None]:
    """The CLI configures the root logger (to the captured stderr): put it back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    aiokafka_level = logging.getLogger("aiokafka").level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("aiokafka").setLevel(aiokafka_level)


@pytest.mark.usefixtures("_restore_logging")
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["inspect", "leads", "--limit", "-1"], "--limit needs N >= 0"),
        (["replay", "leads", "--from-offset", "-3"], "--from-offset needs N >= 0"),
    ],
)
def test_bad_numbers_are_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dlq", *argv]) == 2
    assert message in capsys.readouterr().err


def test_an_unknown_reason_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """--reason takes only the closed set of dead-letter reasons (a typo matches nothing)."""
    with pytest.raises(SystemExit) as exited:
        main(["dlq", "replay", "leads", "--reason", "schema-violation"])
    assert exited.value.code == 2
    assert "invalid choice: 'schema-violation'" in capsys.readouterr().err
