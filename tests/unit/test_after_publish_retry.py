"""Marking a batch's leads published survives a failed attempt.

The consume loop retries `after_publish` after a transient Redis error; the retry must
mark the same leads, or they would stay "never announced" and an SLA reassignment or a
requeue would skip them for good.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry
from redis.exceptions import ConnectionError as RedisConnectionError

from monitors.metrics import Metrics
from router.routing import RoutingProcessor
from router.settings import Settings


class FlakyStore:
    def __init__(self) -> None:
        self.failures = 1
        self.marked: list[list[str]] = []

    async def mark_published(self, lead_ids: Iterable[str]) -> None:
        if self.failures:
            self.failures -= 1
            raise RedisConnectionError("Redis went away")
        self.marked.append(list(lead_ids))


async def test_a_retried_after_publish_marks_the_same_leads() -> None:
    store = FlakyStore()
    processor = RoutingProcessor(
        Settings(),
        lambda: None,
        store,
        Metrics(CollectorRegistry()),
        lambda: datetime.now(UTC),  # type: ignore[arg-type, return-value]
    )
    processor.begin_batch()
    processor._published += ["lead-1", "lead-2"]  # what publishing two leads leaves
    with pytest.raises(RedisConnectionError):
        await processor.after_publish()
    await processor.after_publish()  # the loop's retry
    assert store.marked == [["lead-1", "lead-2"]]
    await processor.after_publish()
    assert store.marked == [["lead-1", "lead-2"]], "marked once, then forgotten"
