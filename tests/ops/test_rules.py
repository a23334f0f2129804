"""The alert rules, their unit tests, the Prometheus and Alertmanager configs and the runbook.

The tools (promtool, amtool) come from Debian's prometheus and
prometheus-alertmanager packages; without them these tests skip, or fail under
LEADROUTER_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.ops.deploy import (
    ALERTMANAGER_CONFIG,
    ALERTS,
    ALERTS_TEST,
    DEFAULT_RULEBOOK,
    PROMETHEUS_CONFIG,
    REDIS_WIDE_GAUGES,
    REPO,
    RUNBOOK,
    alert_names,
    alert_rules,
    exposed_series,
    load_yaml,
    metric_names,
    redis_wide_reads_without_max,
    require_tool,
    rules,
    runbook_sections,
)

SEVERITIES = {"critical", "warning"}


def run(*cmd: str | Path) -> str:
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=60, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{output}"
    return done.stdout


# --- the tools -----------------------------------------------------------------


def test_alert_rules_pass_promtool_check() -> None:
    """promtool accepts alerts.yml: valid PromQL, templates and durations."""
    run(require_tool("promtool", "prometheus"), "check", "rules", ALERTS)


def test_alert_unit_tests_pass() -> None:
    """Every case of alerts_test.yml holds: alerts fire, and stay quiet, when they should."""
    run(require_tool("promtool", "prometheus"), "test", "rules", ALERTS_TEST)


def test_prometheus_config_is_valid() -> None:
    """promtool accepts prometheus.yml and the rule files it loads."""
    run(require_tool("promtool", "prometheus"), "check", "config", PROMETHEUS_CONFIG)


def test_alertmanager_config_is_valid() -> None:
    """amtool accepts alertmanager.yml."""
    run(require_tool("amtool", "prometheus-alertmanager"), "check-config", ALERTMANAGER_CONFIG)


def _receiver(*labels: str) -> str:
    amtool = require_tool("amtool", "prometheus-alertmanager")
    return run(amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}", *labels).strip()


def _default_teams() -> list[str]:
    return [str(team["id"]) for team in load_yaml(DEFAULT_RULEBOOK)["teams"]]


@pytest.mark.parametrize("team", _default_teams())
def test_sla_alerts_go_to_their_team(team: str) -> None:
    """An SLA alert reaches the receiver of the team in its `team` label."""
    assert _receiver("alertname=LeadrouterSlaBreachBurst", "category=sla", f"team={team}") == f"sla-{team}"


@pytest.mark.parametrize(
    "labels",
    [
        ("alertname=LeadrouterWorkerDown", "category=pipeline"),
        ("alertname=LeadrouterLeadsQueued", "category=routing", "team=amer"),
        ("alertname=LeadrouterSlaBreachBurst", "category=sla", "team=no-such-team"),
        ("alertname=LeadrouterLeadsAtRisk", "category=sla", "job=leadrouter"),
    ],
    ids=[
        "pipeline",
        "team label without sla category",
        "sla alert of an unknown team",
        "sla alert without team",
    ],
)
def test_other_alerts_go_to_ops(labels: tuple[str, ...]) -> None:
    """Everything that is not an SLA alert of a known team reaches ops."""
    assert _receiver(*labels) == "ops"


def test_inhibit_rules_name_existing_alerts() -> None:
    """Inhibitions refer to alerts that exist (a renamed alert would silently stop inhibiting)."""
    config = load_yaml(ALERTMANAGER_CONFIG)
    known = set(alert_names())
    for rule in config["inhibit_rules"]:
        for matcher in rule["source_matchers"] + rule["target_matchers"]:
            name, op, value = re.fullmatch(r'(\w+)\s*(=~|=)\s*"(.*)"', matcher).groups()  # type: ignore[union-attr]
            if name != "alertname":
                continue
            names = value.split("|") if op == "=~" else [value]
            assert set(names) <= known, f"inhibit rule names unknown alerts: {sorted(set(names) - known)}"


# --- the rules themselves ------------------------------------------------------


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: str(r["alert"]))
def test_every_alert_has_severity_summary_description_and_runbook(rule: dict[str, Any]) -> None:
    """Each alert says how urgent it is, what happened (with label values) and where to read on."""
    labels, annotations = rule.get("labels", {}), rule.get("annotations", {})
    assert labels.get("severity") in SEVERITIES
    assert labels.get("category"), "category routes the alert (sla: to the team)"
    for key in ("summary", "description", "runbook_url"):
        assert annotations.get(key), f"missing annotation {key}"
    assert "{{ $labels." in annotations["summary"] + annotations["description"], "uses label values"


# Series an SLA alert without a `team` label may read: gauges of shared Redis state,
# which have no team, and the default SLA target.
TEAMLESS = REDIS_WIDE_GAUGES - {"leadrouter_open_leads"} | {"leadrouter_sla_target_seconds"}


def test_sla_alerts_carry_the_team() -> None:
    """Alerts routed to a team (category sla) are aggregated by team, so the label exists;
    the only exceptions read Redis-wide gauges that have no team (they go to ops)."""
    for rule in alert_rules():
        if rule["labels"]["category"] != "sla":
            continue
        names = metric_names(rule["expr"])  # recording rules' `team:...` names excluded
        if names and names <= TEAMLESS:
            assert "team" not in rule["expr"], rule["alert"]
            assert "$labels.team" not in rule["annotations"]["summary"] + rule["annotations"]["description"]
            continue
        assert "$labels.team" in rule["annotations"]["summary"]
        assert re.search(r"by \(team\)|on \(team\)|\bteam:", rule["expr"]), rule["alert"]


def test_redis_wide_gauges_are_aggregated_with_max() -> None:
    """Every process reports the same Redis-wide number: a sum would count it once per process."""
    for rule in rules():
        summed = redis_wide_reads_without_max(str(rule["expr"]))
        assert not summed, f"{rule.get('alert') or rule.get('record')} reads {summed} without max()"


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: str(r["alert"]))
def test_runbook_has_the_section_an_alert_links_to(rule: dict[str, Any]) -> None:
    """runbook_url is docs/runbook.md#<anchor>, and that section exists and names the alert."""
    url = rule["annotations"]["runbook_url"]
    path, _, anchor = url.partition("#")
    assert (REPO / path).resolve() == RUNBOOK, f"{url} points at {RUNBOOK.name}"
    sections = runbook_sections()
    assert anchor in sections, f"no section #{anchor} in {RUNBOOK.name}"
    assert f"`{rule['alert']}`" in sections[anchor], f"section #{anchor} names {rule['alert']}"


def _unit_tests() -> list[dict[str, Any]]:
    return [case for test in load_yaml(ALERTS_TEST)["tests"] for case in test.get("alert_rule_test", [])]


@pytest.mark.parametrize("name", alert_names())
def test_every_alert_has_firing_and_quiet_unit_tests(name: str) -> None:
    """alerts_test.yml makes every alert fire at least once and stay quiet at least once."""
    cases = [case for case in _unit_tests() if case["alertname"] == name]
    assert any(case.get("exp_alerts") for case in cases), f"no case where {name} fires"
    assert any(not case.get("exp_alerts") for case in cases), f"no case where {name} stays quiet"


def test_unit_tests_name_existing_alerts() -> None:
    """A unit test of a renamed or removed alert fails here rather than passing vacuously."""
    unknown = {case["alertname"] for case in _unit_tests()} - set(alert_names())
    assert not unknown


def test_rules_use_only_exposed_metrics() -> None:
    """Every leadrouter_* series in a rule is one a worker exposes (typos match nothing)."""
    known = exposed_series()
    for rule in rules():
        unknown = metric_names(rule["expr"]) - known
        assert not unknown, f"{rule.get('alert') or rule.get('record')} uses unknown series {unknown}"


def test_runbook_log_events_are_logged_by_the_code() -> None:
    """The log events the runbook tells people to look for are ones the workers write."""
    text = RUNBOOK.read_text(encoding="utf-8")
    events = set(re.findall(r"^\s*\| `([a-z]+\.[a-z_]+)`(?: / `([a-z]+\.[a-z_]+)`)?", text, re.MULTILINE))
    names = {name for pair in events for name in pair if name}
    assert {"lead.routed", "sla.breached", "event.dead_lettered", "batch.retry", "sweep.retry"} <= names
    source = "".join(
        p.read_text(encoding="utf-8") for d in ("router", "monitors") for p in (REPO / d).rglob("*.py")
    )
    missing = sorted(name for name in names if f'"{name}"' not in source)
    assert not missing, f"the runbook names log events no code writes: {missing}"


def test_runbook_names_only_exposed_metrics() -> None:
    """Metric names the runbook tells people to look at exist."""
    unknown = metric_names(RUNBOOK.read_text(encoding="utf-8")) - exposed_series()
    assert not unknown, f"{RUNBOOK.name} names unknown series: {sorted(unknown)}"
