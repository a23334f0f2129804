"""The durable webhook outbox: one Redis queue per team (`monitors/lua/webhook.lua`).

An alert read from `sla-events` is enqueued once (its alert id dedupes copies),
then claimed with a lease, delivered, and removed only after the receiver said
2xx. Crash anywhere and the alert is delivered later, never lost: at least once,
so receivers dedupe on `alert_id` (sent as a header too).

Burst control happens on the way in: the first `threshold` breaches of a team's
window go out one by one; later ones are held and leave as one digest when the
window closes.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from redis.asyncio import Redis

from monitors.metrics import Metrics
from monitors.timing import RedisTimer

_SCRIPT = resources.files("monitors").joinpath("lua/webhook.lua").read_text()
DIGEST_PREFIX = "digest:"


@dataclass(frozen=True, slots=True)
class Claimed:
    """An item to deliver: one alert, or a digest of the breaches a burst held back."""

    id: str
    failures: int
    payloads: tuple[bytes, ...]  # the alert; for a digest a sample of its breaches
    digest_ids: tuple[str, ...] = ()  # every breach a digest stands for

    @property
    def is_digest(self) -> bool:
        return self.id.startswith(DIGEST_PREFIX)


@dataclass(frozen=True, slots=True)
class Burst:
    threshold: int  # breaches a window sends one by one
    window_ms: int


class WebhookOutbox:
    def __init__(
        self, redis: Redis, prefix: str, burst: Burst, seen_ttl_seconds: int, metrics: Metrics | None = None
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._burst = burst
        self._seen_ttl = seen_ttl_seconds
        self._script = redis.register_script(_SCRIPT)
        self._timed = RedisTimer(metrics)

    @property
    def _queues(self) -> str:
        return f"{self._prefix}:wh:queues"

    def _keys(self, team: str) -> list[str]:
        tag = f"{{{self._prefix}:wh:{team}}}"
        return [f"{tag}:due", f"{tag}:items", f"{tag}:held", f"{tag}:win", f"{tag}:tries"]

    def _seen(self, team: str, alert_id: str) -> str:
        return f"{{{self._prefix}:wh:{team}}}:seen:{alert_id}"

    async def enqueue(self, team: str, alert_id: str, payload: bytes, breach: bool, now_ms: int) -> str:
        """Queue one alert: 'queued', 'held' (for the burst digest) or 'duplicate'."""
        with self._timed("webhook_enqueue"):
            # Registering the team first is idempotent; a crash before the enqueue
            # leaves an empty queue, which costs nothing.
            await self._redis.sadd(self._queues, team)
            result = await self._script(
                keys=[*self._keys(team), self._seen(team, alert_id)],
                args=["enqueue", alert_id, payload, now_ms, int(breach), self._burst.threshold,
                      self._burst.window_ms, self._seen_ttl],
            )  # fmt: skip
        return {0: "duplicate", 1: "queued", 2: "held"}[int(result)]

    async def teams(self) -> list[str]:
        with self._timed("webhook_claim"):
            members = await self._redis.smembers(self._queues)
        return sorted(m.decode() if isinstance(m, bytes) else m for m in members)

    async def claim(self, team: str, now_ms: int, lease_ms: int, limit: int, sample: int) -> list[Claimed]:
        with self._timed("webhook_claim"):
            raw = await self._script(
                keys=self._keys(team),
                args=["claim", now_ms, lease_ms, limit, self._burst.window_ms, sample],
            )
        out: list[Claimed] = []
        i = 0
        while i < len(raw):
            item_id, failures, count = raw[i].decode(), int(raw[i + 1]), int(raw[i + 2])
            values = raw[i + 3 : i + 3 + count]
            i += 3 + count
            if item_id.startswith(DIGEST_PREFIX):
                ids = tuple(values[0].decode().split("\n")) if values[0] else ()
                out.append(Claimed(item_id, failures, tuple(values[1:]), ids))
            else:
                out.append(Claimed(item_id, failures, tuple(values)))
        return out

    async def done(self, team: str, ids: list[str]) -> None:
        with self._timed("webhook_done"):
            await self._script(keys=self._keys(team), args=["done", *ids])

    async def retry(
        self, team: str, ids: list[str], now_ms: int, base_ms: int, max_ms: int, jitter: float
    ) -> tuple[int, int]:
        """Schedule `ids` again after the first one failed; (its failures, delay ms)."""
        with self._timed("webhook_done"):
            failed, delay = await self._script(
                keys=self._keys(team), args=["retry", now_ms, base_ms, max_ms, jitter, *ids]
            )
        return int(failed), int(delay)

    async def depth(self, team: str) -> int:
        with self._timed("webhook_claim"):
            return int(await self._script(keys=self._keys(team), args=["depth"]))
