"""Every Prometheus metric of leadrouter, on an injected registry.

Labels come from closed sets only (topic base names, teams, routes, queues and
reasons from the rulebook or code): never a lead id, an email or a name.
`docs/metrics.md` documents each one.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from router.errors import DLQ_REASONS
from rules.rulebook import Rulebook, TeamTarget

# Every value the code uses for these labels, to create the series at start-up.
COMPONENTS = ("router", "monitor", "sweeper", "outbox", "queue", "notifier", "webhooks")
REDIS_OPERATIONS = (
    "read_state", "assign", "mark_published", "touch", "claim", "ack", "open_counts",
    "read_trace", "rep_status", "retry_queue", "reassign_queue", "webhook_enqueue", "webhook_claim",
    "webhook_done", "missed_sla",
)  # fmt: skip

WEBHOOK_FAILURES = ("timeout", "connection", "http_4xx", "http_5xx")

# Seconds: fine resolution under a minute (tests, fast reps), then the ranges
# that matter against a five-minute SLA.
FIRST_TOUCH_BUCKETS = (
    1,
    2,
    5,
    10,
    15,
    30,
    45,
    60,
    90,
    120,
    180,
    240,
    300,
    420,
    600,
    900,
    1800,
    3600,
    7200,
)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
LATENESS_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 5, 10, 30)
REDIS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5)


class Metrics:
    def __init__(self, registry: CollectorRegistry, per_rep: bool = False) -> None:
        self.registry = registry
        self.per_rep = per_rep
        self._roster: frozenset[str] = frozenset()
        p = "leadrouter_"
        self.events_consumed = Counter(
            p + "events_consumed_total", "Records read from an input topic.", ["topic"], registry=registry
        )
        self.duplicate_events = Counter(
            p + "duplicate_events_total",
            "Valid events that changed nothing because they were already applied.",
            ["topic"],
            registry=registry,
        )
        self.dead_letters = Counter(
            p + "dead_letters_total",
            "Records sent to a dead-letter topic, by source topic and reason.",
            ["topic", "reason"],
            registry=registry,
        )
        self.retries = Counter(
            p + "transient_errors_total",
            "Transient failures (Redis or Kafka unavailable) that were retried.",
            ["component"],
            registry=registry,
        )
        self.last_event = Gauge(
            p + "last_event_timestamp_seconds",
            "Unix time of the last record processed from a topic.",
            ["topic"],
            registry=registry,
        )
        self.leads_received = Counter(
            p + "leads_received_total", "Valid lead events received.", ["type"], registry=registry
        )
        self.leads_routed = Counter(
            p + "leads_routed_total", "Leads assigned to a rep.", ["team", "route"], registry=registry
        )
        self.leads_queued = Counter(
            p + "leads_queued_total",
            "Leads no rep could take, by queue.",
            ["queue", "route"],
            registry=registry,
        )
        self.routing_seconds = Histogram(
            p + "routing_seconds",
            "Time from the lead event's occurred_at to its assignment.",
            ["team", "policy"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.first_touch_seconds = Histogram(
            p + "first_touch_seconds",
            "Time from assignment to the assigned rep's first touch (every first touch).",
            ["team", "policy"],
            buckets=FIRST_TOUCH_BUCKETS,
            registry=registry,
        )
        self.sla_met = Counter(
            p + "sla_met_total",
            "First touches at or before the deadline.",
            ["team", "policy"],
            registry=registry,
        )
        self.sla_breached = Counter(
            p + "sla_breached_total",
            "Leads untouched at their deadline.",
            ["team", "policy"],
            registry=registry,
        )
        self.breach_lateness = Histogram(
            p + "sla_breach_detection_lateness_seconds",
            "How long after the deadline a breach was detected.",
            buckets=LATENESS_BUCKETS,
            registry=registry,
        )
        self.open_leads = Gauge(
            p + "open_leads", "Leads assigned and awaiting first touch.", ["team"], registry=registry
        )
        self.worker_info = Gauge(
            p + "worker_info",
            "Always 1: the worker's role and the version of the rulebook it loaded.",
            ["role", "rulebook_version"],
            registry=registry,
        )
        self.rep_status_changes = Counter(
            p + "rep_status_changes_total",
            "Rep status events from the reps topic: the status applied, or stale (an older event).",
            ["status"],
            registry=registry,
        )
        self.outbox_depth = Gauge(
            p + "outbox_depth",
            "Records waiting in the Redis outbox to be published.",
            registry=registry,
        )
        self.outbox_published = Counter(
            p + "outbox_published_total",
            "Records published from the Redis outbox.",
            registry=registry,
        )
        self.leads_waiting = Gauge(
            p + "leads_waiting",
            "Leads queued because nobody could take them, waiting to be assigned first in, first out.",
            registry=registry,
        )
        self.oldest_waiting = Gauge(
            p + "oldest_waiting_lead_age_seconds",
            "How long the oldest lead on the retry queue has waited (0 when none).",
            registry=registry,
        )
        self.leads_dequeued = Counter(
            p + "leads_dequeued_total",
            "Queued leads assigned once someone could take them.",
            ["team", "route"],
            registry=registry,
        )
        self.leads_reassigned = Counter(
            p + "leads_reassigned_total",
            "Leads an SLA escalation took from their rep, by the team they left.",
            ["team"],
            registry=registry,
        )
        self.sla_warned = Counter(
            p + "sla_warned_total",
            "Warnings that a deadline is near and the lead untouched.",
            ["team", "policy"],
            registry=registry,
        )
        self.sla_escalated = Counter(
            p + "sla_escalations_total",
            "Escalation steps taken after a breach.",
            ["team", "policy", "action"],
            registry=registry,
        )
        self.late_arrivals = Counter(
            p + "sla_late_arrivals_total",
            "Touches made in time that reached leadrouter after the breach was published.",
            ["team", "policy"],
            registry=registry,
        )
        self.rulebook_reloads = Counter(
            p + "rulebook_reloads_total",
            "Rulebook reloads after a file change or SIGHUP: ok, or rejected (invalid; the old one serves).",
            ["result"],
            registry=registry,
        )
        self.consumer_lag = Gauge(
            p + "consumer_lag_records",
            "Records in a partition not yet processed (end offset minus position).",
            ["topic", "partition"],
            registry=registry,
        )
        self.batch_seconds = Histogram(
            p + "batch_seconds",
            "Time to process one polled batch, from poll to commit.",
            ["worker"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.redis_seconds = Histogram(
            p + "redis_command_seconds",
            "Latency of leadrouter's Redis operations (one script or pipeline each).",
            ["operation"],
            buckets=REDIS_BUCKETS,
            registry=registry,
        )
        self.redis_errors = Counter(
            p + "redis_errors_total",
            "Redis operations that failed (connection, timeout or server error).",
            ["operation"],
            registry=registry,
        )
        self.watermark_lag = Gauge(
            p + "sla_watermark_lag_seconds",
            "How far the monitors' watermark trails the clock; breaches wait for it.",
            registry=registry,
        )
        self.rep_first_touch = Histogram(
            p + "rep_first_touch_seconds",
            "First-touch time per rep (LEADROUTER_METRICS__PER_REP=true only; rulebook reps only).",
            ["rep"],
            buckets=FIRST_TOUCH_BUCKETS,
            registry=registry,
        )
        self.rep_outcomes = Counter(
            p + "rep_sla_total",
            "First-touch SLA outcomes per rep: met or breached (only with LEADROUTER_METRICS__PER_REP=true).",
            ["rep", "outcome"],
            registry=registry,
        )
        self.speed_to_lead = Histogram(
            p + "speed_to_lead_seconds",
            "From the lead's creation (its event's occurred_at) to the first touch: routing plus response.",
            ["team", "policy"],
            buckets=FIRST_TOUCH_BUCKETS,
            registry=registry,
        )
        self.untouched = Gauge(
            p + "leads_untouched", "Assigned leads awaiting a first touch, in time or not.", registry=registry
        )
        self.oldest_untouched = Gauge(
            p + "oldest_untouched_lead_age_seconds",
            "Time since the oldest untouched lead was first assigned (0 when none).",
            registry=registry,
        )
        self.at_risk = Gauge(
            p + "leads_at_risk",
            "Untouched leads whose deadline falls within the next minute.",
            registry=registry,
        )
        self.ready = Gauge(
            p + "ready",
            "1 while the worker is ready (its loops make progress, Redis answers), else 0.",
            ["role"],
            registry=registry,
        )
        self.sla_target = Gauge(
            p + "sla_target_seconds",
            "The default first-touch SLA, for drawing the target line.",
            registry=registry,
        )
        self.activities_ignored = Counter(
            p + "activities_ignored_total",
            "Activities that stopped no clock, by why.",
            ["reason"],
            registry=registry,
        )

        self.webhook_alerts = Counter(
            p + "webhook_alerts_total",
            "Alerts taken into the webhook outbox: queued, held for the burst digest, or duplicate.",
            ["team", "outcome"],
            registry=registry,
        )
        self.webhook_deliveries = Counter(
            p + "webhook_deliveries_total",
            "Webhook calls the receiver accepted (2xx): one alert, or a digest of a burst.",
            ["team", "kind"],
            registry=registry,
        )
        self.webhook_failures = Counter(
            p + "webhook_failures_total",
            "Webhook calls that failed and will be retried, by why: timeout, connection, http_4xx, http_5xx.",
            ["team", "reason"],
            registry=registry,
        )
        self.webhook_outbox_depth = Gauge(
            p + "webhook_outbox_depth",
            "Alerts waiting in a team's webhook outbox (to send, retry, or held for a digest).",
            ["team"],
            registry=registry,
        )
        self.reps_auto_away = Counter(
            p + "reps_auto_away_total",
            "Reps set away after missing the configured number of SLAs in a row.",
            ["team"],
            registry=registry,
        )

    def rep_touch(self, rep: str, seconds: float, within: bool) -> None:
        if self.per_rep and rep in self._roster:
            self.rep_first_touch.labels(rep).observe(seconds)
            if within:
                self.rep_outcomes.labels(rep, "met").inc()

    def rep_breach(self, rep: str) -> None:
        if self.per_rep and rep in self._roster:
            self.rep_outcomes.labels(rep, "breached").inc()

    def _prime_reps(self) -> None:
        if self.per_rep:
            for rep in self._roster:
                self.rep_first_touch.labels(rep)
                for outcome in ("met", "breached"):
                    self.rep_outcomes.labels(rep, outcome)

    def prime_notifier(self, book: Rulebook, sla_topic: str, webhooks: bool) -> None:
        """The notifier's series at 0: its input topic, and per team its webhook outcomes."""
        self.events_consumed.labels(sla_topic)
        for reason in DLQ_REASONS:
            self.dead_letters.labels(sla_topic, reason)
        for team in [t.id for t in book.teams] + ["(other)"]:
            self.reps_auto_away.labels(team)
            if not webhooks:
                continue
            for outcome in ("queued", "held", "duplicate"):
                self.webhook_alerts.labels(team, outcome)
            for kind in ("alert", "digest"):
                self.webhook_deliveries.labels(team, kind)
            for failure in WEBHOOK_FAILURES:
                self.webhook_failures.labels(team, failure)

    def prime(
        self,
        book: Rulebook,
        input_topics: tuple[str, ...],
        default_sla_seconds: float,
        policies: tuple[str, ...] = ("default",),
    ) -> None:
        """Create every series whose labels are known at start-up, at 0.

        A labelled series otherwise appears only at its first event, already at 1,
        and `increase()` over it misses that event: a first dead letter after a
        restart would never alert.
        """
        self.sla_target.set(default_sla_seconds)
        # Rep labels are bounded by the roster: ids not in the rulebook get no series.
        self._roster = frozenset(r.id for r in book.reps)
        self._prime_reps()
        for topic in input_topics:
            self.events_consumed.labels(topic)
            for reason in DLQ_REASONS:
                self.dead_letters.labels(topic, reason)
        for component in COMPONENTS:
            self.retries.labels(component)
        for operation in REDIS_OPERATIONS:
            self.redis_errors.labels(operation)
        for result in ("ok", "rejected"):
            self.rulebook_reloads.labels(result)
        for team in book.teams:
            self.leads_reassigned.labels(team.id)
            for policy in policies:
                for counter in (self.sla_met, self.sla_breached, self.sla_warned, self.late_arrivals):
                    counter.labels(team.id, policy)
        self.leads_queued.labels(book.default_queue, "(none)")
        for route in book.routes:
            for target in (route.assign, route.fallback):
                if isinstance(target, TeamTarget):
                    self.leads_routed.labels(target.team, route.id)
