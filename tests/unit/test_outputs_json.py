"""The routing-decision and assignment events written without pydantic are the models'
JSON, byte for byte."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
import yaml

from router.batch import LiveState
from router.bench.synthetic import leads, rulebook
from router.codec import decode_lead_event, encode
from router.outputs import assignment_event, assignment_event_json, decision_event, decision_event_json
from router.placement import plan
from router.rulebook_source import Rules
from rules.decide import Assignment
from rules.selection import RepState

# Small capacities, daily caps and working hours: assignments, queued leads, owners,
# fallbacks and every verdict show up.
BOOK = yaml.safe_dump(rulebook(reps=30, routes=40, accounts=100))
RULES = Rules.load(BOOK, "synthetic", timedelta(minutes=5))
CREATED = "2026-11-23T10:00:00.5+00:00"


@pytest.mark.parametrize(
    "now",
    [
        datetime(2026, 11, 23, 15, 0, tzinfo=UTC),  # no microseconds
        datetime(2026, 11, 23, 15, 0, 7, 120_034, tzinfo=UTC),
        datetime(2026, 11, 24, 3, 30, 0, 5, tzinfo=UTC),  # night in the Americas
    ],
)
def test_decision_event_json_is_the_models_json(now: datetime) -> None:
    live = LiveState(RepState())
    kinds = set()
    for i, (lead, _) in enumerate(leads(800, accounts=100)):
        raw = orjson.dumps({"event_id": f"e{i}", "type": "lead.created", "occurred_at": CREATED,
                            "lead": lead.model_dump(mode="json", exclude_none=True)})  # fmt: skip
        event = decode_lead_event(lead.id.encode(), raw)
        decided = plan(RULES, event, raw, live.view, now)
        live.apply(decided.decision, 0)
        for attempt in (1, 3):
            fast = decision_event_json(lead.id, decided.decision, "v-ü 1", attempt)
            assert fast == encode(decision_event(lead.id, decided.decision, "v-ü 1", attempt))
        d = decided.decision
        kinds.add("assigned" if isinstance(d, Assignment) else "queued")
        kinds.add("named" if d.trace.named_account else "unnamed")
    assert kinds == {"assigned", "queued", "named", "unnamed"}


@pytest.mark.parametrize(
    ("now", "created"),
    [
        (datetime(2026, 11, 23, 15, 0, tzinfo=UTC), CREATED),
        (datetime(2026, 11, 23, 15, 0, 7, 120_034, tzinfo=UTC), "2026-11-23T10:00:00Z"),
        (datetime(2026, 11, 24, 3, 30, 0, 5, tzinfo=UTC), "2026-11-23T22:00:00.000001-08:00"),
        (
            datetime(2026, 11, 24, 3, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
            "2026-11-24T09:00+05:30",
        ),
    ],
)
def test_assignment_event_json_is_the_models_json(now: datetime, created: str) -> None:
    """Assigned and queued leads, any offset on the lead's timestamp, text beyond ASCII."""
    live = LiveState(RepState())
    kinds = set()
    for i, (lead, _) in enumerate(leads(800, accounts=100)):
        data = lead.model_dump(mode="json", exclude_none=True)
        data["id"] = f'{lead.id}-é\u2028\t"{i}'
        raw = orjson.dumps(
            {"event_id": f"e{i}", "type": "lead.created", "occurred_at": created, "lead": data}
        )
        event = decode_lead_event(data["id"].encode(), raw)
        decided = plan(RULES, event, raw, live.view, now)
        live.apply(decided.decision, 0)
        due = now + timedelta(minutes=5, microseconds=i)
        for attempt, policy in ((1, "default"), (3, "vip ü")):
            args = (event, decided.decision, "v-ü 1", now, due, attempt, policy)
            assert assignment_event_json(*args) == encode(assignment_event(*args))
        kinds.add("assigned" if isinstance(decided.decision, Assignment) else "queued")
    assert kinds == {"assigned", "queued"}
