"""The Grafana dashboards and provisioning files are well-formed and consistent.

Grafana itself is not installed here: these tests check the JSON's structure, and
tests/ops/test_prometheus_e2e.py runs every query on a real Prometheus.
"""

from __future__ import annotations

import re
from itertools import combinations
from typing import Any

import pytest

from tests.ops.deploy import (
    DASHBOARD_FILES,
    DASHBOARD_PROVIDER,
    DASHBOARDS_DIR,
    DATASOURCES,
    GRAFANA_DIR,
    REPO,
    dashboard,
    exposed_series,
    load_yaml,
    metric_names,
    panels,
    queries,
    redis_wide_reads_without_max,
    variables,
)

DATASOURCE_REF = {"type": "prometheus", "uid": "${datasource}"}
NO_UNIT = {"row", "text"}
# Grafana unit ids these dashboards may use (packages/grafana-data/src/valueFormats/categories.ts).
UNITS = {"s", "ms", "percentunit", "short", "none", "cps", "cpm", "ops", "reqps", "dtdurations"}
# Metrics each dashboard must chart (issue 5); a panel dropped by mistake fails here.
REQUIRED = {
    "speed-to-lead.json": {
        "leadrouter_sla_met_total",
        "leadrouter_sla_breached_total",
        "leadrouter_first_touch_seconds_bucket",
        "leadrouter_open_leads",
        "leadrouter_routing_seconds_bucket",
        "leadrouter_leads_routed_total",
        "leadrouter_leads_queued_total",
        "leadrouter_sla_breach_detection_lateness_seconds_bucket",
        "leadrouter_leads_waiting",
        "leadrouter_oldest_waiting_lead_age_seconds",
        # Speed to lead, leads awaiting a touch and at risk, escalations, per rep.
        "leadrouter_leads_untouched",
        "leadrouter_oldest_untouched_lead_age_seconds",
        "leadrouter_leads_at_risk",
        "leadrouter_speed_to_lead_seconds_bucket",
        "leadrouter_sla_warned_total",
        "leadrouter_sla_escalations_total",
        "leadrouter_leads_reassigned_total",
        "leadrouter_sla_late_arrivals_total",
        "leadrouter_rep_first_touch_seconds_bucket",
        "leadrouter_rep_sla_total",
        "leadrouter_sla_target_seconds",
    },
    "pipeline-health.json": {
        "leadrouter_events_consumed_total",
        "leadrouter_dead_letters_total",
        "leadrouter_consumer_lag_records",
        "leadrouter_last_event_timestamp_seconds",
        "leadrouter_transient_errors_total",
        "leadrouter_redis_command_seconds_bucket",
        "leadrouter_redis_errors_total",
        "leadrouter_batch_seconds_bucket",
        "leadrouter_sla_watermark_lag_seconds",
        "leadrouter_worker_info",
        "leadrouter_outbox_depth",
    },
}

boards = pytest.mark.parametrize("name", DASHBOARD_FILES)


def _uses_datasource_variable(ref: Any) -> bool:
    return bool(ref == "${datasource}" or ref == DATASOURCE_REF)


@boards
def test_dashboard_basics(name: str) -> None:
    """A current schema, a stable uid and title, the leadrouter tag, and no instance id."""
    board = dashboard(name)
    assert 36 <= board["schemaVersion"] <= 41
    assert board["uid"].startswith("leadrouter-")
    assert board["title"].startswith("leadrouter / ")
    assert "leadrouter" in board["tags"]
    assert board.get("id") is None, "provisioned dashboards carry no database id"


def test_dashboard_uids_are_unique() -> None:
    """Two dashboards with one uid would overwrite each other in Grafana."""
    uids = [dashboard(name)["uid"] for name in DASHBOARD_FILES]
    assert len(set(uids)) == len(uids)


@boards
def test_panel_ids_are_unique(name: str) -> None:
    """Grafana addresses panels (links, edits) by id."""
    ids = [panel["id"] for panel in panels(dashboard(name))]
    assert len(set(ids)) == len(ids), f"duplicate panel ids in {name}"


@boards
def test_panels_fit_24_columns_without_overlapping(name: str) -> None:
    """Every panel lies within the 24-column grid and no two panels cover the same cell."""
    boxes = []
    for panel in dashboard(name)["panels"]:
        pos = panel["gridPos"]
        assert min(pos["x"], pos["y"]) >= 0, panel["title"]
        assert min(pos["w"], pos["h"]) >= 1, panel["title"]
        assert pos["x"] + pos["w"] <= 24, f"{panel['title']!r} extends past column 24"
        boxes.append((panel["title"], pos))
    for (a, p), (b, q) in combinations(boxes, 2):
        apart = (
            p["x"] + p["w"] <= q["x"]
            or q["x"] + q["w"] <= p["x"]
            or p["y"] + p["h"] <= q["y"]
            or q["y"] + q["h"] <= p["y"]
        )
        assert apart, f"panels {a!r} and {b!r} overlap"


@boards
def test_every_panel_and_query_uses_the_datasource_variable(name: str) -> None:
    """No hard-coded data source uid: the dashboard works on any Prometheus data source."""
    for panel in panels(dashboard(name)):
        if panel["type"] == "row":
            continue  # rows hold no query
        assert _uses_datasource_variable(panel.get("datasource")), panel["title"]
        for target in panel["targets"]:
            assert _uses_datasource_variable(target.get("datasource", DATASOURCE_REF)), panel["title"]


@boards
def test_every_panel_has_a_unit(name: str) -> None:
    """Values are read with their unit (seconds, ratio, per minute...), not as bare numbers."""
    for panel in panels(dashboard(name)):
        if panel["type"] in NO_UNIT:
            continue
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
        assert unit in UNITS, f"{panel['title']!r} has unit {unit!r}"


@boards
def test_every_query_has_an_expression(name: str) -> None:
    """Every target has PromQL and a refId; data panels have at least one target."""
    for panel in panels(dashboard(name)):
        if panel["type"] in NO_UNIT:
            continue
        assert panel.get("targets"), f"{panel['title']!r} has no query"
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(set(ref_ids)) == len(ref_ids)
        for target in panel["targets"]:
            assert target.get("expr", "").strip(), f"{panel['title']!r} has an empty query"


@boards
def test_queries_use_only_exposed_metrics(name: str) -> None:
    """Every leadrouter_* series in a query is one a worker exposes (typos chart nothing)."""
    known = exposed_series()
    for panel, target in queries(dashboard(name)):
        unknown = metric_names(target["expr"]) - known
        assert not unknown, f"{panel['title']!r} queries unknown series {unknown}"


@boards
def test_dashboard_charts_the_required_metrics(name: str) -> None:
    """The panels issue 5 asks for are there (checked by the metrics they query)."""
    used = {m for _, target in queries(dashboard(name)) for m in metric_names(target["expr"])}
    missing = REQUIRED[name] - used
    assert not missing, f"{name} charts none of {sorted(missing)}"


@boards
def test_redis_wide_gauges_are_read_with_max(name: str) -> None:
    """Every monitor (or router) reports the same Redis-wide number: a sum would count it
    once per process."""
    for panel, target in queries(dashboard(name)):
        summed = redis_wide_reads_without_max(target["expr"])
        assert not summed, f"{panel['title']!r} reads {summed} without max()"


def _panel(name: str, title: str) -> dict[str, Any]:
    found = [panel for panel in panels(dashboard(name)) if panel["title"] == title]
    assert len(found) == 1, f"{len(found)} panels titled {title!r} in {name}"
    return found[0]


def test_first_touch_time_panel_draws_the_sla_target() -> None:
    """The SLA target is a dashed line on the first-touch times, not a stacked or filled series."""
    panel = _panel("speed-to-lead.json", "Time to first touch by team, median and p90")
    (target,) = [t for t in panel["targets"] if "leadrouter_sla_target_seconds" in t["expr"]]
    assert target["expr"] == "max(leadrouter_sla_target_seconds)"
    (override,) = [
        o
        for o in panel["fieldConfig"]["overrides"]
        if o["matcher"] == {"id": "byName", "options": target["legendFormat"]}
    ]
    style = {prop["id"]: prop["value"] for prop in override["properties"]}
    assert style["custom.lineStyle"]["fill"] == "dash"
    assert style["custom.fillOpacity"] == 0


def test_speed_to_lead_quantiles_by_team() -> None:
    """p50 and p90 of speed to lead per team, from the histogram's buckets."""
    panel = _panel("speed-to-lead.json", "Speed to lead by team, median and p90")
    exprs = [t["expr"] for t in panel["targets"]]
    for q in ("0.5", "0.9"):
        wanted = f"histogram_quantile({q}, sum by (team, le) (rate(leadrouter_speed_to_lead_seconds_bucket"
        assert any(e.startswith(wanted) for e in exprs), q
    assert panel["fieldConfig"]["defaults"]["unit"] == "s"


def test_per_rep_table_says_it_needs_per_rep_metrics() -> None:
    """The per-rep table is empty unless the monitors export per-rep series: its description
    says how to turn them on, and its queries are instant tables merged by rep."""
    panel = _panel("speed-to-lead.json", "First touch by rep")
    assert panel["type"] == "table"
    assert "LEADROUTER_METRICS__PER_REP=true" in panel["description"]
    assert {"leadrouter_rep_first_touch_seconds_bucket", "leadrouter_rep_sla_total"} <= {
        m for t in panel["targets"] for m in metric_names(t["expr"])
    }
    for target in panel["targets"]:
        assert target["instant"], target["refId"]
        assert target["format"] == "table", target["refId"]
        assert "by (rep" in target["expr"], target["refId"]
    assert panel["transformations"][0]["id"] == "merge"


def test_collapsed_rows_hold_their_panels_below_them() -> None:
    """A collapsed row keeps its panels inside it, placed right under the row."""
    for name in DASHBOARD_FILES:
        for row in dashboard(name)["panels"]:
            if row["type"] != "row" or not row.get("collapsed"):
                continue
            assert row["panels"], f"collapsed row {row['title']!r} is empty"
            for panel in row["panels"]:
                assert panel["gridPos"]["y"] > row["gridPos"]["y"], panel["title"]
                assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]


@boards
def test_template_variables(name: str) -> None:
    """A `datasource` variable of type datasource (Prometheus); query variables read through
    it, and multi-value ones include All as the regex `.*`."""
    found = {var["name"]: var for var in dashboard(name)["templating"]["list"]}
    assert found["datasource"]["type"] == "datasource"
    assert found["datasource"]["query"] == "prometheus"
    for var in found.values():
        if var["type"] != "query":
            continue
        assert _uses_datasource_variable(var["datasource"]), var["name"]
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        assert re.fullmatch(r"label_values\(\w+(\{.*\})?, *\w+\)", query), query
        assert metric_names(query) <= exposed_series()
        if var.get("multi"):
            assert var.get("includeAll"), var["name"]
            assert var.get("allValue") == ".*", var["name"]


def test_speed_to_lead_filters_by_team() -> None:
    """The team variable lists the teams that received leads; several can be chosen."""
    found = {var["name"]: var for var in dashboard("speed-to-lead.json")["templating"]["list"]}
    team = found["team"]
    assert team["query"]["query"] == "label_values(leadrouter_leads_routed_total, team)"
    assert team["multi"]
    assert team["includeAll"]


@boards
def test_variables_in_queries_are_defined_and_used_as_regex(name: str) -> None:
    """A multi-value variable expands to `a|b`: it may only appear in a `=~` matcher."""
    board = dashboard(name)
    defined = {var["name"] for var in board["templating"]["list"]}
    builtin = {"__rate_interval", "__interval", "__range"}
    for panel, target in queries(board):
        expr = target["expr"]
        for var in variables(expr):
            assert var in defined | builtin, f"{panel['title']!r} uses undefined ${var}"
        for var in defined - {"datasource"}:
            for match in re.finditer(r"\$\{?" + var + r"\b", expr):
                assert expr[: match.start()].endswith('=~"'), f"{panel['title']!r}: ${var} outside =~"


def test_speed_to_lead_links_to_pipeline_health() -> None:
    """From the SLA view one click reaches the pipeline view, for the same time range."""
    target = dashboard("pipeline-health.json")["uid"]
    links = dashboard("speed-to-lead.json")["links"]
    assert any(f"/d/{target}" in link.get("url", "") and link.get("keepTime") for link in links)


def test_pipeline_health_links_back_to_speed_to_lead() -> None:
    """And back again."""
    target = dashboard("speed-to-lead.json")["uid"]
    links = dashboard("pipeline-health.json")["links"]
    assert any(f"/d/{target}" in link.get("url", "") for link in links)


# --- provisioning ------------------------------------------------------------------


def test_datasource_provisioning_defines_a_prometheus_datasource() -> None:
    """Grafana gets a Prometheus data source pointing at deploy/prometheus's default address."""
    config = load_yaml(DATASOURCES)
    assert config["apiVersion"] == 1
    (source,) = config["datasources"]
    assert source["type"] == "prometheus"
    assert source["access"] == "proxy"
    assert source["url"] == "http://127.0.0.1:9090"
    assert source["jsonData"]["timeInterval"] == "15s", "matches the scrape interval"


def test_dashboard_provider_points_at_the_dashboards_folder() -> None:
    """The file provider reads the folder where deploy/grafana/dashboards is mounted (as its
    own comment says), and that folder holds both dashboards."""
    config = load_yaml(DASHBOARD_PROVIDER)
    assert config["apiVersion"] == 1
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    path = provider["options"]["path"]
    text = DASHBOARD_PROVIDER.read_text(encoding="utf-8")
    mount = re.search(r"deploy/grafana/dashboards\s+->\s+(\S+)", text)
    assert mount is not None, "the provider file says where to mount deploy/grafana/dashboards"
    assert mount.group(1) == path
    assert DASHBOARDS_DIR == GRAFANA_DIR / "dashboards"
    assert sorted(p.name for p in DASHBOARDS_DIR.glob("*.json")) == sorted(DASHBOARD_FILES)
    assert (REPO / "deploy/grafana/provisioning/dashboards").is_dir()
