"""Waiting in tests for something a worker or a background task does on its own schedule."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def until(check: Callable[[], object], seconds: float, every: float = 0.05) -> bool:
    """Whether `check()` turned true within `seconds`, asked every `every` seconds (a
    slow machine only waits longer, it does not fail sooner)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(every)
    return bool(check())
