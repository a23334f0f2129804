"""The event contract (v1): one pydantic model per event on a topic.

Inbound models (`leads`, `activities`) ignore unknown fields so producers can add
some; outbound models forbid extras so we never publish anything undocumented.
Only the adapters turn bytes into these models; the core never sees a dict.
The JSON Schemas in `docs/schemas/` are generated from these classes
(`leadrouter schemas`), and a test fails when they drift.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

CONTRACT_VERSION = 1

# Ids are opaque strings chosen by producers; bounded so a bad producer cannot
# make us store megabytes per key.
Id = Annotated[str, StringConstraints(min_length=1, max_length=128, strip_whitespace=True)]
ShortText = Annotated[str, StringConstraints(max_length=256)]
CountryCode = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z]{2}$", to_upper=True, strip_whitespace=True)
]
Channel = Literal["call", "email", "sms", "meeting", "chat"]
Direction = Literal["outbound", "inbound"]
AttributeValue = str | int | float | bool | None

# The span of time an event can plausibly claim. Outside it, a timestamp is a
# producer bug: a rep.status from 9999 would outrank every later one, a lead from
# 1970 would breach at once. (How far ahead of *now* is the adapters' check.)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def _text_timestamp(value: Any) -> Any:
    # JSON timestamps are RFC 3339 strings; pydantic's lax mode would also take
    # numbers and digit strings as Unix times.
    if not isinstance(value, str | datetime) or (
        isinstance(value, str) and value.strip().lstrip("-").isdigit()
    ):
        raise ValueError("must be an RFC 3339 timestamp string with an offset")
    return value


def _plausible(value: datetime) -> datetime:
    if not EARLIEST <= value < LATEST:
        raise ValueError(f"must be between {EARLIEST.year} and {LATEST.year}")
    return value


Timestamp = Annotated[AwareDatetime, BeforeValidator(_text_timestamp), AfterValidator(_plausible)]

# Deterministic ids for the events we emit: a replay of the same input yields the
# same id, so downstream consumers can deduplicate.
_EVENT_NAMESPACE = uuid.UUID("6f1c3a4e-2b8d-4c55-9a61-0d7e8f3b2a10")


_NAMESPACE_BYTES = _EVENT_NAMESPACE.bytes


def derived_event_id(lead_id: str, attempt: int, kind: str) -> str:
    """The id of an output event, a pure function of (lead, attempt, kind).

    `str(uuid.uuid5(_EVENT_NAMESPACE, name))` spelled out (tests pin the two equal):
    two of these per routed lead, and the UUID object was most of their cost.
    """
    name = f"{lead_id}\x1f{attempt}\x1f{kind}".encode()
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name, usedforsecurity=False).digest())
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest[:16].hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class InboundModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, str_max_length=4096)


class OutboundModel(BaseModel):
    # Fields with defaults are always written, so the schema says they are required.
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_serialization_defaults_required=True)


class Company(InboundModel):
    name: ShortText | None = None
    domain: ShortText | None = None
    employees: Annotated[int, Field(ge=0)] | None = None
    annual_revenue: Annotated[float, Field(ge=0)] | None = None
    industry: ShortText | None = None


class Lead(InboundModel):
    """A lead as marketing systems describe it. Only `id` is required."""

    id: Id
    # PII: never logged, never a metric label, never in a decision trace.
    email: ShortText | None = None
    phone: ShortText | None = None
    first_name: ShortText | None = None
    last_name: ShortText | None = None
    company: Company | None = None
    country: CountryCode | None = None
    region: ShortText | None = Field(default=None, description="ISO 3166-2 subdivision")
    postal_code: ShortText | None = None
    source: ShortText | None = None
    product: ShortText | None = None
    priority: ShortText | None = None
    attributes: dict[str, AttributeValue] = Field(default_factory=dict)


class LeadEvent(InboundModel):
    """Topic `leads`, key = lead id."""

    event_id: Id
    type: Literal["lead.created", "lead.updated"]
    occurred_at: Timestamp
    lead: Lead


class ActivityEvent(InboundModel):
    """Topic `activities`, key = lead id. A rep's call, email, SMS, meeting or chat."""

    event_id: Id
    type: Literal["activity"]
    occurred_at: Timestamp
    lead_id: Id
    rep_id: Id
    channel: Channel
    direction: Direction = "outbound"


class RepStatusEvent(InboundModel):
    """Topic `reps`, key = rep id: a rep's availability changed (applies at once)."""

    event_id: Id
    type: Literal["rep.status"]
    occurred_at: Timestamp
    rep_id: Id
    status: Literal["available", "away", "offline"]
    reason: ShortText | None = Field(default=None, description="why, when leadrouter set it (auto-away)")


class LeadAssigned(OutboundModel):
    """Topic `assignments`, key = lead id."""

    event_id: str
    type: Literal["lead.assigned"] = "lead.assigned"
    lead_id: str
    rep_id: str
    team: str
    route: str
    rulebook_version: str
    assigned_at: AwareDatetime
    first_touch_due_at: AwareDatetime
    attempt: int = 1
    lead_created_at: AwareDatetime | None = Field(
        default=None, description="occurred_at of the lead event, for routing time"
    )
    explanation: str = Field(default="", description="compact decision trace, PII-free")
    policy: str = Field(default="default", description="the SLA policy that set the deadline")


class LeadQueued(OutboundModel):
    """Topic `assignments`, key = lead id: no rep could take the lead."""

    event_id: str
    type: Literal["lead.queued"] = "lead.queued"
    lead_id: str
    queue: str
    route: str
    rulebook_version: str
    queued_at: AwareDatetime
    reason: str
    attempt: int = 1
    explanation: str = Field(default="", description="compact decision trace, PII-free")


class SlaMet(OutboundModel):
    """Topic `sla-events`, key = lead id: the assigned rep touched the lead."""

    event_id: str
    type: Literal["sla.met"] = "sla.met"
    lead_id: str
    rep_id: str
    team: str
    attempt: int = 1
    assigned_at: AwareDatetime
    due_at: AwareDatetime
    touched_at: AwareDatetime
    response_seconds: float
    within_sla: bool = Field(description="touched at or before due_at")
    policy: str = "default"
    alert_id: str = Field(default="", description="equals event_id: (lead, attempt, kind)")
    business_response_seconds: float | None = Field(
        default=None, description="response time counting the policy calendar's working time only"
    )
    late_arrival: bool = Field(
        default=False, description="the touch was in time but reached us after the breach was published"
    )
    speed_to_lead_seconds: float | None = Field(
        default=None, description="from the lead's creation to this touch: routing time plus response time"
    )


class SlaBreached(OutboundModel):
    """Topic `sla-events`, key = lead id: the deadline passed without a touch."""

    event_id: str
    type: Literal["sla.breached"] = "sla.breached"
    lead_id: str
    rep_id: str
    team: str
    attempt: int = 1
    assigned_at: AwareDatetime
    due_at: AwareDatetime
    detected_at: AwareDatetime
    policy: str = "default"
    alert_id: str = Field(default="", description="equals event_id: (lead, attempt, kind)")


class SlaWarning(OutboundModel):
    """Topic `sla-events`, key = lead id: the deadline is near and nobody touched the lead."""

    event_id: str
    alert_id: str
    type: Literal["sla.warning"] = "sla.warning"
    lead_id: str
    rep_id: str
    team: str
    attempt: int = 1
    policy: str
    assigned_at: AwareDatetime
    due_at: AwareDatetime
    warned_at: AwareDatetime


class SlaEscalated(OutboundModel):
    """Topic `sla-events`, key = lead id: one step of the policy's escalation chain."""

    event_id: str
    alert_id: str
    type: Literal["sla.escalated"] = "sla.escalated"
    lead_id: str
    rep_id: str
    team: str
    attempt: int = 1
    policy: str
    level: int = Field(description="0 for the first step of the chain")
    action: Literal["notify_rep", "notify_contact", "reassign"]
    contact: str | None = Field(default=None, description="the team's escalation contact (notify_contact)")
    due_at: AwareDatetime
    escalated_at: AwareDatetime


class LeadReassigned(OutboundModel):
    """Topic `assignments`, key = lead id: an escalation took the lead from its rep.

    Followed by the new attempt's `lead.assigned` (or `lead.queued` when no other
    rep could take it or the policy's attempts are used up)."""

    event_id: str
    type: Literal["lead.reassigned"] = "lead.reassigned"
    lead_id: str
    from_rep_id: str
    from_team: str
    attempt: int = Field(description="the new attempt")
    reason: str
    reassigned_at: AwareDatetime


class CandidateVerdict(OutboundModel):
    rep_id: str
    verdict: str = Field(
        description="picked, not_their_turn, away, offline, out_of_office, out_of_hours, "
        "missing_skill, at_capacity or daily_cap"
    )


class RouteStep(OutboundModel):
    route: str
    matched: bool
    reason: str
    outcome: str = Field(description="skipped, assigned, queued, nobody_available or no_owner")
    candidates: list[CandidateVerdict] = Field(default_factory=list)


class RoutingDecision(OutboundModel):
    """Topic `routing-decisions`, key = lead id: the full trace of one decision."""

    event_id: str
    type: Literal["routing.decision"] = "routing.decision"
    lead_id: str
    attempt: int = 1
    decided_at: AwareDatetime
    rulebook_version: str
    outcome: Literal["assigned", "queued"]
    rep_id: str | None = None
    team: str | None = None
    route: str
    queue: str | None = None
    territories: list[str]
    segments: list[str]
    named_account: str | None = None
    steps: list[RouteStep]


class AssignmentRef(InboundModel):
    """What a monitor needs of an `assignments` record; tolerant of fields added later."""

    event_id: str
    type: Literal["lead.assigned", "lead.queued", "lead.reassigned"]
    lead_id: Id


AssignmentEvent = Annotated[LeadAssigned | LeadQueued | LeadReassigned, Field(discriminator="type")]
SlaEvent = Annotated[SlaMet | SlaBreached | SlaWarning | SlaEscalated, Field(discriminator="type")]

# Every model with a checked-in schema, by file stem.
SCHEMAS: dict[str, type[BaseModel]] = {
    "lead-event": LeadEvent,
    "activity-event": ActivityEvent,
    "rep-status-event": RepStatusEvent,
    "lead-assigned": LeadAssigned,
    "lead-queued": LeadQueued,
    "sla-met": SlaMet,
    "sla-breached": SlaBreached,
    "sla-warning": SlaWarning,
    "sla-escalated": SlaEscalated,
    "lead-reassigned": LeadReassigned,
    "routing-decision": RoutingDecision,
}
