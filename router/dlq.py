"""Dead-letter tools: look into a `<topic>.dlq` and replay its records to their source.

`inspect` reads a dead-letter topic from the beginning to its current end without
a consumer group, so it commits nothing and any number of people can run it.

`replay` republishes dead letters to their source topic (the `dlq.topic` header)
with the original key and value plus a `dlq.replayed_from` header, and records its
progress in the consumer group `<group_prefix>-dlq-replay-<topic>`. The offsets are
committed only after the broker acknowledged the republished records, so a second
run does not republish what the first one did (a run that fails midway may repeat
its last unacknowledged batch: at-least-once, like the workers).

Progress per partition is a committed offset (every dead letter below it is
handled) plus, in the commit's metadata, a watermark per reason replayed with
`--reason` beyond that offset: a run that replays only `schema_violation` must
neither republish those again later nor lose the `bad_key` records in between.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from router.kafka import client_options, make_producer
from router.settings import Settings

REPLAYED_FROM = "dlq.replayed_from"
MISSING = "(missing)"
# A read that makes no progress for this long (broker gone, partition stuck) fails.
STALL_SECONDS = 30.0
# Kafka's default offset.metadata.max.bytes; a larger commit would be refused.
MAX_METADATA_BYTES = 4096


class DlqError(Exception):
    """The dead-letter topic cannot be read as asked (it does not exist, reading stalled)."""


class DlqRecord(Protocol):
    """The fields of an aiokafka ConsumerRecord read here (aiokafka ships no types)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]


@dataclass(frozen=True)
class DeadLetter:
    """One dead-letter record: where it is, what the worker said, and the original bytes."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    value_size: int
    headers: Mapping[str, str]

    @classmethod
    def of(cls, record: DlqRecord, keep_value: bool = True) -> DeadLetter:
        # Headers are ours (dlq.*); the last copy of a name wins, bad UTF-8 is replaced.
        headers = {name: raw.decode("utf-8", "replace") for name, raw in record.headers or ()}
        value = record.value
        return cls(
            record.topic,
            record.partition,
            record.offset,
            record.key if keep_value else None,
            value if keep_value else None,
            0 if value is None else len(value),
            headers,
        )

    def header(self, name: str) -> str:
        return self.headers.get(name, MISSING)

    @property
    def reason(self) -> str:
        return self.header("dlq.reason")

    @property
    def source_topic(self) -> str:
        return self.header("dlq.topic")

    @property
    def replayed_from(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"


def dlq_topic(settings: Settings, base: str) -> str:
    """`<prefix><base>.dlq` for a base topic name such as `leads`."""
    return settings.topics.dlq(settings.topics.name(base))


def replay_group(settings: Settings, base: str) -> str:
    return f"{settings.kafka.group_prefix}-dlq-replay-{base}"


def matches(letter: DeadLetter, reasons: Collection[str] | None) -> bool:
    return not reasons or letter.reason in reasons


# -- formatting (pure; the CLI prints these) ------------------------------------------


def _one_line(text: str) -> str:
    """Control characters escaped, so a record is always one terminal line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _shown_bytes(raw: bytes | None) -> str:
    return "null" if raw is None else _one_line(raw.decode("utf-8", "backslashreplace"))


def letter_line(letter: DeadLetter, show_value: bool = False) -> str:
    """`partition:offset failed_at source[partition]@offset reason size detail`, no value
    unless asked: values (and keys) are producer data and may hold PII."""
    line = (
        f"{letter.partition}:{letter.offset}  {letter.header('dlq.failed_at')}  "
        f"{letter.source_topic}[{letter.header('dlq.partition')}]@{letter.header('dlq.offset')}  "
        f"{letter.reason}  {letter.value_size} B  {_one_line(letter.header('dlq.detail'))}"
    )
    if show_value:
        line += f"\n    key: {_shown_bytes(letter.key)}\n    value: {_shown_bytes(letter.value)}"
    return line


def letter_json(letter: DeadLetter, show_value: bool = False) -> str:
    data: dict[str, Any] = {
        "kind": "dead_letter",
        "partition": letter.partition,
        "offset": letter.offset,
        "failed_at": letter.headers.get("dlq.failed_at"),
        "source_topic": letter.headers.get("dlq.topic"),
        "source_partition": _int_or_none(letter.headers.get("dlq.partition")),
        "source_offset": _int_or_none(letter.headers.get("dlq.offset")),
        "reason": letter.headers.get("dlq.reason"),
        "detail": letter.headers.get("dlq.detail"),
        "worker": letter.headers.get("dlq.worker"),
        "value_bytes": letter.value_size,
    }
    if show_value:
        data["key"] = None if letter.key is None else letter.key.decode("utf-8", "backslashreplace")
        data["value"] = None if letter.value is None else letter.value.decode("utf-8", "backslashreplace")
    return orjson.dumps(data).decode()


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def reason_summary(counts: Mapping[str, int]) -> str:
    """`schema_violation 3, bad_key 1`: most frequent first, then by name."""
    if not counts:
        return "none"
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{reason} {count}" for reason, count in ordered)


# -- inspect --------------------------------------------------------------------------


@dataclass
class Inspection:
    topic: str
    letters: list[DeadLetter] = field(default_factory=list)  # the first `limit` that match
    by_reason: Counter[str] = field(default_factory=Counter)  # every record that matches
    read: int = 0  # every record read, matching or not

    @property
    def matched(self) -> int:
        return sum(self.by_reason.values())

    def summary_line(self) -> str:
        shown = f", {len(self.letters)} shown" if len(self.letters) < self.matched else ""
        counts = reason_summary(self.by_reason)
        return f"{self.topic}: {self.matched} dead letter(s){shown}; by reason: {counts}"

    def summary_json(self) -> str:
        return orjson.dumps(
            {
                "kind": "summary",
                "topic": self.topic,
                "read": self.read,
                "matched": self.matched,
                "shown": len(self.letters),
                "by_reason": dict(self.by_reason),
            }
        ).decode()

    def add(self, letter: DeadLetter, reasons: Collection[str] | None, limit: int | None) -> None:
        self.read += 1
        if not matches(letter, reasons):
            return
        self.by_reason[letter.reason] += 1
        if limit is None or len(self.letters) < limit:
            self.letters.append(letter)


async def inspect(
    settings: Settings,
    base: str,
    *,
    reasons: Collection[str] | None = None,
    limit: int | None = None,
    keep_values: bool = False,
) -> Inspection:
    """Every dead letter of `<prefix><base>.dlq` up to its current end, without a group."""
    topic = dlq_topic(settings, base)
    result = Inspection(topic)
    async with _admin(settings) as admin:
        partitions = await _partitions(admin, topic)
    consumer = _consumer(settings, group_id=None)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        async for _tp, records in _read_to_end(consumer, partitions):
            for record in records:
                result.add(DeadLetter.of(record, keep_values), reasons, limit)
    finally:
        await consumer.stop()
    return result


def _consumer(settings: Settings, group_id: str | None) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        **client_options(settings.kafka),
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=settings.kafka.max_poll_records,
    )


@asynccontextmanager
async def _admin(settings: Settings) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(**client_options(settings.kafka))
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


async def _partitions(admin: AIOKafkaAdminClient, topic: str) -> list[TopicPartition]:
    # Metadata of every topic: asking for one by name may create it (auto.create.topics).
    for meta in await admin.describe_topics():
        if meta["topic"] == topic and meta["partitions"]:
            return [
                TopicPartition(topic, p["partition"]) for p in sorted(meta["partitions"], key=_partition_id)
            ]
    raise DlqError(f"no topic {topic!r} (TOPIC is a base name such as 'leads'; the prefix is added)")


def _partition_id(meta: Mapping[str, Any]) -> int:
    return int(meta["partition"])


async def _read_to_end(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition]
) -> AsyncIterator[tuple[TopicPartition, list[DlqRecord]]]:
    """Records of the assigned partitions, in batches, up to the end seen at the start."""
    ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
    remaining = {tp for tp in partitions if await consumer.position(tp) < ends[tp]}
    last_progress = time.monotonic()
    while remaining:
        polled = await consumer.getmany(*remaining, timeout_ms=200)
        for tp, records in polled.items():
            batch = [r for r in records if r.offset < ends[tp]]
            if batch:
                last_progress = time.monotonic()
                yield tp, batch
        remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
        if remaining and time.monotonic() - last_progress > STALL_SECONDS:
            stuck = ", ".join(sorted(f"{tp.topic}[{tp.partition}]" for tp in remaining))
            raise DlqError(f"no progress reading {stuck} for {STALL_SECONDS:g}s")


# -- replay ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """What a replay group has handled on one partition.

    Every dead letter below `offset` is handled; so is one of reason `r` below
    `done[r]` (replayed by a run with `--reason r`). Kept as the commit's offset and
    metadata, so progress survives with the group and needs no other store.
    """

    offset: int = 0
    done: Mapping[str, int] = field(default_factory=dict)

    def handled(self, letter: DeadLetter) -> bool:
        return letter.offset < max(self.offset, self.done.get(letter.reason, 0))

    def metadata(self) -> str:
        return orjson.dumps(dict(sorted(self.done.items()))).decode() if self.done else ""

    @classmethod
    def parse(cls, offset: int, metadata: str | None) -> Progress:
        """From a committed offset (-1: none) and metadata; unreadable metadata counts as none."""
        done: dict[str, int] = {}
        try:
            data = orjson.loads(metadata) if metadata else {}
        except orjson.JSONDecodeError:
            data = {}
        if isinstance(data, dict):
            done = {k: v for k, v in data.items() if isinstance(v, int) and not isinstance(v, bool)}
        start = max(offset, 0)
        return cls(start, {k: v for k, v in done.items() if v > start})

    def advanced(self, end: int, first_pending: int | None, reasons: Collection[str] | None) -> Progress:
        """After a run read everything in [offset, end): `first_pending` is the first
        record it left for a later run (filtered out by reason), if any."""
        offset = end if first_pending is None else first_pending
        done = dict(self.done)
        for reason in reasons or ():
            done[reason] = max(done.get(reason, 0), end)
        return Progress(offset, {k: v for k, v in done.items() if v > offset})


@dataclass
class ReplayResult:
    topic: str
    source: str
    group: str
    dry_run: bool
    letters: list[DeadLetter] = field(default_factory=list)  # (would be) replayed, in order
    by_reason: Counter[str] = field(default_factory=Counter)
    unreplayable: list[DeadLetter] = field(default_factory=list)  # dlq.topic is not the source
    already: int = 0  # read again but replayed by an earlier run (other --reason)
    left: int = 0  # not matching --reason: left for a later run

    @property
    def replayed(self) -> int:
        return sum(self.by_reason.values())

    def summary_line(self) -> str:
        verb = "would replay" if self.dry_run else "replayed"
        line = f"{verb} {self.replayed} dead letter(s) from {self.topic} to {self.source}"
        line += f"; by reason: {reason_summary(self.by_reason)}"
        if self.left:
            line += f"; {self.left} left (other reasons)"
        if self.unreplayable:
            line += f"; {len(self.unreplayable)} skipped (dlq.topic is not {self.source})"
        return line


async def replay(
    settings: Settings,
    base: str,
    *,
    reasons: Collection[str] | None = None,
    dry_run: bool = False,
    from_offset: int | None = None,
) -> ReplayResult:
    """Republish the dead letters of `<prefix><base>.dlq` not yet replayed by the group.

    `from_offset` skips the dead letters below it for good (on every partition).
    A dry run reads the group's progress but publishes and commits nothing.
    """
    topic = dlq_topic(settings, base)
    group = replay_group(settings, base)
    result = ReplayResult(topic, settings.topics.name(base), group, dry_run)
    async with _admin(settings) as admin:
        partitions = await _partitions(admin, topic)
        progress = await _committed(admin, group, partitions)
    consumer = _consumer(settings, group_id=group)
    producer = None if dry_run else make_producer(settings.kafka)
    await consumer.start()
    try:
        if from_offset is not None:
            progress = {tp: _skip_below(p, from_offset) for tp, p in progress.items()}
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            # Past the end would be "out of range", which resets to the beginning.
            consumer.seek(tp, min(progress[tp].offset, ends[tp]))
        if producer is not None:
            await producer.start()
        await _replay_partitions(consumer, producer, partitions, progress, reasons, result)
    finally:
        await consumer.stop()
        if producer is not None:
            await producer.stop()
    return result


def _skip_below(progress: Progress, offset: int) -> Progress:
    start = max(progress.offset, offset)
    return Progress(start, {k: v for k, v in progress.done.items() if v > start})


async def _committed(
    admin: AIOKafkaAdminClient, group: str, partitions: list[TopicPartition]
) -> dict[TopicPartition, Progress]:
    # The admin API returns the commit's metadata too (the consumer's `committed` does not).
    # A group's coordinator may not be ready on a broker that never saw a group: retry.
    for attempt in range(8):
        try:
            offsets: dict[TopicPartition, OffsetAndMetadata] = await admin.list_consumer_group_offsets(
                group, partitions=partitions
            )
            break
        except KafkaError as exc:
            if not exc.retriable or attempt == 7:
                raise
            await asyncio.sleep(min(0.1 * 2**attempt, 2.0))
    out = {}
    for tp in partitions:
        found = offsets.get(tp)
        out[tp] = Progress.parse(found.offset, found.metadata) if found else Progress()
    return out


async def _replay_partitions(
    consumer: AIOKafkaConsumer,
    producer: AIOKafkaProducer | None,
    partitions: list[TopicPartition],
    progress: dict[TopicPartition, Progress],
    reasons: Collection[str] | None,
    result: ReplayResult,
) -> None:
    first_pending: dict[TopicPartition, int | None] = dict.fromkeys(partitions)
    async for tp, records in _read_to_end(consumer, partitions):
        sent: list[asyncio.Future[Any]] = []
        for record in records:
            letter = DeadLetter.of(record)
            if progress[tp].handled(letter):
                result.already += 1
            elif letter.source_topic != result.source:
                # Never publish where a header says: only back to this DLQ's source topic.
                result.unreplayable.append(replace(letter, key=None, value=None))
            elif not matches(letter, reasons):
                result.left += 1
                if first_pending[tp] is None:
                    first_pending[tp] = letter.offset
            else:
                result.letters.append(replace(letter, key=None, value=None))  # sizes, not bytes
                result.by_reason[letter.reason] += 1
                if producer is not None:
                    headers = [(REPLAYED_FROM, letter.replayed_from.encode())]
                    fut = await producer.send(result.source, letter.value, letter.key, headers=headers)
                    sent.append(fut)
        if producer is None:
            continue
        await asyncio.gather(*sent)  # acknowledged by the broker before the commit
        progress[tp] = progress[tp].advanced(records[-1].offset + 1, first_pending[tp], reasons)
        meta = progress[tp].metadata()
        if len(meta.encode()) > MAX_METADATA_BYTES:  # cannot happen with the closed reason set
            raise DlqError(f"replay progress metadata too large ({len(meta)} bytes)")
        await consumer.commit({tp: OffsetAndMetadata(progress[tp].offset, meta)})
