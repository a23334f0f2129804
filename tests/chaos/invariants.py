"""What must hold after the chaos run, checked from the output topics and Redis.

Only the real guarantees are asserted:

- At-least-once publication with deterministic event ids: copies of an output
  event are allowed (a worker killed between publishing and recording it), but
  every copy carries the same event id and the same content that matters (rep,
  deadline). Distinct ids per lead, attempt and kind: exactly one.
- A touch decides a breach by when it was made (`occurred_at`) and by when Kafka
  had it: the monitors only declare a breach for deadlines their group has read
  past. A touch made before the deadline and acknowledged by the broker before it
  must stop the clock, even if Redis was down when it arrived. A touch made in
  time but acknowledged after the deadline (our producer waited out the broker
  restart) reached the system late: the breach may or may not fire, so such
  leads only get "at most one breach" (they are counted as `ambiguous`).
- How late a breach is detected is not asserted under chaos: outages delay them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from tests.chaos.harness import CAPACITY, MALFORMED, WARN_BEFORE_SECONDS, Ledger, Plan, Touch, ts

# Touch and deadline closer than this are not classified (clock granularity, ms
# rounding in the events).
MARGIN = 0.1


@dataclass
class Verdicts:
    in_time: set[str] = field(default_factory=set)  # no breach owed, sla.met within SLA
    late: set[str] = field(default_factory=set)  # touched after the deadline: breach and sla.met
    untouched: set[str] = field(default_factory=set)  # never touched by the assigned rep: breach
    ambiguous: set[str] = field(default_factory=set)  # made in time, reached Kafka late


def distinct(events: list[dict[str, Any]], *same: str) -> tuple[dict[str, dict[str, Any]], int, list[str]]:
    """Events by event id, the number of extra copies, and ids whose copies differ in `same`."""
    by_id: dict[str, dict[str, Any]] = {}
    copies = 0
    differing = []
    for e in events:
        first = by_id.setdefault(e["event_id"], e)
        if first is not e:
            copies += 1
            if any(first.get(k) != e.get(k) for k in same):
                differing.append(e["event_id"])
    return by_id, copies, differing


def per_lead(by_id: dict[str, dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in by_id.values():
        out[e["lead_id"]].append(e)
    return out


def classify(assigned: dict[str, dict[str, Any]], touches: dict[str, list[Touch]]) -> Verdicts:
    v = Verdicts()
    for lead_id, a in assigned.items():
        due = ts(a["first_touch_due_at"])
        by_rep = sorted(
            (t for t in touches.get(lead_id, []) if t.rep_id == a["rep_id"]), key=lambda t: t.occurred_at
        )
        if not by_rep:
            v.untouched.add(lead_id)
            continue
        first = by_rep[0]
        assert first.acked_at is not None, f"touch of {lead_id} never acknowledged"
        if first.occurred_at > due + MARGIN:
            v.late.add(lead_id)
        elif first.occurred_at <= due - MARGIN and first.acked_at <= due - MARGIN:
            v.in_time.add(lead_id)
        else:
            v.ambiguous.add(lead_id)
    return v


def check_all(
    ledger: Ledger,
    plans: dict[str, Plan],
    touches: dict[str, list[Touch]],
    open_counts: dict[str, int],
    max_open: dict[str, int],
) -> dict[str, Any]:
    """Assert every invariant; return the figures to print."""
    figures: dict[str, Any] = {"leads": len(plans)}
    valid = set(plans)
    ev = ledger.events

    # Exactly one assignment decision per valid lead: one lead.assigned id, copies agree.
    assert not ev["lead.reassigned"], "nothing in this run reassigns"
    assigned_ids, copies, differing = distinct(ev["lead.assigned"], "rep_id", "first_touch_due_at", "attempt")
    assert not differing, f"copies of lead.assigned that disagree: {differing[:5]}"
    by_lead = per_lead(assigned_ids)
    missing = valid - set(by_lead)
    assert not missing, f"{len(missing)} valid leads never assigned: {sorted(missing)[:5]}"
    extra = set(by_lead) - valid
    assert not extra, f"assignments of leads nobody sent (or malformed ones): {sorted(extra)[:5]}"
    twice = {lead: [e["rep_id"] for e in es] for lead, es in by_lead.items() if len(es) > 1}
    assert not twice, f"leads assigned twice (different event ids): {dict(list(twice.items())[:5])}"
    assigned = {lead: es[0] for lead, es in by_lead.items()}
    assert all(a["attempt"] == 1 for a in assigned.values())
    figures["assigned"] = len(assigned)
    figures["copies lead.assigned"] = copies

    queued_ids, queued_copies, _ = distinct(ev["lead.queued"])
    queued = per_lead(queued_ids)
    assert all(plans[lead].country == "IS" for lead in queued), "only the tiny team's leads wait"
    assert all(len(es) == 1 for es in queued.values()), "one lead.queued per waiting lead"
    figures["queued, then assigned from the retry queue"] = len(queued)
    figures["copies lead.queued"] = queued_copies

    # No rep over capacity: sampled live, and the final counts match the events.
    over = {rep: n for rep, n in max_open.items() if n > CAPACITY.get(rep, 0)}
    assert not over, f"reps over capacity: {over}"
    met_ids, met_copies, met_differing = distinct(ev["sla.met"], "touched_at", "rep_id", "within_sla")
    assert not met_differing, f"copies of sla.met that disagree: {met_differing[:5]}"
    met = per_lead(met_ids)
    expected_open = Counter(a["rep_id"] for lead, a in assigned.items() if lead not in met)
    actual = {rep: n for rep, n in open_counts.items() if n}
    assert actual == dict(expected_open), f"open counts in Redis {actual} != from the events {expected_open}"
    figures["max open per rep (capacity)"] = {
        rep: f"{max_open.get(rep, 0)}/{cap}" for rep, cap in CAPACITY.items() if cap < 1000
    }

    # Breaches: exactly one per untouched (or late-touched) lead, none for leads touched in time.
    verdicts = classify(assigned, touches)
    breach_ids, breach_copies, breach_differing = distinct(ev["sla.breached"], "due_at", "rep_id", "attempt")
    assert not breach_differing, f"copies of sla.breached that disagree: {breach_differing[:5]}"
    breached = per_lead(breach_ids)
    assert all(len(es) == 1 for es in breached.values()), "one breach id per lead and attempt"
    owed = verdicts.untouched | verdicts.late
    lost = owed - set(breached)
    assert not lost, f"{len(lost)} breaches lost: {sorted(lost)[:5]}"
    false = set(breached) - owed - verdicts.ambiguous
    assert not false, f"{len(false)} leads touched in time got a breach: {sorted(false)[:5]}"
    for lead, (b,) in breached.items():
        assert b["rep_id"] == assigned[lead]["rep_id"]
        # Alerts carry the deadline as Redis keeps it, in whole milliseconds.
        assert abs(ts(b["due_at"]) - ts(assigned[lead]["first_touch_due_at"])) < 0.002

    # sla.met: one per lead its rep touched, within_sla as the touch time says.
    touched = verdicts.in_time | verdicts.late | verdicts.ambiguous
    assert set(met) == touched, (
        f"sla.met missing: {sorted(touched - set(met))[:5]}; unexpected: {sorted(set(met) - touched)[:5]}"
    )
    assert all(len(es) == 1 for es in met.values()), "one sla.met id per lead and attempt"
    wrong = [lead for lead in verdicts.in_time if not met[lead][0]["within_sla"]]
    wrong += [lead for lead in verdicts.late if met[lead][0]["within_sla"]]
    assert not wrong, f"sla.met with the wrong within_sla: {wrong[:5]}"

    # Warnings: at most one per lead; none for a lead touched (and known) before the warning.
    warn_ids, warn_copies, _ = distinct(ev["sla.warning"])
    warned = per_lead(warn_ids)
    assert all(len(es) == 1 for es in warned.values()), "one warning id per lead and attempt"
    early = set()
    for lead in verdicts.in_time:
        first = min(
            (t for t in touches[lead] if t.rep_id == assigned[lead]["rep_id"]), key=lambda t: t.occurred_at
        )
        warn_at = ts(assigned[lead]["first_touch_due_at"]) - WARN_BEFORE_SECONDS
        if first.acked_at is not None and first.acked_at <= warn_at - MARGIN:
            early.add(lead)
    assert not early & set(warned), f"warned after an early touch: {sorted(early & set(warned))[:5]}"
    assert set(warned) <= valid

    # Malformed leads are dead-lettered, never assigned.
    dead = {key for key, _ in ledger.dead_letters}
    assert dead == {key for key, _ in MALFORMED}, f"dead letters: {sorted(k or b'' for k in dead)}"

    figures.update({
        "touched in time": len(verdicts.in_time),
        "touched late": len(verdicts.late),
        "untouched (incl. other reps' touches)": len(verdicts.untouched),
        "touched in time, reached Kafka after the deadline (breach optional)": len(verdicts.ambiguous),
        "of those breached": len(set(breached) & verdicts.ambiguous),
        "sla.breached": len(breached),
        "sla.met": len(met),
        "sla.warning": len(warned),
        "copies sla.breached": breach_copies,
        "copies sla.met": met_copies,
        "copies sla.warning": warn_copies,
        "dead letters (copies)": f"{len(dead)} ({len(ledger.dead_letters) - len(dead)})",
    })  # fmt: skip
    figures["duplicates seen"] = copies + queued_copies + met_copies + breach_copies + warn_copies
    figures["duplicates deduplicated"] = figures["duplicates seen"]  # every copy shared its original's id
    figures["lost"] = len(missing) + len(lost) + len(touched - set(met))
    return figures


def check_webhook_outbox() -> None:
    """No alert lost from the webhook outbox.

    TODO(webhook notifier, issue #6): once the notifier lands (monitors/ with a
    Redis outbox), enable it in the chaos run's workers and assert here that every
    distinct sla.breached / sla.escalated alert id the rules route to a webhook was
    delivered (a receiver in the test records deliveries; copies share the alert
    id), and that the outbox and its in-flight set are empty at the end.
    """
