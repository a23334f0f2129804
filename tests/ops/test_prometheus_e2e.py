"""Every dashboard query and alert rule, run by a real Prometheus on real worker metrics.

A router and a monitor (the worker CLI, on a real broker and redis-server, with
per-rep metrics on) handle demo-like traffic with a 2-second SLA: leads touched in
time, touched late, never touched, queued, and a few malformed events. A Prometheus scraping both workers
every second then runs each PromQL expression of the dashboards and of alerts.yml.
"""

from __future__ import annotations

import heapq
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from router.devinfra import ensure_topics
from router.devinfra.topics import run_coro
from router.settings import TopicSettings
from tests.ops.deploy import DASHBOARD_FILES, as_promql, dashboard, queries, require_tool, rules
from tests.ops.prometheus import PrometheusServer, scrape_config
from tests.workers import Workers, workers_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]

SLA_SECONDS = 2.0
PARTITIONS = 2
N_LEADS = 40
RATE = 4.0  # leads per second
RULEBOOK = """
version: ops-e2e-1
reps:
  - {id: amer-1, teams: [amer], capacity: 500}
  - {id: amer-2, teams: [amer], capacity: 500}
  - {id: emea-1, teams: [emea], capacity: 500}
  - {id: emea-2, teams: [emea], capacity: 500}
teams: [{id: amer}, {id: emea}]
routes:
  - {id: north-america, when: {country: [US, CA]}, assign: {team: amer}}
  - {id: japan, when: {country: [JP]}, assign: {queue: review}}
  - {id: rest, assign: {team: emea}}
"""
# The topics the router (leads) and the monitor (the other two) consume; the
# router also reads `reps`, which this test leaves empty.
WATCHED = "leads|activities|assignments"
COUNTRIES = ("US", "DE", "CA", "FR", "JP", "GB")
FATES = ("fast", "fast", "fast", "fast", "fast", "late", "never", "never")
MALFORMED_LEADS = [
    (b"bad-1", b'{"event_id": "x1", "type": "lead.created", "occurred_at": '),  # invalid_json
    (b"other", b'{"event_id": "x2", "type": "lead.created", "occurred_at": "2026-11-23T10:00:00Z", '
               b'"lead": {"id": "bad-2"}}'),  # bad_key
]  # fmt: skip
MALFORMED_ACTIVITY = (b"bad-3", b'{"event_id": "x3", "type": "activity"}')  # schema_violation
# Panel title -> the queries (refIds) that must show data after this traffic, beyond
# running without error. (No lead waits for a rep here: "from the queue" stays empty;
# no SLA policy warns or escalates, so escalation steps have no series.)
CORE_PANELS = {
    "SLA attainment, last hour": "A",
    "SLA attainment by team (rolling hour)": "AB",
    "Time to first touch by team, median and p90": "ABC",
    "SLA breaches by team and policy": "A",
    "Open leads awaiting first touch, by team": "A",
    "Assignments by team and route": "A",
    "Leads at risk now": "A",
    "Leads awaiting first touch now": "A",
    "Oldest untouched lead": "A",
    "Speed to lead p90, last hour": "A",
    "Speed to lead by team, median and p90": "AB",
    "Warnings, escalations and reassignments by team": "AC",
    "Leads awaiting first touch and at risk": "AB",
    "Oldest untouched lead vs SLA target": "AB",
    "Late arrivals by team": "A",
    "First touch by rep": "ABCDE",
}
REPS = {"amer-1", "amer-2", "emea-1", "emea-2"}


def _now() -> str:
    return datetime.now(UTC).isoformat()


def lead(i: int) -> tuple[str, bytes]:
    lead_id = f"ops-{i:03d}"
    body = {"id": lead_id, "email": f"buyer{i}@example.com", "country": COUNTRIES[i % 6]}
    event = {"event_id": f"{lead_id}-created", "type": "lead.created", "occurred_at": _now(), "lead": body}
    return lead_id, orjson.dumps(event)


def activity(lead_id: str, rep_id: str) -> bytes:
    event = {"event_id": f"{lead_id}-touch", "type": "activity", "occurred_at": _now(),
             "lead_id": lead_id, "rep_id": rep_id, "channel": "call", "direction": "outbound"}  # fmt: skip
    return orjson.dumps(event)


async def publish_traffic(bootstrap: str, topics: TopicSettings) -> Counter[str]:
    """Publish leads at RATE and touch each assigned one by its fate; returns what the
    metrics must then count (assigned, met, breached)."""
    leads_topic, acts_topic = topics.name("leads"), topics.name("activities")
    routable = sum(1 for i in range(N_LEADS) if COUNTRIES[i % 6] != "JP")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    out = AIOKafkaConsumer(
        topics.name("assignments"), bootstrap_servers=bootstrap,
        auto_offset_reset="earliest", enable_auto_commit=False,
    )  # fmt: skip
    await producer.start()
    await out.start()
    expected: Counter[str] = Counter()
    fates: dict[str, str] = {}
    touches: list[tuple[float, str, str]] = []  # (when, lead, rep), a heap
    try:
        for key, value in MALFORMED_LEADS:
            await producer.send(leads_topic, value, key=key)
        await producer.send(acts_topic, MALFORMED_ACTIVITY[1], key=MALFORMED_ACTIVITY[0])
        started = time.monotonic()
        deadline = started + 45
        sent = 0
        while expected["assigned"] < routable or touches or sent < N_LEADS:
            assert time.monotonic() < deadline, f"pipeline too slow: {expected}, {sent} sent"
            if sent < N_LEADS and time.monotonic() >= started + sent / RATE:
                lead_id, value = lead(sent)
                fates[lead_id] = FATES[sent % len(FATES)]
                await producer.send(leads_topic, value, key=lead_id.encode())
                sent += 1
            for records in (await out.getmany(timeout_ms=50)).values():
                for record in records:
                    event = orjson.loads(record.value)
                    fate = fates.get(event["lead_id"])
                    if event["type"] != "lead.assigned" or fate is None:
                        continue
                    expected["assigned"] += 1
                    expected["met" if fate == "fast" else "breached"] += 1
                    expected["untouched"] += fate == "never"
                    if fate != "never":
                        delay = 0.3 if fate == "fast" else SLA_SECONDS * 1.5
                        heapq.heappush(touches, (time.monotonic() + delay, event["lead_id"], event["rep_id"]))
            while touches and touches[0][0] <= time.monotonic():
                _, lead_id, rep_id = heapq.heappop(touches)
                await producer.send(acts_topic, activity(lead_id, rep_id), key=lead_id.encode())
        await producer.flush()
    finally:
        await out.stop()
        await producer.stop()
    return expected


def start_workers(
    kafka_bootstrap: str, redis_url: str, topic_prefix: str, redis_prefix: str, tmp_path: Path
) -> Workers:
    workers = workers_for(
        kafka_bootstrap,
        redis_url,
        topic_prefix,
        redis_prefix,
        tmp_path,
        RULEBOOK,
        sla__first_touch_seconds=str(SLA_SECONDS),
        metrics__per_rep="true",
    )
    workers.start("router")
    workers.start("monitor")
    return workers


def _dashboard_queries() -> list[tuple[str, str, str, str]]:
    """(dashboard, panel title, refId, PromQL) for every query of both dashboards."""
    return [
        (name, panel["title"], target["refId"], as_promql(target["expr"]))
        for name in DASHBOARD_FILES
        for panel, target in queries(dashboard(name))
    ]


def _rule_queries() -> list[tuple[str, str]]:
    return [(str(rule.get("alert") or rule.get("record")), str(rule["expr"])) for rule in rules()]


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    """Session-scoped and asked for first: a missing prometheus skips before a broker starts."""
    return require_tool("prometheus", "prometheus")


def test_dashboards_and_alerts_query_real_metrics(
    prometheus_binary: str,
    kafka_bootstrap: str,
    redis_url: str,
    topic_prefix: str,
    redis_prefix: str,
    tmp_path: Path,
) -> None:
    """On a real Prometheus scraping real workers, every dashboard query and alert rule
    evaluates without error, the core speed-to-lead panels show data (the Redis-wide
    gauges the right numbers), the team variable lists the teams, and the dead-letter
    alert fires for the malformed events."""
    topics = TopicSettings(prefix=topic_prefix, partitions=PARTITIONS)
    run_coro(lambda: ensure_topics(kafka_bootstrap, topics.all_topics()))
    workers = start_workers(kafka_bootstrap, redis_url, topic_prefix, redis_prefix, tmp_path)
    prometheus = PrometheusServer(prometheus_binary, tmp_path / "prometheus")

    def workers_scraped() -> bool:
        # Both up, and every partition assigned and polled (so the monitor's
        # watermark covers them all and breaches can be declared).
        lag_series = f'count(leadrouter_consumer_lag_records{{topic=~"{WATCHED}"}})'
        up = prometheus.values('sum(up{job="leadrouter"})') == [2.0]
        return up and prometheus.values(lag_series) == [3.0 * PARTITIONS]

    def outcomes_scraped(expected: Counter[str]) -> bool:
        met = prometheus.values("sum(leadrouter_sla_met_total)")
        breached = prometheus.values("sum(leadrouter_sla_breached_total)")
        return met == [float(expected["met"])] and breached == [float(expected["breached"])]

    try:
        prometheus.start(scrape_config([f"127.0.0.1:{w.port}" for w in workers.started]))
        workers.wait_ready()
        prometheus.wait_for(workers_scraped, 30, "both workers scraped with their partitions")
        expected = run_coro(lambda: publish_traffic(kafka_bootstrap, topics))
        prometheus.wait_for(
            lambda: outcomes_scraped(expected), 30, f"Prometheus to scrape every outcome {dict(expected)}"
        )
        prometheus.wait_for(
            lambda: bool(prometheus.values('ALERTS{alertname="LeadrouterEventsDeadLettered"}')),
            15,
            "the rules to evaluate",
        )
        check_every_query_runs(prometheus)
        check_core_panels_have_data(prometheus)
        check_untouched_leads(prometheus, expected)
        check_rules_healthy_and_dead_letters_alerted(prometheus)
        teams = prometheus.api("label/team/values", **{"match[]": "leadrouter_leads_routed_total"})
        assert teams["data"] == ["amer", "emea"], "the team variable lists the teams"
    finally:
        prometheus.stop()
        workers.stop_all()


def check_every_query_runs(prometheus: PrometheusServer) -> None:
    errors = []
    panels = [(where, f"{title} ({ref})", expr) for where, title, ref, expr in _dashboard_queries()]
    for where, title, expr in [*panels, *(("alerts.yml", n, e) for n, e in _rule_queries())]:
        answer = prometheus.query(expr)
        if answer["status"] != "success":
            errors.append(f"{where} / {title}: {answer.get('error')}\n  {expr}")
    assert not errors, "queries Prometheus rejected:\n" + "\n".join(errors)


def check_core_panels_have_data(prometheus: PrometheusServer) -> None:
    seen = set()
    for _, title, ref, expr in _dashboard_queries():
        if ref in CORE_PANELS.get(title, ""):
            seen.add((title, ref))
            assert prometheus.values(expr), f"{title!r} ({ref}) shows no data:\n  {expr}"
    wanted = {(title, ref) for title, refs in CORE_PANELS.items() for ref in refs}
    assert seen == wanted, f"queries not found: {wanted - seen}"
    (attainment,) = prometheus.values(as_promql(_expr("SLA attainment, last hour")))
    assert 0 < attainment < 1, "some leads met the SLA and some breached"


def check_untouched_leads(prometheus: PrometheusServer, expected: Counter[str]) -> None:
    """The leads never touched are the ones awaiting a first touch, none is at risk any
    more (all breached), the target line is the SLA, and the per-rep table lists the reps."""
    untouched = as_promql(_expr("Leads awaiting first touch now"))
    at_risk = as_promql(_expr("Leads at risk now"))
    # The gauges are read from Redis every 2 s, then scraped.
    prometheus.wait_for(
        lambda: (
            prometheus.values(untouched) == [float(expected["untouched"])]
            and prometheus.values(at_risk) == [0.0]
        ),
        10,
        f"{untouched} == {expected['untouched']} (the leads never touched) and {at_risk} == 0",
    )
    (oldest,) = prometheus.values(as_promql(_expr("Oldest untouched lead")))
    assert oldest > SLA_SECONDS, "the first never-touched lead is past its deadline"
    assert prometheus.values("max(leadrouter_sla_target_seconds)") == [SLA_SECONDS]
    answer = prometheus.query(as_promql(_expr("First touch by rep")))
    assert {sample["metric"]["rep"] for sample in answer["data"]["result"]} == REPS


def _expr(title: str) -> str:
    for _, panel_title, _, expr in _dashboard_queries():
        if panel_title == title:
            return expr
    raise AssertionError(f"no panel {title!r}")


def check_rules_healthy_and_dead_letters_alerted(prometheus: PrometheusServer) -> None:
    groups = prometheus.api("rules")["data"]["groups"]
    loaded = {rule["name"]: rule for group in groups for rule in group["rules"]}
    assert set(loaded) == {name for name, _ in _rule_queries()}, "Prometheus loaded every rule"
    unhealthy = {name: rule.get("lastError") for name, rule in loaded.items() if rule["health"] != "ok"}
    assert not unhealthy, f"rules failing to evaluate: {unhealthy}"
    alerts = prometheus.api("alerts")["data"]["alerts"]
    dead = {
        (a["labels"]["topic"], a["labels"]["reason"])
        for a in alerts
        if a["labels"]["alertname"] == "LeadrouterEventsDeadLettered" and a["state"] == "firing"
    }
    # The first dead letter of each series: seen only through its `_created` timestamp.
    assert {("leads", "invalid_json"), ("leads", "bad_key")} <= dead, alerts
