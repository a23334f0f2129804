"""What must hold after the chaos run, checked from the output topics and Redis.

Only the real guarantees are asserted:

- At-least-once publication with deterministic event ids: copies of an output
  event are allowed (a worker killed between publishing and recording it), but
  every copy carries the same event id and the same content that matters (rep,
  deadline). Distinct ids per lead, attempt and kind: exactly one (or none).
- A touch decides a breach by when it was made (`occurred_at`) and by when Kafka
  had it: the monitors only declare a breach for deadlines their group has read
  past. A touch made before the deadline and acknowledged by the broker before it
  must stop the clock, even if Redis was down when it arrived. A touch made in
  time but acknowledged after the deadline (our producer waited out the broker
  restart) reached the system late: the breach may or may not fire, so such
  attempts only get "at most one breach" (they are counted as `ambiguous`).
- A second-chance lead (see `harness.SECOND_CHANCE`) left untouched is escalated
  and reassigned (attempt 2), then queued as exhausted; touched in time, never.
  When its rep's touch was late or ambiguous, the reassignment may or may not
  win the race with the touch: either outcome is fine, not both.
- How late a breach is detected is not asserted under chaos: outages delay them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from tests.chaos.harness import (
    CAPACITY,
    MALFORMED,
    MAX_ATTEMPTS,
    SECOND_CHANCE,
    WARN_BEFORE_SECONDS,
    Ledger,
    Plan,
    Touch,
    ts,
)

# Touch and deadline closer than this are not classified (clock granularity, ms
# rounding in the events).
MARGIN = 0.1
Key = tuple[str, int]  # (lead, attempt)


@dataclass
class Verdicts:
    in_time: set[Key] = field(default_factory=set)  # no breach owed, sla.met within SLA
    late: set[Key] = field(default_factory=set)  # touched after the deadline: breach and sla.met
    untouched: set[Key] = field(default_factory=set)  # never touched by the rep: breach
    ambiguous: set[Key] = field(default_factory=set)  # made in time, reached Kafka late

    @property
    def touched(self) -> set[Key]:
        return self.in_time | self.late | self.ambiguous


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


def per_attempt(by_id: dict[str, dict[str, Any]]) -> dict[Key, list[dict[str, Any]]]:
    out: dict[Key, list[dict[str, Any]]] = defaultdict(list)
    for e in by_id.values():
        out[(e["lead_id"], int(e.get("attempt", 1)))].append(e)
    return out


def assignments(ledger: Ledger) -> dict[Key, dict[str, Any]]:
    """One lead.assigned per lead and attempt (the first copy)."""
    return {(e["lead_id"], int(e["attempt"])): e for e in reversed(ledger.events["lead.assigned"])}


Assigned = dict[Key, dict[str, Any]]


def first_touch(key: Key, assigned: Assigned, touches: dict[str, list[Touch]]) -> Touch | None:
    rep = assigned[key]["rep_id"]
    by_rep = [t for t in touches.get(key[0], []) if t.rep_id == rep]
    return min(by_rep, key=lambda t: t.occurred_at) if by_rep else None


def classify(assigned: dict[Key, dict[str, Any]], touches: dict[str, list[Touch]]) -> Verdicts:
    v = Verdicts()
    for key, a in assigned.items():
        due = ts(a["first_touch_due_at"])
        first = first_touch(key, assigned, touches)
        if first is None:
            v.untouched.add(key)
            continue
        assert first.acked_at is not None, f"touch of {key} never acknowledged"
        if first.occurred_at > due + MARGIN:
            v.late.add(key)
        elif first.occurred_at <= due - MARGIN and first.acked_at <= due - MARGIN:
            v.in_time.add(key)
        else:
            v.ambiguous.add(key)
    return v


def next_steps(ledger: Ledger) -> set[Key]:
    """(lead, attempt) that were taken from their rep: reassigned, or queued as exhausted."""
    return {(e["lead_id"], int(e["attempt"]) - 1) for e in ledger.events["lead.reassigned"]}


def outstanding(ledger: Ledger, plans: dict[str, Plan], touches: dict[str, list[Touch]]) -> int:
    """How many owed outputs have not come out yet (0 once the run has drained)."""
    assigned = assignments(ledger)
    v = classify(assigned, touches)
    missing = len({lead for lead in plans} - {lead for lead, _ in assigned})
    breached = {(e["lead_id"], int(e["attempt"])) for e in ledger.events["sla.breached"]}
    met = {(e["lead_id"], int(e["attempt"])) for e in ledger.events["sla.met"]}
    moved = next_steps(ledger)
    missing += len((v.untouched | v.late) - breached)
    missing += len((v.in_time | ((v.late | v.ambiguous) - moved)) - met)
    missing += len({k for k in v.untouched if plans[k[0]].country == SECOND_CHANCE} - moved)
    missing += sum(1 for lead, a in moved if a < MAX_ATTEMPTS and (lead, a + 1) not in assigned)
    return missing


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
    second = {lead for lead, plan in plans.items() if plan.country == SECOND_CHANCE}
    ev = ledger.events

    # Exactly one assignment decision per lead and attempt: one lead.assigned id, copies agree.
    assigned_ids, copies, differing = distinct(ev["lead.assigned"], "rep_id", "first_touch_due_at", "attempt")
    assert not differing, f"copies of lead.assigned that disagree: {differing[:5]}"
    by_key = per_attempt(assigned_ids)
    twice = {key: [e["rep_id"] for e in es] for key, es in by_key.items() if len(es) > 1}
    assert not twice, f"assigned twice in one attempt (different event ids): {dict(list(twice.items())[:5])}"
    assigned = {key: es[0] for key, es in by_key.items()}
    attempts: dict[str, list[int]] = defaultdict(list)
    for lead, attempt in sorted(assigned):
        attempts[lead].append(attempt)
    missing = valid - set(attempts)
    assert not missing, f"{len(missing)} valid leads never assigned: {sorted(missing)[:5]}"
    extra = set(attempts) - valid
    assert not extra, f"assignments of leads nobody sent (or malformed ones): {sorted(extra)[:5]}"
    for lead, seq in attempts.items():
        top = MAX_ATTEMPTS if lead in second else 1
        assert seq == list(range(1, len(seq) + 1)), f"{lead} attempts {seq}"
        assert len(seq) <= top, f"{lead} attempts {seq}"
        reps = [assigned[(lead, a)]["rep_id"] for a in seq]
        assert len(set(reps)) == len(reps), f"{lead} went back to a rep who had it: {reps}"
    figures["assigned (lead, attempt)"] = len(assigned)
    figures["copies lead.assigned"] = copies

    # Moves: lead.reassigned per attempt taken away; exhausted ones queued once.
    moved_ids, moved_copies, _ = distinct(ev["lead.reassigned"], "attempt", "from_rep_id")
    moved = per_attempt(moved_ids)
    assert all(len(es) == 1 for es in moved.values()), "one lead.reassigned id per lead and attempt"
    assert {lead for lead, _ in moved} <= second, "only second-chance leads are reassigned"
    taken = {(lead, attempt - 1) for lead, attempt in moved}
    queued_ids, queued_copies, _ = distinct(ev["lead.queued"], "queue", "attempt")
    queued = per_attempt(queued_ids)
    assert all(len(es) == 1 for es in queued.values()), "one lead.queued id per lead and attempt"
    waited = {lead for (lead, attempt), (e,) in queued.items() if e["queue"] == "unrouted"}
    exhausted = {lead for (lead, attempt), (e,) in queued.items() if e["queue"] == "exhausted"}
    assert all(plans[lead].country == "IS" for lead in waited), "only the tiny team's leads wait"
    assert all((lead, 1) in assigned for lead in waited), "every waiting lead was assigned"
    assert exhausted == {lead for lead, attempt in taken if attempt == MAX_ATTEMPTS}
    for lead, attempt in taken:
        if attempt < MAX_ATTEMPTS:
            assert (lead, attempt + 1) in assigned, f"{lead} taken from attempt {attempt}, not reassigned"
    figures["queued, then assigned from the retry queue"] = len(waited)
    figures["reassigned (second chance)"] = sum(1 for _, attempt in taken if attempt < MAX_ATTEMPTS)
    figures["queued as exhausted"] = len(exhausted)

    # Breaches and escalations: one per untouched (or late-touched) attempt, none when touched in time.
    v = classify(assigned, touches)
    breach_ids, breach_copies, breach_differing = distinct(ev["sla.breached"], "due_at", "rep_id", "attempt")
    assert not breach_differing, f"copies of sla.breached that disagree: {breach_differing[:5]}"
    breached = per_attempt(breach_ids)
    assert all(len(es) == 1 for es in breached.values()), "one breach id per lead and attempt"
    owed = v.untouched | v.late
    lost = owed - set(breached)
    assert not lost, f"{len(lost)} breaches lost: {sorted(lost)[:5]}"
    false = set(breached) - owed - v.ambiguous
    assert not false, f"{len(false)} attempts touched in time got a breach: {sorted(false)[:5]}"
    for key, (b,) in breached.items():
        assert b["rep_id"] == assigned[key]["rep_id"]
        # Alerts carry the deadline as Redis keeps it, in whole milliseconds.
        assert abs(ts(b["due_at"]) - ts(assigned[key]["first_touch_due_at"])) < 0.002
    esc_ids, esc_copies, _ = distinct(ev["sla.escalated"], "action", "attempt")
    escalated = per_attempt(esc_ids)
    assert all(len(es) == 1 and es[0]["action"] == "reassign" for es in escalated.values())
    assert {lead for lead, _ in escalated} <= second, "only second-chance leads escalate"
    untouched_second = {k for k in v.untouched if k[0] in second}
    assert untouched_second <= set(escalated), "every untouched second-chance attempt escalates"
    assert untouched_second <= taken, f"and is taken from its rep: not {sorted(untouched_second - taken)[:5]}"
    assert not (v.in_time & (set(escalated) | taken)), "a touch in time keeps the lead"
    assert taken <= set(escalated) & set(breached), "only escalated, breached attempts are taken"

    # sla.met: one per touched attempt (unless a reassignment won the race with a
    # late touch), within_sla as the touch time says.
    met_ids, met_copies, met_differing = distinct(ev["sla.met"], "touched_at", "rep_id", "within_sla")
    assert not met_differing, f"copies of sla.met that disagree: {met_differing[:5]}"
    met = per_attempt(met_ids)
    assert all(len(es) == 1 for es in met.values()), "one sla.met id per lead and attempt"
    must = v.in_time | ((v.late | v.ambiguous) - taken)
    assert must <= set(met), f"sla.met missing: {sorted(must - set(met))[:5]}"
    assert set(met) <= v.touched, f"sla.met without a touch: {sorted(set(met) - v.touched)[:5]}"
    assert not (set(met) & taken), "a touched attempt is not taken from its rep as well"
    wrong = [k for k in v.in_time if not met[k][0]["within_sla"]]
    wrong += [k for k in v.late if k in met and met[k][0]["within_sla"]]
    assert not wrong, f"sla.met with the wrong within_sla: {wrong[:5]}"

    # No rep over capacity: sampled live, and the final counts match the events.
    over = {rep: n for rep, n in max_open.items() if n > CAPACITY.get(rep, 0)}
    assert not over, f"reps over capacity: {over}"
    expected_open: Counter[str] = Counter()
    for lead, seq in attempts.items():
        last = (lead, seq[-1])
        if last not in met and last not in taken:
            expected_open[assigned[last]["rep_id"]] += 1
    actual = {rep: n for rep, n in open_counts.items() if n}
    assert actual == dict(expected_open), f"open counts in Redis {actual} != from the events {expected_open}"
    figures["max open per rep (capacity)"] = {
        rep: f"{max_open.get(rep, 0)}/{cap}" for rep, cap in CAPACITY.items() if cap < 1000
    }

    # Warnings: at most one per attempt; none for an attempt touched (and known) before the warning.
    warn_ids, warn_copies, _ = distinct(ev["sla.warning"])
    warned = per_attempt(warn_ids)
    assert all(len(es) == 1 for es in warned.values()), "one warning id per lead and attempt"
    early = set()
    for key in v.in_time:
        first = first_touch(key, assigned, touches)
        warn_at = ts(assigned[key]["first_touch_due_at"]) - WARN_BEFORE_SECONDS
        if first is not None and first.acked_at is not None and first.acked_at <= warn_at - MARGIN:
            early.add(key)
    assert not early & set(warned), f"warned after an early touch: {sorted(early & set(warned))[:5]}"
    assert set(warned) <= set(assigned)

    # Malformed leads are dead-lettered, never assigned.
    dead = {key for key, _ in ledger.dead_letters}
    assert dead == {key for key, _ in MALFORMED}, f"dead letters: {sorted(k or b'' for k in dead)}"

    all_copies = copies + moved_copies + queued_copies + breach_copies + esc_copies + met_copies + warn_copies
    figures.update({
        "touched in time": len(v.in_time),
        "touched late": len(v.late),
        "untouched (incl. other reps' touches)": len(v.untouched),
        "touched in time, reached Kafka after the deadline (breach optional)": len(v.ambiguous),
        "of those breached": len(set(breached) & v.ambiguous),
        "sla.breached": len(breached),
        "sla.escalated": len(escalated),
        "sla.met": len(met),
        "sla.warning": len(warned),
        "copies of alerts (breached, escalated, met, warning)":
            f"{breach_copies}, {esc_copies}, {met_copies}, {warn_copies}",
        "dead letters (copies)": f"{len(dead)} ({len(ledger.dead_letters) - len(dead)})",
        "duplicates seen": all_copies,
        "duplicates deduplicated": all_copies,  # every copy carried its original's event id
        "lost": len(missing) + len(lost) + len(must - set(met)),
    })  # fmt: skip
    return figures


WEBHOOK_ALERTS = ("sla.breached", "sla.escalated")


def webhook_alert_ids(ledger: Ledger) -> set[str]:
    """Every distinct alert the run's endpoint subscribes to (all teams use it)."""
    return {e["alert_id"] for kind in WEBHOOK_ALERTS for e in ledger.events[kind]}


def check_webhook_outbox(ledger: Ledger, delivered: set[str], depth: int) -> dict[str, Any]:
    """No alert lost from the webhook outbox: every breach and escalation published on
    sla-events reached the receiver (alone or in a digest), and nothing is left waiting."""
    wanted = webhook_alert_ids(ledger)
    missing = wanted - delivered
    assert not missing, f"{len(missing)} alerts never delivered by webhook, e.g. {sorted(missing)[:3]}"
    assert depth == 0, f"{depth} alerts left in the webhook outbox"
    return {"webhook alerts delivered (of published)": f"{len(wanted & delivered)} of {len(wanted)}"}
