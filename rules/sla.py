"""SLA deadlines. The foundation uses a 24x7 clock; business calendars come later."""

from __future__ import annotations

from datetime import datetime, timedelta

DEFAULT_FIRST_TOUCH = timedelta(minutes=5)


def first_touch_due(assigned_at: datetime, target: timedelta = DEFAULT_FIRST_TOUCH) -> datetime:
    """The instant the first touch is due, on a 24x7 clock."""
    if assigned_at.tzinfo is None:
        raise ValueError("assigned_at must be timezone-aware")
    if target <= timedelta(0):
        raise ValueError("the first-touch target must be positive")
    return assigned_at + target


def response_seconds(assigned_at: datetime, touched_at: datetime) -> float:
    """Wall-clock seconds from assignment to first touch; never negative.

    A touch recorded before the assignment (clock skew, or a rep who called
    before the router caught up) counts as an immediate response.
    """
    return max(0.0, (touched_at - assigned_at).total_seconds())
