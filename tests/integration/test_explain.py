"""`leadrouter explain LEAD_ID` on a real redis-server: the stored decision, in words."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from router.assignments import AssignmentStore
from router.cli import main
from router.codec import encode
from router.devinfra import free_port
from router.outputs import assignment_event, decision_event
from router.redis_keys import RedisKeys
from router.settings import DEFAULT_RULEBOOK
from rules.compiled import compile_rulebook
from rules.decide import Decision, decide
from rules.events import Lead, LeadEvent
from rules.rulebook import parse_rulebook
from rules.selection import RepState

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

# Monday 20:00 UTC: noon on the US west coast.
NOW = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
BOOK = compile_rulebook(parse_rulebook(DEFAULT_RULEBOOK.read_text(encoding="utf-8"), "default.yaml"))


def record(
    redis_url: str, prefix: str, lead: Lead, state: RepState | None = None, *, with_trace: bool = True
) -> Decision:
    """Decide `lead` and commit it as the router does: the event and the full trace."""
    decision = decide(lead, BOOK, state or RepState(), NOW)
    event = LeadEvent(event_id=f"{lead.id}-created", type="lead.created", occurred_at=NOW, lead=lead)
    payload = encode(assignment_event(event, decision, BOOK.version, NOW, NOW + timedelta(minutes=5)))
    trace = encode(decision_event(lead.id, decision, BOOK.version)) if with_trace else b""

    async def commit() -> None:
        redis = Redis.from_url(redis_url)
        try:
            store = AssignmentStore(redis, RedisKeys(prefix), 3600)
            result = await store.commit(
                lead.id, decision, payload, trace=trace, attempt=1, assigned_ms=0, due_ms=300_000
            )
            assert result.status == "ok"
        finally:
            await redis.aclose()

    asyncio.run(commit())
    return decision


@pytest.fixture
def env(redis_url: str, redis_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADROUTER_REDIS__URL", redis_url)
    monkeypatch.setenv("LEADROUTER_REDIS__PREFIX", redis_prefix)


@pytest.mark.usefixtures("env")
def test_explain_a_routed_lead(redis_url: str, redis_prefix: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The stored trace is printed: outcome, territories, segments, account, routes, verdicts,
    and none of the lead's contact details."""
    lead = Lead.model_validate(
        {"id": "L-west", "email": "pat@buyer.example", "country": "US", "region": "WA",
         "company": {"employees": 300, "name": "Buyer Inc"}}
    )  # fmt: skip
    record(redis_url, redis_prefix, lead)
    assert main(["explain", "L-west"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("lead L-west: assigned to rep-amer-4 (team amer) by route us-west-mid-market\n")
    assert "decided at 2026-11-23T20:00:00+00:00 by rulebook 2026-11-23.1" in out
    assert "territories:   north-america, us-west" in out
    assert "segments:      mid-market" in out
    assert ". enterprise-north-america: skipped, not in segment enterprise" in out
    assert "rep-amer-2  lacks a required skill" in out
    assert "rep-amer-4  picked" in out
    assert "hypothetical" not in out
    assert "pat@buyer.example" not in out
    assert "Buyer Inc" not in out


@pytest.mark.usefixtures("env")
def test_explain_a_queued_lead(redis_url: str, redis_prefix: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A lead queued because everyone was full says so, with each rep at capacity."""
    full = RepState(open_leads={rep_id: rep.rep.capacity for rep_id, rep in BOOK.reps.items()})
    record(redis_url, redis_prefix, Lead(id="L-full", country="BR"), full)
    assert main(["explain", "L-full"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("lead L-full: queued on unrouted by route everyone-else\n")
    assert "everyone-else: matched, nobody available, falling through" in out
    assert "everyone-else (its fallback): matched, queued" in out
    assert "rep-inside-1  at capacity" in out


@pytest.mark.usefixtures("env")
def test_explain_without_a_stored_trace_prints_the_event_summary(
    redis_url: str, redis_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A record without the full trace (written before traces were kept) falls back to the
    compact explanation published with the event."""
    record(redis_url, redis_prefix, Lead(id="L-old", country="JP"), with_trace=False)
    assert main(["explain", "L-old"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("lead L-old: assigned to rep-apac-")
    assert "no full trace stored" in out
    assert "asia-pacific: assigned" in out


@pytest.mark.usefixtures("env")
def test_explain_an_unknown_lead_exits_one(capsys: pytest.CaptureFixture[str]) -> None:
    """A lead Redis has no record of: exit 1 and a message saying so (not a traceback)."""
    assert main(["explain", "never-seen"]) == 1
    captured = capsys.readouterr()
    assert "no decision recorded for lead 'never-seen'" in captured.err
    assert captured.out == ""


def test_explain_looks_under_the_configured_prefix(
    redis_url: str, redis_prefix: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another environment's prefix does not see this one's leads."""
    record(redis_url, redis_prefix, Lead(id="L-here", country="US"))
    monkeypatch.setenv("LEADROUTER_REDIS__URL", redis_url)
    monkeypatch.setenv("LEADROUTER_REDIS__PREFIX", redis_prefix + "other")
    assert main(["explain", "L-here"]) == 1
    assert "no decision recorded" in capsys.readouterr().err


def test_explain_with_redis_down_exits_two(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Redis unreachable: exit 2 with the error's kind, never the URL (it may hold a password)."""
    monkeypatch.setenv("LEADROUTER_REDIS__URL", f"redis://:hunter2@127.0.0.1:{free_port()}/0")
    monkeypatch.setenv("LEADROUTER_REDIS__SOCKET_TIMEOUT_SECONDS", "1")
    assert main(["explain", "L-1"]) == 2
    err = capsys.readouterr().err
    assert "cannot read Redis: ConnectionError" in err
    assert "hunter2" not in err
