"""Times and counts Redis operations for the metrics, without cluttering callers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from redis.exceptions import RedisError

from monitors.metrics import Metrics


class RedisTimer:
    """`with timer("assign"): ...` observes latency and counts Redis failures."""

    def __init__(self, metrics: Metrics | None) -> None:
        self._metrics = metrics

    @contextmanager
    def __call__(self, operation: str) -> Iterator[None]:
        if self._metrics is None:
            yield
            return
        started = time.perf_counter()
        try:
            yield
        except RedisError:
            self._metrics.redis_errors.labels(operation).inc()
            raise
        finally:
            self._metrics.redis_seconds.labels(operation).observe(time.perf_counter() - started)
