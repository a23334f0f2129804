"""The boundary codec: bytes become contract models or an InvalidEvent with a closed-set reason."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from router.codec import MAX_EVENT_BYTES, decode_activity, decode_lead_event, encode
from router.errors import DLQ_REASONS, InvalidEvent, PermanentError
from rules.events import (
    _EVENT_NAMESPACE,
    ActivityEvent,
    LeadAssigned,
    LeadEvent,
    LeadQueued,
    SlaBreached,
    SlaMet,
    derived_event_id,
)

PROPERTY = settings(database=None, deadline=None, max_examples=300)
JSON_PROPERTY = settings(database=None, deadline=None, max_examples=100)
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

LEAD: dict[str, Any] = {
    "event_id": "evt-1",
    "type": "lead.created",
    "occurred_at": "2026-11-23T12:00:00Z",
    "lead": {
        "id": "lead-42",
        "email": "jane@example.com",
        "country": "us",
        "company": {"name": "Acme", "employees": 120},
        "attributes": {"score": 87, "hot": True},
    },
}
ACTIVITY: dict[str, Any] = {
    "event_id": "act-1",
    "type": "activity",
    "occurred_at": "2026-11-23T12:03:00+01:00",
    "lead_id": "lead-42",
    "rep_id": "rep-amer-1",
    "channel": "call",
}


def dumps(data: Any) -> bytes:
    return json.dumps(data).encode()


def edited(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of `base` with dotted `path` set to `value`, or removed if value is DELETE."""
    data = copy.deepcopy(base)
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node[part]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return data


DELETE = object()


def test_valid_lead_event_decodes() -> None:
    """A well-formed lead event decodes to a LeadEvent with aware time and normalised country."""
    event = decode_lead_event(b"lead-42", dumps(LEAD))
    assert isinstance(event, LeadEvent)
    assert event.event_id == "evt-1"
    assert event.type == "lead.created"
    assert event.occurred_at == T0
    assert event.occurred_at.tzinfo is not None
    assert event.lead.id == "lead-42"
    assert event.lead.country == "US"
    assert event.lead.company is not None
    assert event.lead.company.employees == 120
    assert event.lead.attributes == {"score": 87, "hot": True}


def test_minimal_lead_event_decodes() -> None:
    """Only event_id, type, occurred_at and lead.id are required."""
    data = {
        "event_id": "e",
        "type": "lead.updated",
        "occurred_at": "2026-01-01T00:00:00+00:00",
        "lead": {"id": "x"},
    }
    event = decode_lead_event(b"x", dumps(data))
    assert event.lead.email is None
    assert event.lead.attributes == {}


def test_valid_activity_decodes() -> None:
    """A well-formed activity decodes, keeps its offset, and defaults direction to outbound."""
    event = decode_activity(b"lead-42", dumps(ACTIVITY))
    assert isinstance(event, ActivityEvent)
    assert event.occurred_at == T0 - timedelta(minutes=57)
    assert event.occurred_at.utcoffset() == timedelta(hours=1)
    assert (event.rep_id, event.channel, event.direction) == ("rep-amer-1", "call", "outbound")


def test_unknown_fields_are_ignored_on_input() -> None:
    """Producers may add fields: inbound models ignore them at every level."""
    data = edited(edited(LEAD, "schema_version", 7), "lead.favourite_colour", "teal")
    data["lead"]["company"]["ticker"] = "ACME"
    event = decode_lead_event(b"lead-42", dumps(data))
    assert "favourite_colour" not in event.lead.model_dump()
    assert "schema_version" not in event.model_dump()
    activity = decode_activity(b"lead-42", dumps(edited(ACTIVITY, "duration_seconds", 31)))
    assert activity.rep_id == "rep-amer-1"


LEAD_BAD: dict[str, tuple[bytes | None, bytes | None, str]] = {
    "invalid UTF-8": (b"lead-42", b'{"event_id": "\xff\xfe"}', "not_utf8"),
    "truncated JSON": (b"lead-42", b"{", "invalid_json"),
    "not JSON": (b"lead-42", b"lead created", "invalid_json"),
    "empty bytes": (b"lead-42", b"", "invalid_json"),
    "JSON array": (b"lead-42", b"[]", "not_an_object"),
    "JSON string": (b"lead-42", b'"lead"', "not_an_object"),
    "JSON null": (b"lead-42", b"null", "not_an_object"),
    "tombstone (None value)": (b"lead-42", None, "not_an_object"),
    "oversized": (b"lead-42", b" " * (MAX_EVENT_BYTES + 1), "too_large"),
    "oversized but valid JSON": (
        b"lead-42",
        dumps(edited(LEAD, "lead.attributes", {"pad": "x" * MAX_EVENT_BYTES})),
        "too_large",
    ),
    "unknown type": (b"lead-42", dumps(edited(LEAD, "type", "lead.deleted")), "unknown_type"),
    "missing type": (b"lead-42", dumps(edited(LEAD, "type", DELETE)), "unknown_type"),
    "activity on the leads topic": (b"lead-42", dumps(ACTIVITY), "unknown_type"),
    "numeric type": (b"lead-42", dumps(edited(LEAD, "type", 3)), "unknown_type"),
    "missing event_id": (b"lead-42", dumps(edited(LEAD, "event_id", DELETE)), "schema_violation"),
    "empty event_id": (b"lead-42", dumps(edited(LEAD, "event_id", "")), "schema_violation"),
    "missing lead": (b"lead-42", dumps(edited(LEAD, "lead", DELETE)), "schema_violation"),
    "missing lead.id": (b"lead-42", dumps(edited(LEAD, "lead.id", DELETE)), "schema_violation"),
    "overlong lead.id": (b"x" * 129, dumps(edited(LEAD, "lead.id", "x" * 129)), "schema_violation"),
    "missing occurred_at": (b"lead-42", dumps(edited(LEAD, "occurred_at", DELETE)), "schema_violation"),
    "naive occurred_at": (
        b"lead-42",
        dumps(edited(LEAD, "occurred_at", "2026-11-23T12:00:00")),
        "schema_violation",
    ),
    "garbage occurred_at": (b"lead-42", dumps(edited(LEAD, "occurred_at", "yesterday")), "schema_violation"),
    "employees 'many'": (
        b"lead-42",
        dumps(edited(LEAD, "lead.company.employees", "many")),
        "schema_violation",
    ),
    "negative employees": (b"lead-42", dumps(edited(LEAD, "lead.company.employees", -1)), "schema_violation"),
    "email not a string": (b"lead-42", dumps(edited(LEAD, "lead.email", 5)), "schema_violation"),
    "bad country": (b"lead-42", dumps(edited(LEAD, "lead.country", "USA")), "schema_violation"),
    "nested attribute": (
        b"lead-42",
        dumps(edited(LEAD, "lead.attributes", {"a": {"b": 1}})),
        "schema_violation",
    ),
    "lead is a list": (b"lead-42", dumps(edited(LEAD, "lead", [])), "schema_violation"),
    "missing key": (None, dumps(LEAD), "bad_key"),
    "empty key": (b"", dumps(LEAD), "bad_key"),
    "key differs from lead id": (b"lead-43", dumps(LEAD), "bad_key"),
    "key differs in case": (b"LEAD-42", dumps(LEAD), "bad_key"),
}


@pytest.mark.parametrize(("key", "value", "reason"), LEAD_BAD.values(), ids=list(LEAD_BAD))
def test_bad_lead_event_is_rejected_with_reason(key: bytes | None, value: bytes | None, reason: str) -> None:
    """Every undecodable lead event raises InvalidEvent (permanent) with the expected closed-set reason."""
    with pytest.raises(InvalidEvent) as info:
        decode_lead_event(key, value)
    assert info.value.reason == reason
    assert info.value.reason in DLQ_REASONS
    assert isinstance(info.value, PermanentError)
    assert not info.value.retriable
    assert info.value.detail


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param([], id="list"),
        pytest.param({"name": "lead.created"}, id="object"),
    ],
)
def test_unhashable_type_is_an_unknown_type(kind: Any) -> None:
    """A `type` that is a JSON array or object is rejected as unknown_type, not a crash."""
    with pytest.raises(InvalidEvent) as info:
        decode_lead_event(b"lead-42", dumps(edited(LEAD, "type", kind)))
    assert info.value.reason == "unknown_type"


ACTIVITY_BAD: dict[str, tuple[bytes | None, bytes | None, str]] = {
    "tombstone": (b"lead-42", None, "not_an_object"),
    "lead event on the activities topic": (b"lead-42", dumps(LEAD), "unknown_type"),
    "unknown channel": (b"lead-42", dumps(edited(ACTIVITY, "channel", "pigeon")), "schema_violation"),
    "unknown direction": (b"lead-42", dumps(edited(ACTIVITY, "direction", "sideways")), "schema_violation"),
    "missing rep_id": (b"lead-42", dumps(edited(ACTIVITY, "rep_id", DELETE)), "schema_violation"),
    "missing lead_id": (b"lead-42", dumps(edited(ACTIVITY, "lead_id", DELETE)), "schema_violation"),
    "naive occurred_at": (
        b"lead-42",
        dumps(edited(ACTIVITY, "occurred_at", "2026-11-23T12:00:00")),
        "schema_violation",
    ),
    "missing key": (None, dumps(ACTIVITY), "bad_key"),
    "key differs from lead_id": (b"rep-amer-1", dumps(ACTIVITY), "bad_key"),
}


@pytest.mark.parametrize(("key", "value", "reason"), ACTIVITY_BAD.values(), ids=list(ACTIVITY_BAD))
def test_bad_activity_is_rejected_with_reason(key: bytes | None, value: bytes | None, reason: str) -> None:
    """Every undecodable activity raises InvalidEvent with the expected closed-set reason."""
    with pytest.raises(InvalidEvent) as info:
        decode_activity(key, value)
    assert info.value.reason == reason


def test_exactly_max_event_bytes_is_not_too_large() -> None:
    """The size limit is inclusive: MAX_EVENT_BYTES of valid JSON decodes."""
    body = dumps(LEAD)
    value = body[:-1] + b" " * (MAX_EVENT_BYTES - len(body)) + b"}"
    assert len(value) == MAX_EVENT_BYTES
    assert decode_lead_event(b"lead-42", value).lead.id == "lead-42"


SECRET = "jane.doe+sales@example.com"


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("lead.company.employees", "lead.company.employees"),
        ("lead.company.annual_revenue", "lead.company.annual_revenue"),
        ("lead.country", "lead.country"),
        ("occurred_at", "occurred_at"),
        ("lead.attributes", "lead.attributes"),
        ("lead.company", "lead.company"),
        ("lead.id", "lead.id"),
    ],
)
def test_schema_violation_detail_never_echoes_the_value(path: str, field: str) -> None:
    """A schema_violation names the bad field but never contains the offending (possibly PII) value."""
    value: Any = SECRET
    if path == "lead.id":
        value = SECRET * 10  # too long for an id
    with pytest.raises(InvalidEvent) as info:
        decode_lead_event(b"lead-42", dumps(edited(LEAD, path, value)))
    assert info.value.reason == "schema_violation"
    assert field in info.value.detail
    assert "jane" not in info.value.detail
    assert "example.com" not in info.value.detail
    assert "jane" not in str(info.value)


def test_invalid_json_detail_never_echoes_the_input() -> None:
    """An invalid_json detail gives a position, not the text around it."""
    with pytest.raises(InvalidEvent) as info:
        decode_lead_event(b"lead-42", b'{"email": "' + SECRET.encode() + b'" oops}')
    assert info.value.reason == "invalid_json"
    assert "jane" not in info.value.detail
    assert "line 1" in info.value.detail


def test_bad_key_detail_never_echoes_the_key() -> None:
    """A bad_key detail does not echo the key (a lead id may be an email)."""
    with pytest.raises(InvalidEvent) as info:
        decode_lead_event(SECRET.encode(), dumps(LEAD))
    assert info.value.reason == "bad_key"
    assert "jane" not in info.value.detail


JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8,
)
KEYS = st.none() | st.binary(max_size=12) | st.just(b"lead-42")


@st.composite
def damaged_lead(draw: st.DrawFn) -> bytes:
    """A valid lead event's bytes with one slice replaced by arbitrary bytes."""
    raw = dumps(LEAD)
    start = draw(st.integers(min_value=0, max_value=len(raw)))
    end = draw(st.integers(min_value=start, max_value=min(len(raw), start + 8)))
    return raw[:start] + draw(st.binary(max_size=8)) + raw[end:]


VALUES = st.none() | st.binary(max_size=200) | JSON_VALUES.map(dumps) | damaged_lead()


def _decodes_or_invalid(decoder: Any, key: bytes | None, value: bytes | None) -> None:
    try:
        event = decoder(key, value)
    except InvalidEvent as exc:
        reason: str | None = exc.reason
    else:
        reason = None
        assert isinstance(event, LeadEvent | ActivityEvent)
    assert reason is None or reason in DLQ_REASONS


@PROPERTY
@given(key=KEYS, value=VALUES)
def test_arbitrary_bytes_decode_or_raise_invalid_event(key: bytes | None, value: bytes | None) -> None:
    """For any bytes, decode_lead_event returns a LeadEvent or raises InvalidEvent, nothing else."""
    _decodes_or_invalid(decode_lead_event, key, value)


@JSON_PROPERTY
@given(
    key=KEYS,
    field=st.sampled_from(
        [
            "type",
            "event_id",
            "occurred_at",
            "lead",
            "lead.id",
            "lead.email",
            "lead.company",
            "lead.attributes",
        ]
    ),
    junk=JSON_VALUES,
)
def test_lead_with_arbitrary_json_in_a_field_decodes_or_raises_invalid_event(
    key: bytes | None, field: str, junk: Any
) -> None:
    """Any JSON value in any field of a lead event gives a LeadEvent or InvalidEvent, nothing else."""
    try:
        value = dumps(edited(LEAD, field, junk))
    except TypeError:
        return  # a parent of `field` is no longer an object
    _decodes_or_invalid(decode_lead_event, key, value)


@JSON_PROPERTY
@given(
    key=KEYS,
    data=st.dictionaries(
        st.sampled_from(["event_id", "occurred_at", "lead_id", "rep_id", "channel", "direction", "x"]),
        JSON_VALUES,
    ),
)
def test_arbitrary_activity_object_decodes_or_raises_invalid_event(
    key: bytes | None, data: dict[str, Any]
) -> None:
    """Any JSON object tagged as an activity gives an ActivityEvent or InvalidEvent, nothing else."""
    _decodes_or_invalid(decode_activity, key, dumps({**data, "type": "activity"}))


OUTBOUND: list[BaseModel] = [
    LeadAssigned(
        event_id=derived_event_id("lead-42", 1, "assigned"),
        lead_id="lead-42",
        rep_id="rep-amer-1",
        team="amer",
        route="north-america",
        rulebook_version="3",
        assigned_at=T0,
        first_touch_due_at=T0 + timedelta(minutes=5),
        lead_created_at=T0 - timedelta(seconds=1),
    ),
    LeadQueued(
        event_id=derived_event_id("lead-42", 2, "queued"),
        lead_id="lead-42",
        queue="unrouted",
        route="(none)",
        rulebook_version="3",
        queued_at=datetime(2026, 11, 23, 17, 30, 0, 123_456, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        reason="no route could place the lead",
        attempt=2,
    ),
    SlaMet(
        event_id=derived_event_id("lead-42", 1, "sla.met"),
        lead_id="lead-42",
        rep_id="rep-amer-1",
        team="amer",
        assigned_at=T0,
        due_at=T0 + timedelta(minutes=5),
        touched_at=T0 + timedelta(seconds=42.5),
        response_seconds=42.5,
        within_sla=True,
    ),
    SlaBreached(
        event_id=derived_event_id("lead-42", 1, "sla.breached"),
        lead_id="lead-42",
        rep_id="rep-amer-1",
        team="amer",
        assigned_at=T0,
        due_at=T0 + timedelta(minutes=5),
        detected_at=T0 + timedelta(minutes=5, seconds=1),
    ),
]


@pytest.mark.parametrize("model", OUTBOUND, ids=lambda m: type(m).__name__)
def test_encode_round_trips(model: BaseModel) -> None:
    """encode() gives compact JSON that validates back to an equal model, offsets included."""
    raw = encode(model)
    assert isinstance(raw, bytes)
    back = type(model).model_validate_json(raw)
    assert back == model
    data = json.loads(raw)
    assert data["type"] == model.type  # type: ignore[attr-defined]
    assert b"\n" not in raw
    for name, value in model:
        if isinstance(value, datetime):
            assert datetime.fromisoformat(data[name]).utcoffset() == value.utcoffset()


@pytest.mark.parametrize("model", OUTBOUND, ids=lambda m: type(m).__name__)
def test_outbound_models_forbid_extra_fields(model: BaseModel) -> None:
    """An outbound event with an undocumented field is refused, by constructor and by JSON."""
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        type(model).model_validate({**model.model_dump(), "email": "jane@example.com"})
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        type(model).model_validate_json(encode(model)[:-1] + b',"debug":1}')


@pytest.mark.parametrize("model", OUTBOUND, ids=lambda m: type(m).__name__)
def test_outbound_models_are_frozen(model: BaseModel) -> None:
    """Outbound events are immutable once built."""
    with pytest.raises(ValidationError, match="frozen"):
        model.lead_id = "other"  # type: ignore[attr-defined]


def test_outbound_models_refuse_naive_datetimes() -> None:
    """An outbound event never carries a naive datetime (the contract promises RFC 3339 with offset)."""
    with pytest.raises(ValidationError):
        SlaBreached(
            event_id="e",
            lead_id="lead-42",
            rep_id="rep-amer-1",
            team="amer",
            assigned_at=datetime(2026, 11, 23, 12, 0),
            due_at=T0,
            detected_at=T0,
        )


@pytest.mark.parametrize(
    ("lead", "attempt", "kind", "expected"),
    [
        ("lead-42", 1, "assigned", "f57c25e7-9ba7-540a-9d56-b9a36b724c56"),
        ("lead-42", 1, "sla.breached", "3fd99fb0-feca-5502-90fd-d443a535e715"),
    ],
)
def test_derived_event_id_is_deterministic(lead: str, attempt: int, kind: str, expected: str) -> None:
    """The same (lead, attempt, kind) yields the same UUIDv5 in every process and release.

    Pinned values: a changed namespace would make a replay after a deploy emit new ids
    that downstream consumers could no longer deduplicate.
    """
    assert derived_event_id(lead, attempt, kind) == expected
    assert uuid.UUID(expected).version == 5


@given(
    lead=st.text(max_size=20),
    attempt=st.integers(min_value=0, max_value=10**6),
    kind=st.sampled_from(["assigned", "queued", "sla.met", "sla.breached"]),
    other_lead=st.text(max_size=20),
    other_attempt=st.integers(min_value=0, max_value=10**6),
    other_kind=st.sampled_from(["assigned", "queued", "sla.met", "sla.breached"]),
)
@PROPERTY
def test_derived_event_id_differs_by_lead_attempt_and_kind(
    lead: str, attempt: int, kind: str, other_lead: str, other_attempt: int, other_kind: str
) -> None:
    """Different (lead, attempt, kind) give different ids; equal inputs give equal ids."""
    a = derived_event_id(lead, attempt, kind)
    b = derived_event_id(other_lead, other_attempt, other_kind)
    assert (a == b) == ((lead, attempt, kind) == (other_lead, other_attempt, other_kind))


@given(
    lead=st.text(max_size=40), attempt=st.integers(min_value=0, max_value=10**9), kind=st.text(max_size=20)
)
@PROPERTY
def test_derived_event_id_is_uuid5_of_lead_attempt_and_kind(lead: str, attempt: int, kind: str) -> None:
    """The hand-rolled id is exactly the UUIDv5 of the namespace and the joined name."""
    name = f"{lead}\x1f{attempt}\x1f{kind}"
    assert derived_event_id(lead, attempt, kind) == str(uuid.uuid5(_EVENT_NAMESPACE, name))


def test_attribute_keys_are_not_echoed_in_details() -> None:
    """A bad value under a free-form attribute key never echoes the key (it may be PII)."""
    data = edited(LEAD, "lead.attributes", {"jane@example.com": {"nested": 1}})
    with pytest.raises(InvalidEvent) as info:
        decode_lead_event(b"lead-42", dumps(data))
    assert info.value.reason == "schema_violation"
    assert "jane@example.com" not in info.value.detail
    assert "lead.attributes.*" in info.value.detail


def test_free_text_types_are_not_echoed() -> None:
    """An unknown `type` is named only when it looks like an event type, not free text."""
    with pytest.raises(InvalidEvent) as info:
        decode_lead_event(b"lead-42", dumps(edited(LEAD, "type", "Call Jane at +1 555 0100")))
    assert info.value.reason == "unknown_type"
    assert "555" not in info.value.detail


def test_monitor_reads_assignments_tolerantly() -> None:
    """The monitor's view of `assignments` ignores fields added later (rolling deploys)
    but still checks the type and the key."""
    from router.codec import decode_assignment

    record = {"event_id": "e", "type": "lead.assigned", "lead_id": "lead-42", "rep_id": "r", "new": 1}
    assert decode_assignment(b"lead-42", dumps(record)).lead_id == "lead-42"
    with pytest.raises(InvalidEvent) as info:
        decode_assignment(b"other", dumps(record))
    assert info.value.reason == "bad_key"
    with pytest.raises(InvalidEvent) as info:
        decode_assignment(b"lead-42", b"{")
    assert info.value.reason == "invalid_json"
