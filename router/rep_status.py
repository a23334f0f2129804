"""Rep availability changes from the `reps` topic, applied to Redis at once."""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib import resources

from redis.asyncio import Redis

from monitors.metrics import Metrics
from monitors.timing import RedisTimer
from router.codec import decode_rep_status
from router.consume import Record
from router.logs import log
from router.redis_keys import RedisKeys
from rules.compiled import CompiledRulebook

_SCRIPT = resources.files("router").joinpath("lua/rep_status.lua").read_text()
logger = logging.getLogger("leadrouter.reps")


class RepStatusUpdater:
    def __init__(
        self,
        redis: Redis,
        keys: RedisKeys,
        rules: Callable[[], CompiledRulebook],
        metrics: Metrics,
        on_available: Callable[[], None] | None = None,
    ) -> None:
        self._on_available = on_available
        self._keys = keys
        self._rules = rules
        self._metrics = metrics
        self._timed = RedisTimer(metrics)
        self._apply = redis.register_script(_SCRIPT)

    async def apply(self, record: Record) -> bool:
        """Apply one `rep.status` record; True if it changed the rep's status."""
        event = decode_rep_status(record.key, record.value)
        known = event.rep_id in self._rules().reps
        occurred_ms = int(event.occurred_at.timestamp() * 1000)
        with self._timed("rep_status"):
            changed = await self._apply(
                keys=[self._keys.status, self._keys.status_at], args=[event.rep_id, event.status, occurred_ms]
            )
        self._metrics.rep_status_changes.labels(event.status if changed else "stale").inc()
        log(logger, "rep.status", rep_id=event.rep_id, status=event.status, applied=bool(changed),
            in_rulebook=known)  # fmt: skip
        if changed and event.status == "available" and self._on_available is not None:
            self._on_available()  # waiting leads may now find a rep
        return bool(changed)
