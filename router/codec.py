"""Bytes to contract models at the boundary, and models back to bytes.

Every failure becomes an `InvalidEvent` with a closed-set reason and a detail
that names fields but never echoes their values (values may be PII).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from router.errors import InvalidEvent
from rules.events import (
    ActivityEvent,
    AssignmentRef,
    LeadEvent,
    RepStatusEvent,
    SlaBreached,
    SlaEscalated,
    SlaMet,
    SlaWarning,
)

MAX_EVENT_BYTES = 512 * 1024

M = TypeVar("M", bound=BaseModel)

_LEAD_TYPES = {"lead.created", "lead.updated"}
_ACTIVITY_TYPES = {"activity"}
_ASSIGNMENT_TYPES = {"lead.assigned", "lead.queued", "lead.reassigned"}


def _load_object(value: bytes | None) -> dict[str, Any]:
    if value is None:
        raise InvalidEvent("not_an_object", "empty value (tombstone)")
    if len(value) > MAX_EVENT_BYTES:
        raise InvalidEvent("too_large", f"{len(value)} bytes > {MAX_EVENT_BYTES}")
    try:
        value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEvent("not_utf8", f"invalid UTF-8 at byte {exc.start}") from None
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent("invalid_json", f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(data, dict):
        raise InvalidEvent("not_an_object", f"expected a JSON object, got {type(data).__name__}")
    return data


def _validate(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        parts = []
        for err in exc.errors(include_input=False, include_url=False)[:5]:
            loc = ".".join(_redact_keys(err["loc"])) or "(root)"
            parts.append(f"{loc}: {err['msg']}")
        raise InvalidEvent("schema_violation", "; ".join(parts)) from None


def _redact_keys(loc: tuple[int | str, ...]) -> list[str]:
    # Keys of free-form maps are producer data (could be an email): never echo them.
    out = []
    for i, part in enumerate(loc):
        out.append("*" if i > 0 and loc[i - 1] == "attributes" else str(part))
    return out


def _check_type(data: dict[str, Any], allowed: set[str]) -> None:
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in allowed:
        # The value is never shown: free text there can be anything, a name included.
        what = "missing" if kind is None else f"a {type(kind).__name__} not in {sorted(allowed)}"
        raise InvalidEvent("unknown_type", f"type is {what}")


# Clocks disagree a little; an event from further ahead than this is a producer bug.
MAX_CLOCK_SKEW = timedelta(minutes=5)


def _check_not_future(occurred_at: datetime) -> None:
    if occurred_at > datetime.now(UTC) + MAX_CLOCK_SKEW:
        raise InvalidEvent("schema_violation", "occurred_at: in the future (beyond 5 minutes of clock skew)")


def _check_key(key: bytes | None, lead_id: str) -> None:
    # The key is the partitioning contract: a lead's events must stay in order on
    # one partition. A missing or different key breaks that, so reject it.
    if key is None or key == b"":
        raise InvalidEvent("bad_key", "missing Kafka key: it must be the lead id")
    if key != lead_id.encode("utf-8"):
        raise InvalidEvent("bad_key", "Kafka key differs from the lead id")


def decode_lead_event(key: bytes | None, value: bytes | None) -> LeadEvent:
    data = _load_object(value)
    _check_type(data, _LEAD_TYPES)
    event = _validate(LeadEvent, data)
    _check_key(key, event.lead.id)
    _check_not_future(event.occurred_at)
    return event


def decode_activity(key: bytes | None, value: bytes | None) -> ActivityEvent:
    data = _load_object(value)
    _check_type(data, _ACTIVITY_TYPES)
    event = _validate(ActivityEvent, data)
    _check_key(key, event.lead_id)
    _check_not_future(event.occurred_at)
    return event


def decode_assignment(key: bytes | None, value: bytes | None) -> AssignmentRef:
    data = _load_object(value)
    _check_type(data, _ASSIGNMENT_TYPES)
    event = _validate(AssignmentRef, data)
    _check_key(key, event.lead_id)
    return event


def decode_rep_status(key: bytes | None, value: bytes | None) -> RepStatusEvent:
    data = _load_object(value)
    _check_type(data, {"rep.status"})
    event = _validate(RepStatusEvent, data)
    if key is not None and key != b"" and key != event.rep_id.encode("utf-8"):
        raise InvalidEvent("bad_key", "Kafka key differs from the rep id")
    _check_not_future(event.occurred_at)
    return event


_SLA_MODELS: dict[str, type[SlaMet | SlaWarning | SlaBreached | SlaEscalated]] = {
    "sla.met": SlaMet,
    "sla.warning": SlaWarning,
    "sla.breached": SlaBreached,
    "sla.escalated": SlaEscalated,
}


def decode_sla_event(
    key: bytes | None, value: bytes | None
) -> SlaMet | SlaWarning | SlaBreached | SlaEscalated:
    """An event from `sla-events`: our own output, still parsed at the boundary."""
    data = _load_object(value)
    _check_type(data, set(_SLA_MODELS))
    event = _validate(_SLA_MODELS[data["type"]], data)
    _check_key(key, event.lead_id)
    return event


def encode(model: BaseModel) -> bytes:
    """Compact JSON of an outbound event; datetimes as RFC 3339 with offset."""
    return model.__pydantic_serializer__.to_json(model)
