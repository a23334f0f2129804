"""Publishes what Redis scripts left in the outbox, at least once.

Paths with no Kafka record to replay (assigning a queued lead, reassigning one
after an SLA escalation) write their events into a Redis list in the same script
that changes the state. One publisher at a time (a lease in Redis) sends a batch,
waits for the broker's acknowledgement, then removes it. A publisher killed in
between leaves the batch for the next one: copies are possible, with the same
event ids, never losses.

The removal takes the batch off the head only if the head still is that batch,
byte for byte. The lease alone cannot promise it: a publish that outlasts the
lease (the broker restarting) ends after another publisher took over, published
the same records and more, and removed them; a removal held up on the network
past the client's timeout reaches Redis after the publisher read and removed the
batch again. A plain LTRIM by count then removed records nobody had published.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
from collections.abc import Sequence

import orjson
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from monitors.metrics import Metrics
from router.consume import TRANSIENT
from router.logs import log
from router.redis_keys import RedisKeys

logger = logging.getLogger("leadrouter.outbox")

BATCH = 200
LEASE_MS = 10_000
# Release the lease only if it is still ours.
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
# Remove a published batch from the head, only if the head is still that batch: the
# same count of records with the same digest (see `batch_digest`). Run twice, or
# after someone else removed it, it removes nothing. KEYS: 1 outbox; ARGV: count, digest.
_REMOVE = """
local n = tonumber(ARGV[1])
local head = redis.call('LRANGE', KEYS[1], 0, n - 1)
if #head ~= n then return 0 end
local parts = {}
for i, item in ipairs(head) do parts[i] = #item .. ':' .. item end
if redis.sha1hex(table.concat(parts)) ~= ARGV[2] then return 0 end
redis.call('LTRIM', KEYS[1], n, -1)
return n
"""


def batch_digest(records: Sequence[bytes | str]) -> str:
    """SHA-1 of the records, each as `<length>:<bytes>` (what _REMOVE computes)."""
    sha = hashlib.sha1(usedforsecurity=False)
    for record in records:
        item = record.encode() if isinstance(record, str) else record
        sha.update(b"%d:%s" % (len(item), item))
    return sha.hexdigest()


class OutboxPublisher:
    def __init__(
        self,
        redis: Redis,
        keys: RedisKeys,
        producer: AIOKafkaProducer,
        metrics: Metrics,
        interval: float = 0.2,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._producer = producer
        self._metrics = metrics
        self._interval = interval
        self._token = secrets.token_hex(8)
        self._release = redis.register_script(_RELEASE)
        self._remove = redis.register_script(_REMOVE)
        self.wake = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                while await self.publish_once() == BATCH:
                    pass  # more waiting: go on at once
            except TRANSIENT as exc:
                self._metrics.retries.labels("outbox").inc()
                log(logger, "outbox.retry", logging.WARNING, error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=self._interval)
            self.wake.clear()

    async def publish_once(self) -> int:
        """Publish one batch if we hold (or get) the lease; the number published."""
        # Every router reports the depth, lease or not, so no copy of the gauge goes stale.
        self._metrics.outbox_depth.set(await self._redis.llen(self._keys.outbox))
        held = await self._redis.set(self._keys.outbox_lock, self._token, nx=True, px=LEASE_MS)
        if not held and await self._redis.get(self._keys.outbox_lock) != self._token.encode():
            return 0
        try:
            raw = await self._redis.lrange(self._keys.outbox, 0, BATCH - 1)
            if not raw:
                return 0
            futures = []
            for item in raw:
                topic, key, value = orjson.loads(item)
                futures.append(await self._producer.send(topic, value=value.encode(), key=key.encode()))
            await asyncio.gather(*futures)
            removed = await self._remove(keys=[self._keys.outbox], args=[len(raw), batch_digest(raw)])
            if not removed:
                # Published, but taken off by someone else meanwhile (or the head
                # changed): left alone, any copy still there goes out again.
                log(logger, "outbox.not_removed", logging.WARNING, records=len(raw))
            self._metrics.outbox_published.inc(len(raw))
            self._metrics.outbox_depth.set(await self._redis.llen(self._keys.outbox))
            return len(raw)
        finally:
            await self._release(keys=[self._keys.outbox_lock], args=[self._token])
