"""Every Redis key leadrouter uses, in one place.

    {p}:lead:{lead}     hash  assignment record: status, rep, team, route, attempt,
                              assigned_ms, due_ms, event (published bytes), published,
                              touched_ms, met_published, breached
    {p}:rr:{team}       str   round-robin cursor of a team
    {p}:open            hash  rep -> leads assigned and awaiting first touch
    {p}:sla:due         zset  lead -> first-touch deadline (epoch ms)
    {p}:sla:inflight    zset  lead -> claim lease expiry (epoch ms)
    {p}:pending:{lead}  hash  rep -> earliest touch seen before the assignment (ms)
    {p}:wm:{topic}      hash  partition -> watermark (epoch ms) of the monitors' progress

Scripts touch several of these at once, so leadrouter needs a single Redis (or a
primary with replicas), not Redis Cluster, for now.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RedisKeys:
    prefix: str

    def lead(self, lead_id: str) -> str:
        return f"{self.prefix}:lead:{lead_id}"

    def lead_prefix(self) -> str:
        return f"{self.prefix}:lead:"

    def cursor(self, team: str) -> str:
        return f"{self.prefix}:rr:{team}"

    @property
    def open(self) -> str:
        return f"{self.prefix}:open"

    @property
    def due(self) -> str:
        return f"{self.prefix}:sla:due"

    @property
    def inflight(self) -> str:
        return f"{self.prefix}:sla:inflight"

    def pending(self, lead_id: str) -> str:
        return f"{self.prefix}:pending:{lead_id}"

    def watermark(self, topic: str) -> str:
        return f"{self.prefix}:wm:{topic}"
