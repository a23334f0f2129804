"""An escalation's reassignment request is served, kept, or dropped for a reason.

The SLA monitor's ack (monitors/lua/ack.lua) leaves a request; a router's queue
drainer routes the lead again as attempt + 1 (or queues it as exhausted), with the
events in the Redis outbox, in one script that also removes the request. A request
that cannot be served yet stays; one that is moot (the lead was touched, its record
expired) is dropped with the reason logged, and only if it still is moot when it is
dropped: a request is never consumed without attempt + 1 or the exhausted queue.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from monitors.metrics import Metrics
from monitors.timers import RedisTimers
from router.assignments import AssignmentStore, ReassignContext
from router.codec import decode_lead_event
from router.outbox import OutboxPublisher
from router.placement import place
from router.queue_drain import QueueDrainer
from router.redis_keys import RedisKeys
from router.rulebook_source import Rules

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
RULES = Rules.load(
    """
version: drain-1
reps:
  - {id: e1, teams: [emea], capacity: 100}
  - {id: e2, teams: [emea], capacity: 100}
  - {id: e3, teams: [emea], capacity: 100}
teams: [{id: emea, strategy: least_loaded}]
routes:
  - {id: eu, when: {country: [BR]}, assign: {team: emea}}
sla_policies:
  - id: second-chance
    first_touch: 5s
    escalation: [{after: 1s, action: reassign}]
    max_attempts: 2
    exhausted_queue: exhausted
""",
    "test",
    timedelta(minutes=5),
)


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[None]:
        self.sent.append(orjson.loads(value))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


class Parts:
    def __init__(self, redis: Redis, prefix: str, store: AssignmentStore | None = None) -> None:
        self.keys = RedisKeys(prefix)
        self.redis = redis
        self.store = store or AssignmentStore(redis, self.keys, 3600, outbox_topics=("assignments", "trace"))
        self.timers = RedisTimers(redis, self.keys, 3600)
        metrics = Metrics(CollectorRegistry())
        self.producer = FakeProducer()
        self.outbox = OutboxPublisher(redis, self.keys, self.producer, metrics)  # type: ignore[arg-type]
        self.drainer = QueueDrainer(
            self.store, lambda: RULES, self.outbox, metrics, "assignments", lambda: NOW
        )

    async def route(self, lead_id: str, *, announce: bool = True) -> None:
        """Route a new lead (attempt 1), as the routing worker does."""
        raw = orjson.dumps({
            "event_id": f"{lead_id}-created", "type": "lead.created", "occurred_at": NOW.isoformat(),
            "lead": {"id": lead_id, "country": "BR"},
        })  # fmt: skip
        event = decode_lead_event(lead_id.encode(), raw)
        _, state = await self.store.read(lead_id, RULES.compiled, NOW)
        placed = await place(self.store, RULES, event, raw, state, NOW)
        assert placed.result.status == "ok"
        if announce:
            await self.store.mark_published([lead_id])

    async def escalate(self, lead_id: str, attempt: int) -> None:
        """The monitor published the reassigning escalation and acks it."""
        await self.timers.ack([(f"esc0:{attempt}:{lead_id}", True)], int(NOW.timestamp() * 1000))

    async def lead(self, lead_id: str) -> dict[str, str]:
        raw = await self.redis.hgetall(self.keys.lead(lead_id))
        skip = ("event", "trace", "lead")
        return {k.decode(): v.decode() for k, v in raw.items() if k.decode() not in skip}

    async def requests(self) -> list[bytes]:
        return await self.redis.zrange(self.keys.reassign, 0, -1)  # type: ignore[no-any-return]

    async def published(self) -> list[tuple[str, int, str]]:
        while await self.outbox.publish_once():
            pass
        return [(e["type"], e["attempt"], e.get("queue") or e.get("rep_id") or "") for e in self.producer.sent
                if "type" in e]  # fmt: skip


def logged(caplog: pytest.LogCaptureFixture, event: str) -> list[dict[str, Any]]:
    return [getattr(r, "lr_fields", {}) for r in caplog.records if r.getMessage() == event]


async def test_an_escalation_reassigns_then_exhausts_through_the_outbox(
    redis: Redis, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """ack -> request -> drainer -> outbox -> Kafka: attempt 2 to another rep, then the
    exhausted queue; each request is gone once its events wait in the outbox."""
    caplog.set_level(logging.INFO, "leadrouter.queue")
    p = Parts(redis, redis_prefix)
    await p.route("L1")
    first = (await p.lead("L1"))["rep"]
    await p.escalate("L1", 1)
    assert await p.requests() == [b"L1"], "the ack asks the routers, on the key they read"

    assert await p.drainer.reassign_once() == 1
    state = await p.lead("L1")
    assert (state["attempt"], state["status"]) == ("2", "assigned")
    assert state["rep"] != first
    assert await p.requests() == []
    assert await redis.llen(p.keys.outbox) == 3, "lead.reassigned, lead.assigned, the trace"

    await p.escalate("L1", 2)
    assert await p.drainer.reassign_once() == 1
    assert (await p.lead("L1"))["status"] == "queued"
    assert await p.requests() == []
    events = await p.published()
    assert [e for e in events if e[0] != "routing.decision"] == [
        ("lead.reassigned", 2, ""), ("lead.assigned", 2, state["rep"]),
        ("lead.reassigned", 3, ""), ("lead.queued", 3, "exhausted"),
    ]  # fmt: skip
    assert [f["to"] for f in logged(caplog, "lead.reassigned")] == [state["rep"], "queue exhausted"]


async def test_a_request_for_a_decision_not_yet_announced_waits(
    redis: Redis, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The lead's first decision was committed but not yet published (its router was
    killed, or is retrying): the request stays, and is served once it is announced."""
    caplog.set_level(logging.INFO, "leadrouter.queue")
    p = Parts(redis, redis_prefix)
    await p.route("L2", announce=False)
    await p.escalate("L2", 1)
    assert await p.drainer.reassign_once() == 0
    assert await p.requests() == [b"L2"], "kept"
    assert await redis.llen(p.keys.outbox) == 0
    assert logged(caplog, "reassign.deferred") == [{"lead_id": "L2", "status": "gone"}]
    await p.store.mark_published(["L2"])
    assert await p.drainer.reassign_once() == 1
    assert (await p.lead("L2"))["attempt"] == "2"


async def test_a_request_for_a_touched_lead_is_dropped_with_its_reason(
    redis: Redis, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The rep touched the lead after the escalation: the request is moot, dropped, and
    the log says why; the lead stays with its rep."""
    caplog.set_level(logging.INFO, "leadrouter.queue")
    p = Parts(redis, redis_prefix)
    await p.route("L3")
    await p.escalate("L3", 1)
    rep = (await p.lead("L3"))["rep"]
    assert (await p.timers.touch("L3", rep, int(NOW.timestamp() * 1000) + 6_500)).outcome == "met"
    assert await p.drainer.reassign_once() == 0
    assert await p.requests() == []
    assert (await p.lead("L3"))["attempt"] == "1"
    assert logged(caplog, "reassign.dropped") == [{"lead_id": "L3", "why": "touched"}]


async def test_a_request_read_as_moot_that_became_servable_is_not_dropped(
    redis: Redis, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Between the drainer's read (nothing to reassign) and its drop, the lead became
    reassignable (here: its record was written just then). The drop checks again in
    the same step and keeps the request; the next round serves it."""
    caplog.set_level(logging.INFO, "leadrouter.queue")
    parts: list[Parts] = []

    class Racing(AssignmentStore):
        async def reassign_context(self, lead_id: str) -> ReassignContext | None:
            context = await super().reassign_context(lead_id)
            if context is None and not await parts[0].lead(lead_id):
                await parts[0].route(lead_id)  # lands right after the read
            return context

    keys = RedisKeys(redis_prefix)
    p = Parts(redis, redis_prefix, Racing(redis, keys, 3600, outbox_topics=("assignments", "trace")))
    parts.append(p)
    await redis.zadd(keys.reassign, {"L4": 1})
    assert await p.drainer.reassign_once() == 0
    assert await p.requests() == [b"L4"], "kept: the drop saw the lead could be reassigned"
    assert logged(caplog, "reassign.dropped") == []
    assert await p.drainer.reassign_once() == 1
    assert (await p.lead("L4"))["attempt"] == "2"


async def test_a_request_whose_record_expired_is_dropped_with_its_reason(
    redis: Redis, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "leadrouter.queue")
    p = Parts(redis, redis_prefix)
    await redis.zadd(p.keys.reassign, {"L5": 1})
    assert await p.drainer.reassign_once() == 0
    assert await p.requests() == []
    assert logged(caplog, "reassign.dropped") == [{"lead_id": "L5", "why": "no_record"}]


async def test_a_request_another_router_served_meanwhile_is_not_reported_dropped(
    redis: Redis, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Two drainers read the same request; the second reads the lead after the first
    queued it as exhausted (nothing left to reassign). The request is already gone: no
    `reassign.dropped` line for it, which would blame the wrong path."""
    caplog.set_level(logging.INFO, "leadrouter.queue")

    class Late(AssignmentStore):
        async def reassign_requests(self, limit: int) -> list[str]:
            return ["L6"]  # read before the other router served it

    keys = RedisKeys(redis_prefix)
    first = Parts(redis, redis_prefix)
    second = Parts(redis, redis_prefix, Late(redis, keys, 3600, outbox_topics=("assignments", "trace")))
    await first.route("L6")
    await first.escalate("L6", 1)
    assert await first.drainer.reassign_once() == 1
    await first.escalate("L6", 2)
    assert await first.drainer.reassign_once() == 1, "exhausted"
    assert await second.drainer.reassign_once() == 0
    assert logged(caplog, "reassign.dropped") == []
    assert (await first.lead("L6"))["status"] == "queued"
