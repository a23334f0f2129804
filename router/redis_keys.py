"""Every Redis key leadrouter uses, in one place.

    {p}:lead:{lead}     hash  assignment record: status, rep, team, route, attempt,
                              assigned_ms, due_ms, event (published bytes), published,
                              touched_ms, met_published, breached
    {p}:pool:{team}     hash  a team's rotation state: version (compare-and-set),
                              cursor (round robin), w:{rep} (smooth weighted current weights)
    {p}:open            hash  rep -> leads assigned and awaiting first touch
    {p}:last            hash  rep -> epoch ms of the rep's last assignment (least loaded)
    {p}:daily:{day}     hash  rep -> assignments on that local day (daily caps); expires
    {p}:status          hash  rep -> live status from the reps topic
    {p}:status_at       hash  rep -> occurred_at (ms) of the status applied (newest wins)
    {p}:retry           zset  lead -> queued_ms: leads queued because nobody could take them
    {p}:reassign        zset  lead -> requested_ms: leads an escalation asks to route again
    {p}:untouched       zset  lead -> first assigned_ms, while assigned and untouched
    {p}:freed           str   counter bumped whenever a first touch frees a rep's capacity
    {p}:outbox          list  [topic, key, value] records to publish (from the retry path)
    {p}:outbox:lock     str   the publisher holding the outbox (a lease)
    {{p}:sla:b}:due     zset  `kind:attempt:lead` -> when the timer falls due (epoch ms);
                              kind is warn, breach or esc<N> (an escalation step).
                              b is the bucket: the lead's partition on the activities
                              topic, so each bucket waits only for its own partition
    {{p}:sla:b}:inflight zset the same members -> claim lease expiry (epoch ms)
    {p}:pending:{lead}  hash  rep -> earliest touch seen before the assignment (ms)
    {p}:wh:queues       set   teams with a webhook outbox (monitors/webhook_outbox.py;
                              each team's outbox keys share the tag {p:wh:team})
    {p}:monitors        hash  monitor -> "ms|topic:partition,...": heartbeat and what it reads
    {p}:missed          hash  rep -> missed SLAs in a row (auto-away)
    {p}:missed:seen:{alert} str the count that alert produced (counted once)

Scripts touch several of these at once, so leadrouter needs a single Redis (or a
primary with replicas), not Redis Cluster, for now.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka.partitioner import murmur2


def bucket_of(lead_id: str, buckets: int) -> int:
    """The partition Kafka's default partitioner gives a record keyed by `lead_id`
    (murmur2, as in the Java client): the lead's activities live there."""
    return int(murmur2(lead_id.encode("utf-8")) & 0x7FFFFFFF) % buckets


@dataclass(frozen=True, slots=True)
class RedisKeys:
    prefix: str

    def lead(self, lead_id: str) -> str:
        return f"{self.prefix}:lead:{lead_id}"

    def lead_prefix(self) -> str:
        return f"{self.prefix}:lead:"

    def pool(self, team: str) -> str:
        return f"{self.prefix}:pool:{team}"

    @property
    def last_assigned(self) -> str:
        return f"{self.prefix}:last"

    def daily(self, day: str) -> str:
        return f"{self.prefix}:daily:{day}"

    @property
    def status(self) -> str:
        return f"{self.prefix}:status"

    @property
    def status_at(self) -> str:
        return f"{self.prefix}:status_at"

    @property
    def open(self) -> str:
        return f"{self.prefix}:open"

    def due(self, bucket: int) -> str:
        # The hash tag keeps a bucket's two sets in one Redis Cluster slot.
        return f"{{{self.prefix}:sla:{bucket}}}:due"

    def inflight(self, bucket: int) -> str:
        return f"{{{self.prefix}:sla:{bucket}}}:inflight"

    @property
    def retry(self) -> str:
        return f"{self.prefix}:retry"

    @property
    def reassign(self) -> str:
        return f"{self.prefix}:reassign"

    @property
    def untouched(self) -> str:
        return f"{self.prefix}:untouched"

    @property
    def freed(self) -> str:
        return f"{self.prefix}:freed"

    @property
    def outbox(self) -> str:
        return f"{self.prefix}:outbox"

    @property
    def outbox_lock(self) -> str:
        return f"{self.prefix}:outbox:lock"

    @property
    def monitors(self) -> str:
        return f"{self.prefix}:monitors"

    def pending(self, lead_id: str) -> str:
        return f"{self.prefix}:pending:{lead_id}"
