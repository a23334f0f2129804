"""The monitoring files under deploy/ and docs/runbook.md, loaded for tests.

Dashboards are Grafana JSON; their queries use Grafana's variables, which
`as_promql` replaces so Prometheus can run them. Alert rules and their unit
tests are Prometheus YAML.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry

from monitors.metrics import Metrics
from tests.services import unavailable

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
ALERTS_TEST = PROMETHEUS_DIR / "alerts_test.yml"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
ALERTMANAGER_CONFIG = REPO / "deploy" / "alertmanager" / "alertmanager.yml"
GRAFANA_DIR = REPO / "deploy" / "grafana"
DASHBOARDS_DIR = GRAFANA_DIR / "dashboards"
DATASOURCES = GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yaml"
DASHBOARD_PROVIDER = GRAFANA_DIR / "provisioning" / "dashboards" / "leadrouter.yaml"
RUNBOOK = REPO / "docs" / "runbook.md"
DEFAULT_RULEBOOK = REPO / "rules" / "examples" / "default.yaml"

DASHBOARD_FILES = ("speed-to-lead.json", "pipeline-health.json")
# What Grafana substitutes for its built-in interval variables, for running the
# queries on Prometheus; every other `$var` is a multi-value variable (regex).
GRAFANA_INTERVALS = {"__rate_interval": "1m", "__interval": "1m", "__range": "5m"}
_VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")
# A metric name, not part of a recording rule's `level:metric:operation` name.
_METRIC = re.compile(r"(?<![\w:])leadrouter_\w+(?![\w:])")


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def require_tool(name: str, package: str) -> str:
    """The path of a command-line tool, or skip (fail under LEADROUTER_REQUIRE_SERVICES=1)."""
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} not installed (Debian package {package})")
    return path


# --- dashboards ------------------------------------------------------------


def dashboard(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DASHBOARDS_DIR / name).read_text(encoding="utf-8"))
    return loaded


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those inside collapsed rows."""
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


def queries(board: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(panel, target) for every query target of the dashboard."""
    for panel in panels(board):
        for target in panel.get("targets", []):
            yield panel, target


def as_promql(expr: str) -> str:
    """A dashboard query as Prometheus runs it: intervals fixed, variables as `.*`."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return GRAFANA_INTERVALS.get(name, ".*")

    return _VARIABLE.sub(value, expr)


def variables(expr: str) -> list[str]:
    return [m.group(1) or m.group(2) for m in _VARIABLE.finditer(expr)]


# --- alert rules -----------------------------------------------------------


def rules() -> list[dict[str, Any]]:
    """Every rule (recording and alerting) of alerts.yml."""
    return [rule for group in load_yaml(ALERTS)["groups"] for rule in group["rules"]]


def alert_rules() -> list[dict[str, Any]]:
    return [rule for rule in rules() if "alert" in rule]


def alert_names() -> list[str]:
    return [str(rule["alert"]) for rule in alert_rules()]


# --- metrics -------------------------------------------------------------------


def metric_names(expr: str) -> set[str]:
    return set(_METRIC.findall(expr))


# Gauges every process of a role reads from shared Redis state: each one reports the
# same number (routers that never update the monitors' gauges report 0), so they are
# aggregated with `max`; a `sum` would count them once per process.
REDIS_WIDE_GAUGES = frozenset(
    {
        "leadrouter_leads_untouched",
        "leadrouter_oldest_untouched_lead_age_seconds",
        "leadrouter_leads_at_risk",
        "leadrouter_open_leads",
        "leadrouter_leads_waiting",
        "leadrouter_oldest_waiting_lead_age_seconds",
        "leadrouter_sla_watermark_lag_seconds",
    }
)
_MAX_OPENED = re.compile(r"\bmax(?:\s+by\s*\([\w\s,]*\))?\s*\(\s*$")


def redis_wide_reads_without_max(expr: str) -> list[str]:
    """The Redis-wide gauges `expr` reads other than directly inside `max(...)` or
    `max by (...) (...)`."""
    return [
        match.group(0)
        for match in _METRIC.finditer(expr)
        if match.group(0) in REDIS_WIDE_GAUGES and not _MAX_OPENED.search(expr[: match.start()])
    ]


def exposed_series() -> set[str]:
    """Every `leadrouter_*` series name a worker's scrape can contain."""
    registry = CollectorRegistry()
    Metrics(registry)
    out: set[str] = set()
    for family in registry.collect():
        if family.type == "counter":
            out |= {family.name + "_total", family.name + "_created"}
        elif family.type == "histogram":
            out |= {family.name + s for s in ("_bucket", "_sum", "_count", "_created")}
        else:
            out.add(family.name)
    return out


# --- runbook ---------------------------------------------------------------


def slug(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def runbook_sections() -> dict[str, str]:
    """Anchor of each `##` section of the runbook -> its text."""
    sections: dict[str, str] = {}
    current = ""
    for line in RUNBOOK.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            current = slug(line[3:])
            sections[current] = ""
        elif current:
            sections[current] += line + "\n"
    return sections
