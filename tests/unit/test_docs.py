"""The docs match the code: metrics, event examples, dead-letter reasons and topics."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from pydantic import BaseModel

import rules.events
from monitors.metrics import Metrics
from router.errors import DLQ_REASONS
from router.settings import TopicSettings
from rules.events import SCHEMAS, OutboundModel, derived_event_id

DOCS = Path(__file__).resolve().parents[2] / "docs"
EVENTS_MD = DOCS / "events.md"
METRICS_MD = DOCS / "metrics.md"

_BACKTICKED_METRIC = re.compile(r"`(leadrouter_\w+)`")
_ANY_METRIC = re.compile(r"\bleadrouter_\w+")
_MODEL_COMMENT = re.compile(r"<!--\s*model:\s*(\w+)\s*-->")
_HEADING = re.compile(r"^#+\s")


# --- metrics ---------------------------------------------------------------


def _families() -> dict[str, str]:
    """Exposed metric name -> type, for everything `Metrics` registers."""
    registry = CollectorRegistry()
    Metrics(registry)
    out = {}
    for family in registry.collect():
        # prometheus_client strips `_total` from a counter's family name; the
        # exposition (and this doc) uses the name with it.
        name = family.name + "_total" if family.type == "counter" else family.name
        out[name] = family.type
    return out


def _series(families: dict[str, str]) -> set[str]:
    """Every series name a scrape can contain, for queries to refer to."""
    out = set()
    for name, kind in families.items():
        if kind == "counter":
            out |= {name, name.removesuffix("_total") + "_created"}
        elif kind == "histogram":
            out |= {name + suffix for suffix in ("_bucket", "_sum", "_count", "_created")}
        else:
            out.add(name)
    return out


def _table_metrics(text: str) -> set[str]:
    rows = (line for line in text.splitlines() if line.startswith("|"))
    return {name for row in rows for name in _BACKTICKED_METRIC.findall(row)}


def test_every_registered_metric_is_in_the_metrics_table() -> None:
    """A metric added to monitors/metrics.py without a row in docs/metrics.md fails."""
    documented = _table_metrics(METRICS_MD.read_text(encoding="utf-8"))
    missing = sorted(set(_families()) - documented)
    assert not missing, f"metrics without a row in {METRICS_MD.name}: {missing}"


def test_every_metric_in_the_table_is_registered() -> None:
    """A row for a metric that monitors/metrics.py no longer registers fails."""
    documented = _table_metrics(METRICS_MD.read_text(encoding="utf-8"))
    unknown = sorted(documented - set(_families()))
    assert not unknown, f"rows in {METRICS_MD.name} for unregistered metrics: {unknown}"


@pytest.mark.parametrize("doc", [METRICS_MD, EVENTS_MD], ids=lambda p: p.name)
def test_metric_names_in_prose_and_queries_exist(doc: Path) -> None:
    """Queries and prose name only series a scrape exposes (e.g. `_bucket` of a histogram)."""
    families = _families()
    known = _series(families) | set(families)
    used = set(_ANY_METRIC.findall(doc.read_text(encoding="utf-8")))
    assert not sorted(used - known), f"{doc.name} names unknown series: {sorted(used - known)}"


# --- event examples --------------------------------------------------------


@dataclass(frozen=True)
class Example:
    model: str
    line: int
    text: str


def _examples(text: str) -> list[Example]:
    """Each ```json block with the model named by the nearest preceding
    `<!-- model: X -->` comment or heading (a backticked class name in it)."""
    examples: list[Example] = []
    model = ""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if found := _MODEL_COMMENT.search(line):
            model = found.group(1)
        elif _HEADING.match(line):
            names = re.findall(r"`(\w+)`", line)
            model = next((n for n in names if _model(n) is not None), "")
        elif line.strip() == "```json":
            start = i + 1
            i = start
            while i < len(lines) and lines[i].strip() != "```":
                i += 1
            examples.append(Example(model, start, "\n".join(lines[start:i])))
        i += 1
    return examples


def _model(name: str) -> type[BaseModel] | None:
    found = getattr(rules.events, name, None)
    return found if isinstance(found, type) and issubclass(found, BaseModel) else None


EXAMPLES = _examples(EVENTS_MD.read_text(encoding="utf-8"))


def _unknown_keys(model: BaseModel, data: dict[str, Any], path: str = "") -> list[str]:
    """Keys the model does not declare: inbound models would ignore a typo silently."""
    out = []
    for key, value in data.items():
        if key not in type(model).model_fields:
            out.append(path + key)
            continue
        nested = getattr(model, key)
        if isinstance(nested, BaseModel) and isinstance(value, dict):
            out += _unknown_keys(nested, value, f"{path}{key}.")
    return out


def _naive_datetimes(model: BaseModel, path: str = "") -> list[str]:
    out = []
    for key in type(model).model_fields:
        value = getattr(model, key)
        if isinstance(value, datetime) and value.tzinfo is None:
            out.append(path + key)
        elif isinstance(value, BaseModel):
            out += _naive_datetimes(value, f"{path}{key}.")
    return out


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: f"{e.model or 'unnamed'}@line{e.line}")
def test_event_example_validates_against_its_model(example: Example) -> None:
    """Every JSON example in docs/events.md parses, names a contract model, validates
    against it with no undeclared fields and aware timestamps, and an outbound
    example carries the event id leadrouter would derive for it."""
    model = _model(example.model)
    assert model is not None, f"line {example.line}: no `<!-- model: X -->` naming a rules.events class"
    data = json.loads(example.text)
    event = model.model_validate_json(example.text)
    assert _unknown_keys(event, data) == []
    assert _naive_datetimes(event) == []
    if isinstance(event, OutboundModel):
        fields = event.model_dump()
        # Escalation steps are one kind each: `sla.escalated.<level>`.
        kind = f"{fields['type']}.{fields['level']}" if fields["type"] == "sla.escalated" else fields["type"]
        expected = derived_event_id(fields["lead_id"], fields["attempt"], kind)
        assert fields["event_id"] == expected


def test_every_contract_event_has_an_example() -> None:
    """Each model with a JSON Schema has at least one example in docs/events.md."""
    shown = {e.model for e in EXAMPLES}
    missing = sorted(m.__name__ for m in SCHEMAS.values() if m.__name__ not in shown)
    assert not missing, f"no example for {missing}"


def test_every_schema_file_is_linked() -> None:
    """docs/events.md links every generated schema file by name."""
    text = EVENTS_MD.read_text(encoding="utf-8")
    missing = sorted(n for n in SCHEMAS if f"(schemas/{n}.json)" not in text)
    assert not missing, f"schemas not linked: {missing}"


# --- dead letters and topics -----------------------------------------------


def _reason_table(text: str) -> set[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"\|\s*Reason\s*\|", line))
    reasons = set()
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        reasons |= set(re.findall(r"`(\w+)`", line.split("|")[1]))
    return reasons


def test_every_dlq_reason_is_documented() -> None:
    """Every reason a dead letter can carry is explained in docs/events.md."""
    text = EVENTS_MD.read_text(encoding="utf-8")
    missing = sorted(r for r in DLQ_REASONS if f"`{r}`" not in text)
    assert not missing, f"DLQ reasons not in {EVENTS_MD.name}: {missing}"


def test_the_reason_table_lists_exactly_the_code_reasons() -> None:
    """The dead-letter reason table is the closed set in router.errors, no more, no less."""
    assert _reason_table(EVENTS_MD.read_text(encoding="utf-8")) == set(DLQ_REASONS)


def test_every_topic_is_documented() -> None:
    """Every topic the workers create (default names) is in docs/events.md."""
    text = EVENTS_MD.read_text(encoding="utf-8")
    missing = sorted(t for t in TopicSettings().all_topics() if f"`{t}`" not in text)
    assert not missing, f"topics not in {EVENTS_MD.name}: {missing}"
