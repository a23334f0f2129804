"""The webhook outbox's Lua on a real redis-server: dedupe, leases, backoff, digests."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from monitors.webhook_outbox import Burst, WebhookOutbox

pytestmark = pytest.mark.integration

T0 = 1_800_000_000_000  # epoch ms
LEASE = 30_000


def outbox(redis: Redis, prefix: str, threshold: int = 3, window_ms: int = 60_000) -> WebhookOutbox:
    return WebhookOutbox(redis, prefix.rstrip(":"), Burst(threshold, window_ms), seen_ttl_seconds=3600)


async def test_an_alert_is_enqueued_once_and_claimed_with_its_payload(
    redis: Redis, redis_prefix: str
) -> None:
    """Copies of an alert (same alert id) are not queued twice; the claim returns the bytes."""
    box = outbox(redis, redis_prefix)
    assert await box.enqueue("emea", "a1", b'{"x":1}', breach=False, now_ms=T0) == "queued"
    assert await box.enqueue("emea", "a1", b'{"x":1}', breach=False, now_ms=T0 + 5) == "duplicate"
    assert await box.teams() == ["emea"]
    claimed = await box.claim("emea", T0 + 10, LEASE, 10, 5)
    assert [(c.id, c.failures, c.payloads, c.is_digest) for c in claimed] == [("a1", 0, (b'{"x":1}',), False)]


async def test_a_claimed_alert_comes_back_after_its_lease_and_leaves_when_done(
    redis: Redis, redis_prefix: str
) -> None:
    """A deliverer killed after claiming loses nothing: the lease expires and the alert is due again."""
    box = outbox(redis, redis_prefix)
    await box.enqueue("emea", "a1", b"{}", breach=False, now_ms=T0)
    assert len(await box.claim("emea", T0, LEASE, 10, 5)) == 1
    assert await box.claim("emea", T0 + LEASE - 1, LEASE, 10, 5) == []
    again = await box.claim("emea", T0 + LEASE, LEASE, 10, 5)
    assert [c.id for c in again] == ["a1"]
    await box.done("emea", ["a1"])
    assert await box.claim("emea", T0 + 10 * LEASE, LEASE, 10, 5) == []
    assert await box.depth("emea") == 0


async def test_a_failure_backs_off_exponentially_and_keeps_the_order(redis: Redis, redis_prefix: str) -> None:
    """After a failure the alert and those behind it wait; each failure doubles the wait, up to the cap."""
    box = outbox(redis, redis_prefix)
    for i, alert in enumerate(["a1", "a2"]):
        await box.enqueue("emea", alert, b"{}", breach=False, now_ms=T0 + i)
    delays = []
    now = T0 + 10
    for _ in range(4):
        claimed = await box.claim("emea", now, LEASE, 10, 5)
        assert [c.id for c in claimed] == ["a1", "a2"]
        failures, delay = await box.retry("emea", [c.id for c in claimed], now, 1_000, 5_000, jitter=0.5)
        assert failures == len(delays) + 1
        assert await box.claim("emea", now + delay - 1, LEASE, 10, 5) == []
        delays.append(delay)
        now += delay + 1  # the second one waits a millisecond more: it stays second
    assert delays == [1_000, 2_000, 4_000, 5_000]
    assert [c.failures for c in await box.claim("emea", now, LEASE, 10, 5)] == [4, 0]


async def test_a_burst_of_breaches_sends_the_first_few_then_one_digest(
    redis: Redis, redis_prefix: str
) -> None:
    """Beyond the threshold in a window, breaches are held and leave as one digest when it closes."""
    box = outbox(redis, redis_prefix, threshold=3, window_ms=10_000)
    outcomes = [
        await box.enqueue("emea", f"b{i}", f'{{"n":{i}}}'.encode(), breach=True, now_ms=T0 + i)
        for i in range(10)
    ]
    assert outcomes == ["queued"] * 3 + ["held"] * 7
    # A warning is never held: only breaches make a burst.
    assert await box.enqueue("emea", "w1", b"{}", breach=False, now_ms=T0 + 20) == "queued"
    first = await box.claim("emea", T0 + 100, LEASE, 50, 5)
    assert [c.id for c in first] == ["b0", "b1", "b2", "w1"]
    await box.done("emea", [c.id for c in first])
    assert await box.claim("emea", T0 + 9_999, LEASE, 50, 5) == []
    assert await box.depth("emea") == 7
    (digest,) = await box.claim("emea", T0 + 10_000, LEASE, 50, 5)
    assert digest.is_digest
    assert digest.digest_ids == tuple(f"b{i}" for i in range(3, 10))
    assert digest.payloads == tuple(f'{{"n":{i}}}'.encode() for i in range(3, 8))  # a sample of 5
    await box.done("emea", [digest.id])
    assert await box.depth("emea") == 0
    assert await redis.hlen(f"{{{redis_prefix.rstrip(':')}:wh:emea}}:items") == 0
    # The next window starts afresh.
    assert await box.enqueue("emea", "b10", b"{}", breach=True, now_ms=T0 + 20_000) == "queued"


async def test_teams_have_separate_windows(redis: Redis, redis_prefix: str) -> None:
    """One team's burst does not hold another team's breaches."""
    box = outbox(redis, redis_prefix, threshold=1)
    assert await box.enqueue("emea", "e1", b"{}", breach=True, now_ms=T0) == "queued"
    assert await box.enqueue("emea", "e2", b"{}", breach=True, now_ms=T0) == "held"
    assert await box.enqueue("amer", "m1", b"{}", breach=True, now_ms=T0) == "queued"
    assert await box.teams() == ["amer", "emea"]
