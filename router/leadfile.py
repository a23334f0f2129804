"""Leads for `leadrouter simulate` and `explain`: read from files, or synthesised.

`.jsonl`: one JSON object a line, a lead event (`{"lead": {...}, "occurred_at": ...}`)
or a bare lead (`{"id": ..., "country": ...}`). The lead's time is the event's
`occurred_at`, else a `created_at` field, else `start` plus one second per line.

`.csv`: a header row of lead fields (`id`, `country`, `region`, `postal_code`,
`source`, ...), `company.<field>` columns (`company.employees`), `attributes.<name>`
columns and an optional `created_at` column. Empty cells are absent fields.

A line that does not parse is skipped and reported as `line N: reason`; reasons
name fields, never their values (leads carry contact details).
"""

from __future__ import annotations

import csv
import io
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from pydantic import AwareDatetime, TypeAdapter, ValidationError

from rules.events import Company, Lead

# Leads without a time start here, a Monday: 1 s apart (files) or hours apart (generated).
DEFAULT_START = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
MAX_REPORTED = 20

_INSTANT: TypeAdapter[datetime] = TypeAdapter(AwareDatetime)
_LEAD_FIELDS = frozenset(Lead.model_fields) - {"company", "attributes"}
_COMPANY_FIELDS = frozenset(Company.model_fields)
_TIME_COLUMNS = frozenset({"created_at", "occurred_at"})
_INT = re.compile(r"^-?(0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"^-?(0|[1-9][0-9]*)\.[0-9]+$")


class LeadFileError(Exception):
    """The file as a whole cannot be used (unreadable, unknown kind)."""


@dataclass(slots=True)
class LeadFile:
    leads: list[tuple[Lead, datetime]] = field(default_factory=list)
    # `line N: reason` for each skipped line, and notes about the header.
    problems: list[str] = field(default_factory=list)
    skipped: int = 0

    def bad(self, line: int, reason: str) -> None:
        self.skipped += 1
        self.problems.append(f"line {line}: {reason}")


def _errors(exc: ValidationError, prefix: str = "") -> str:
    parts = []
    for err in exc.errors(include_input=False, include_url=False)[:3]:
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{prefix}{loc}: {err['msg']}" if loc or prefix else err["msg"])
    return "; ".join(parts)


def _instant(value: Any, name: str) -> datetime:
    try:
        return _INSTANT.validate_python(value)
    except ValidationError as exc:
        raise ValueError(f"{name}: {_errors(exc)}") from None


def _jsonl_line(data: Any) -> tuple[Lead, datetime | None]:
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object (a lead event or a lead)")
    if isinstance(data.get("lead"), dict):
        body, prefix = data["lead"], "lead."
        stamp = data.get("occurred_at") or body.get("created_at")
    else:
        body, prefix = data, ""
        stamp = data.get("created_at")
    try:
        lead = Lead.model_validate(body)
    except ValidationError as exc:
        raise ValueError(_errors(exc, prefix)) from None
    name = "occurred_at" if prefix and data.get("occurred_at") else "created_at"
    return lead, _instant(stamp, name) if stamp else None


def parse_jsonl(text: str, start: datetime = DEFAULT_START) -> LeadFile:
    out = LeadFile()
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            out.bad(number, f"invalid JSON: {exc.msg}")
            continue
        try:
            lead, at = _jsonl_line(data)
        except ValueError as exc:
            out.bad(number, str(exc))
            continue
        out.leads.append((lead, at or start + timedelta(seconds=number - 1)))
    return out


def _cell(value: str) -> str | int | float | bool:
    """An attribute cell as the JSON value a producer would have sent."""
    if _INT.match(value):
        return int(value)
    if _FLOAT.match(value):
        return float(value)
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def _check_header(columns: Sequence[str], out: LeadFile) -> None:
    for name in columns:
        known = (
            name in _LEAD_FIELDS
            or name in _TIME_COLUMNS
            or (name.startswith("company.") and name[len("company.") :] in _COMPANY_FIELDS)
            or (name.startswith("attributes.") and len(name) > len("attributes."))
        )
        if not known:
            out.problems.append(f"line 1: unknown column {name!r} ignored")
    if "id" not in columns:
        out.problems.append("line 1: no `id` column: every lead needs an id")


def _csv_row(row: dict[str, str], fallback: datetime) -> tuple[Lead, datetime]:
    data: dict[str, Any] = {}
    stamp: str | None = None
    for name, raw in row.items():
        value = (raw or "").strip()
        if not value or name is None:
            continue
        if name in _TIME_COLUMNS:
            stamp = value
        elif name.startswith("company."):
            data.setdefault("company", {})[name[len("company.") :]] = value
        elif name.startswith("attributes."):
            data.setdefault("attributes", {})[name[len("attributes.") :]] = _cell(value)
        elif name in _LEAD_FIELDS:
            data[name] = value
    try:
        lead = Lead.model_validate(data)
    except ValidationError as exc:
        raise ValueError(_errors(exc)) from None
    return lead, _instant(stamp, "created_at") if stamp else fallback


def parse_csv(text: str, start: datetime = DEFAULT_START) -> LeadFile:
    out = LeadFile()
    reader = csv.DictReader(io.StringIO(text))
    _check_header(reader.fieldnames or (), out)
    row_index = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            out.bad(reader.line_num, f"invalid CSV: {exc}")
            continue
        number = reader.line_num
        if None in row:
            out.bad(number, "more cells than header columns")
            continue
        try:
            out.leads.append(_csv_row(row, start + timedelta(seconds=row_index)))
        except ValueError as exc:
            out.bad(number, str(exc))
        row_index += 1
    return out


def read_leads(path: Path, start: datetime = DEFAULT_START) -> LeadFile:
    """Leads from a `.jsonl` (or `.ndjson`) or `.csv` file."""
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".ndjson", ".csv"):
        raise LeadFileError(f"{path}: expected a .jsonl or .csv file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
        raise LeadFileError(f"{path}: cannot read: {reason}") from None
    return parse_csv(text, start) if suffix == ".csv" else parse_jsonl(text, start)


def read_lead(path: Path) -> Lead:
    """One lead from a JSON file: a lead event or a bare lead."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
        raise LeadFileError(f"{path}: cannot read: {reason}") from None
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise LeadFileError(f"{path}: invalid JSON: {exc.msg}") from None
    try:
        return _jsonl_line(data)[0]
    except ValueError as exc:
        raise LeadFileError(f"{path}: {exc}") from None


# --- synthetic leads ------------------------------------------------------------

# (country, weight, region/postal choices, language) - a global B2B inbound mix.
_GEOGRAPHY: tuple[tuple[str, int, tuple[tuple[str, str], ...], str | None], ...] = (
    ("US", 30, (("CA", "94107"), ("WA", "98101"), ("NY", "10001"), ("TX", "73301"), ("IL", "60601"),
                ("MA", "02139"), ("OR", "97205"), ("FL", "33101"), ("AZ", "85004"), ("GA", "30301")), None),
    ("CA", 5, (("ON", "M5V 2T6"), ("QC", "H2Y 1C6"), ("BC", "V6B 1A1")), None),
    ("MX", 2, (), "es"),
    ("GB", 8, (), None),
    ("IE", 1, (), None),
    ("DE", 6, (), "de"),
    ("AT", 1, (), "de"),
    ("CH", 1, (), "de"),
    ("FR", 4, (), "fr"),
    ("NL", 3, (), "nl"),
    ("BE", 1, (), "fr"),
    ("ES", 2, (), "es"),
    ("IT", 2, (), "it"),
    ("SE", 1, (), None),
    ("PL", 1, (), None),
    ("AE", 1, (), None),
    ("AU", 4, (), None),
    ("NZ", 1, (), None),
    ("JP", 3, (), "ja"),
    ("SG", 2, (), None),
    ("IN", 4, (), None),
    ("KR", 1, (), None),
    ("BR", 3, (), "pt"),
    ("AR", 1, (), "es"),
    ("ZA", 1, (), None),
    ("NG", 1, (), None),
)  # fmt: skip
_SOURCES = ("web-form", "web-form", "webinar", "ads", "content", "referral", "free-trial", "event")
_PRODUCTS = ("crm", "analytics", "support")
_INDUSTRIES = ("software", "finance", "manufacturing", "healthcare", "retail", "logistics", "education")
_FREE_MAIL = ("gmail.com", "outlook.com", "yahoo.com")
# Lognormal company sizes: median ~ 120 employees, a long enterprise tail.
_SIZE_MU, _SIZE_SIGMA = 4.8, 1.9


def generate_leads(
    n: int, seed: int, start: datetime = DEFAULT_START, account_domains: Sequence[str] = ()
) -> list[tuple[Lead, datetime]]:
    """`n` realistic leads, the same for the same seed: countries, regions, sizes,
    sources and languages in B2B proportions; about 4% at `account_domains` (named
    accounts) and 10% from free-mail addresses. From `start` on, about 60 an hour
    on weekdays and 12 an hour at weekends (10,000 leads span about a week)."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data needs no cryptographic randomness
    weights = [g[1] for g in _GEOGRAPHY]
    out: list[tuple[Lead, datetime]] = []
    at = start
    for i in range(n):
        country, _, places, language = rng.choices(_GEOGRAPHY, weights)[0]
        weekend = at.weekday() >= 5
        at += timedelta(seconds=rng.expovariate(1 / (300.0 if weekend else 60.0)))
        lead_id = f"gen-{seed}-{i:06d}"
        employees = max(1, int(rng.lognormvariate(_SIZE_MU, _SIZE_SIGMA)))
        roll = rng.random()
        if account_domains and roll < 0.04:
            domain = rng.choice(list(account_domains))
        else:
            domain = f"company{rng.randrange(100_000)}.example"
        mail = rng.choice(_FREE_MAIL) if rng.random() < 0.10 else domain
        data: dict[str, Any] = {
            "id": lead_id,
            "email": f"buyer{i}@{mail}",
            "company": {
                "domain": domain,
                "employees": employees,
                "industry": rng.choice(_INDUSTRIES),
            },
            "country": country,
            "source": rng.choice(_SOURCES),
            "product": rng.choice(_PRODUCTS),
        }
        if rng.random() < 0.3:
            data["company"]["annual_revenue"] = float(employees * rng.randrange(80_000, 400_000))
        if places and rng.random() < 0.8:
            region, postal = rng.choice(places)
            data["region"], data["postal_code"] = region, postal
        if language and rng.random() < 0.6:
            data["attributes"] = {"language": language}
        out.append((Lead.model_validate(data), at))
    return out
