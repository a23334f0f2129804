"""A realistic, deterministic rulebook and lead stream of a chosen size, for benchmarks.

The shape follows a mid-size sales org: territories by region and country (with
subdivisions and ZIP ranges for the US), segments by company size and source,
named accounts owned by reps, teams of 5 to 15 reps using all strategies, reps
with timezones, working hours, skills and capacities, and routes that combine
named accounts, territory x segment, language skills and a catch-all queue.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from rules.events import Lead

REGIONS = {
    "na": (["US", "CA", "MX"], "America/New_York"),
    "emea": (["GB", "IE", "DE", "FR", "ES", "IT", "NL", "SE", "PL", "CH"], "Europe/Berlin"),
    "apac": (["AU", "NZ", "JP", "SG", "IN"], "Asia/Singapore"),
    "latam": (["BR", "AR", "CL", "CO"], "America/Sao_Paulo"),
}
SEGMENTS = ("smb", "mid", "ent")
STRATEGIES = ("round_robin", "weighted", "least_loaded")
LANGUAGES = ("en", "de", "fr", "es", "ja")
HOURS = {day: ["08:00-12:00", "13:00-18:00"] for day in ("mon", "tue", "wed", "thu", "fri")}


def rulebook(reps: int = 200, routes: int = 50, accounts: int = 2000, seed: int = 1) -> dict[str, Any]:
    """A rulebook (as the YAML mapping) with `reps`, about `routes` routes and `accounts` named accounts."""
    rng = random.Random(seed)
    territories: list[dict[str, Any]] = []
    for region, (countries, _) in REGIONS.items():
        territories.append({"id": region, "countries": countries})
    territories.append({"id": "us-west", "subdivisions": ["US-CA", "US-OR", "US-WA", "US-NV"],
                        "postal_codes": [{"country": "US", "from": "900", "to": "994"}]})  # fmt: skip
    segments = [
        {"id": "smb", "when": {"field": "company.employees", "lt": 200}},
        {
            "id": "mid",
            "when": {
                "all": [
                    {"field": "company.employees", "gte": 200},
                    {"field": "company.employees", "lt": 2000},
                ]
            },
        },
        {"id": "ent", "when": {"field": "company.employees", "gte": 2000}},
        {"id": "inbound", "when": {"field": "source", "in": ["web-form", "webinar", "content"]}},
    ]
    # Pools: one team per (region, segment) plus language teams, filled round-robin with reps.
    pools = [f"{r}-{s}" for r in REGIONS for s in SEGMENTS] + [f"lang-{lang}" for lang in LANGUAGES]
    team_list = [{"id": p, "strategy": STRATEGIES[i % 3]} for i, p in enumerate(pools)]
    rep_list = []
    for i in range(reps):
        pool = pools[i % len(pools)]
        region = pool.split("-")[0] if not pool.startswith("lang") else rng.choice(list(REGIONS))
        rep: dict[str, Any] = {
            "id": f"rep-{i:04d}", "teams": [pool], "capacity": rng.choice([10, 20, 30, 50]),
            "weight": rng.choice([1, 1, 2, 3]), "skills": rng.sample(LANGUAGES, 2),
            "timezone": REGIONS.get(region, REGIONS["na"])[1],
        }  # fmt: skip
        if i % 3 == 0:
            rep["hours"] = HOURS
        if i % 7 == 0:
            rep["daily_cap"] = 40
        rep_list.append(rep)
    named = [
        {"id": f"acct-{i:05d}", "domains": [f"account{i}.example"],
         "owner": {"rep": f"rep-{rng.randrange(reps):04d}"} if i % 5 else {"team": rng.choice(pools)}}
        for i in range(accounts)
    ]  # fmt: skip
    route_list: list[dict[str, Any]] = [
        {"id": "named", "when": {"named_account": True}, "assign": {"owner": True}}
    ]
    for lang in LANGUAGES:
        when = {"field": "attributes.language", "equals": lang, "segment": "ent"}
        assign = {"team": f"lang-{lang}", "skills_from": "attributes.language"}
        route_list.append({"id": f"lang-{lang}", "when": when, "assign": assign})
    for region in REGIONS:
        for segment in SEGMENTS:
            for source in ("web-form", "webinar", "ads", "content"):
                when = {"territory": region, "segment": segment, "field": "source", "equals": source}
                route_list.append({
                    "id": f"{region}-{segment}-{source}", "when": when,
                    "assign": {"team": f"{region}-{segment}"},
                    "fallback": {"team": f"{region}-{rng.choice(SEGMENTS)}"},
                })  # fmt: skip
    route_list = route_list[: routes - 1]
    route_list.append({"id": "catch-all", "assign": {"queue": "triage"}})
    return {"version": f"synthetic-{reps}-{routes}-{accounts}", "timezone": "UTC", "reps": rep_list,
            "teams": team_list, "territories": territories, "segments": segments,
            "named_accounts": named, "routes": route_list}  # fmt: skip


def leads(count: int, accounts: int = 2000, seed: int = 2) -> list[tuple[Lead, datetime]]:
    """`count` leads with their arrival times, spread over a working week."""
    rng = random.Random(seed)
    countries = [c for cs, _ in REGIONS.values() for c in cs] + ["US"] * 10 + ["ZA", "EG"]
    start = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
    out = []
    for i in range(count):
        country = rng.choice(countries)
        named = rng.random() < 0.1
        domain = f"account{rng.randrange(accounts)}.example" if named else f"company{i}.example"
        lead = Lead.model_validate({
            "id": f"lead-{i:07d}", "email": f"buyer{i}@{domain}", "country": country,
            "region": "CA" if country == "US" and rng.random() < 0.2 else None,
            "postal_code": f"{rng.randrange(10000, 99999)}" if country == "US" else None,
            "source": rng.choice(["web-form", "webinar", "ads", "content", "referral"]),
            "company": {"domain": domain, "employees": rng.choice([5, 40, 150, 600, 1500, 5000, 40000])},
            "attributes": {"language": rng.choice(LANGUAGES)},
        })  # fmt: skip
        out.append((lead, start + timedelta(seconds=i * 30)))
    return out
