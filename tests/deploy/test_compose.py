"""deploy/compose.yaml: every file it mounts exists, every command and setting is real.

Structure only: no Docker engine, nothing pulled or started. promtool checks the
compose Prometheus config where it is installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from router.settings import Settings, TopicSettings
from rules.rulebook import parse_rulebook
from tests.deploy.manifests import (
    DEPLOY,
    DOCKERFILE,
    JOB,
    METRICS_PORT,
    REPO,
    bind_mounts,
    compose,
    compose_command,
    compose_environment,
    final_stage,
    image_env,
    load_yaml,
    parse_cli,
    settings_from,
)
from tests.ops.deploy import require_tool


def leadrouter_services() -> dict[str, dict[str, Any]]:
    """The compose services that run the leadrouter image."""
    services: dict[str, dict[str, Any]] = compose()["services"]
    return {name: s for name, s in services.items() if "build" in s}


def test_compose_builds_the_image_from_the_repository_root() -> None:
    """Every leadrouter service builds deploy/docker/Dockerfile with the repository as context."""
    services = leadrouter_services()
    assert {"router", "monitor"} <= set(services)
    for name, service in services.items():
        build = service["build"]
        context = (DEPLOY / build["context"]).resolve()
        assert context == REPO, name
        assert (context / build["dockerfile"]).resolve() == DOCKERFILE, name
        assert service["image"] == services["router"]["image"], "one image for every service"


def test_compose_bind_mounts_exist() -> None:
    """Every bind-mount source, relative to deploy/, exists in the repository."""
    mounts = list(bind_mounts())
    assert len(mounts) >= 6
    for mount in mounts:
        assert mount.path.exists(), f"{mount.service}: {mount.source} does not exist"
        assert REPO in mount.path.parents, f"{mount.service}: {mount.source} is outside the repository"


def container_path(service: str, path: str) -> Path:
    """The host file behind a path inside a compose service's container (through its bind mounts)."""
    for mount in bind_mounts():
        if mount.service == service and (path == mount.target or path.startswith(mount.target + "/")):
            return mount.path / path[len(mount.target) :].lstrip("/")
    pytest.fail(f"{service}: {path} is not under any bind mount")


@pytest.mark.parametrize("service", ["router", "monitor"])
def test_compose_workers(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two replicas per role, a real command line, valid settings and a mounted, valid rulebook."""
    spec = compose()["services"][service]
    assert spec["deploy"]["replicas"] == 2
    args = parse_cli(compose_command(spec))
    assert (args.command, args.role) == ("worker", service)
    env = compose_environment(spec)
    settings = settings_from({**image_env(), **env}, monkeypatch)
    assert settings.kafka.bootstrap_servers == "kafka:9092"
    assert settings.redis.url.get_secret_value().startswith("redis://redis:")
    assert settings.http.host == "0.0.0.0"
    assert settings.http.port == METRICS_PORT
    rulebook = container_path(service, str(settings.rulebook))
    parse_rulebook(rulebook.read_text(encoding="utf-8"), str(rulebook))


def test_compose_router_and_monitor_share_their_settings() -> None:
    """Same Kafka, Redis, prefixes and rulebook for both roles."""
    services = compose()["services"]
    assert compose_environment(services["router"]) == compose_environment(services["monitor"])


def test_compose_demo_command_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo profile runs a real `leadrouter demo` against the compose broker with the workers' SLA."""
    services = compose()["services"]
    demo = services["demo"]
    args = parse_cli(compose_command(demo))
    assert args.command == "demo"
    assert not args.workers
    worker_sla = settings_from(compose_environment(services["router"]), monkeypatch).sla
    assert args.sla_seconds == worker_sla.first_touch_seconds
    settings_from(compose_environment(demo), monkeypatch)


def topic_commands() -> dict[str, tuple[int, int]]:
    """Topic -> (partitions, retention.ms) from the `topics` service's script."""
    (script,) = compose()["services"]["topics"]["command"]
    rows = re.findall(r"^\s*create\s+(\S+)\s+(\d+)\s+(\d+)\s*$", script, re.MULTILINE)
    return {name: (int(parts), int(retention)) for name, parts, retention in rows}


def test_compose_creates_exactly_the_topics_the_workers_use() -> None:
    """Names and partition counts are those of TopicSettings.all_topics()."""
    created = {name: parts for name, (parts, _) in topic_commands().items()}
    assert created == TopicSettings().all_topics()


def test_compose_topic_settings() -> None:
    """Delete policy; DLQs kept longest; `leads` gone before Redis forgets its decision.

    A `leads` record still on the topic after its lead's Redis record expired would
    be routed again by a consumer group that restarts from the earliest offset.
    """
    script = compose()["services"]["topics"]["command"][0]
    assert "--config cleanup.policy=delete" in script
    assert "--replication-factor 1" in script
    segment = re.search(r"segment\.ms=(\d+)", script)
    assert segment, "segment.ms bounds how long a record outlives retention.ms"
    segment_ms = int(segment.group(1))
    retention = {name: ms for name, (_, ms) in topic_commands().items()}
    dlqs = {name for name in retention if name.endswith(".dlq")}
    assert min(retention[d] for d in dlqs) > max(ms for name, ms in retention.items() if name not in dlqs)
    redis_ms = Settings().redis.retention_seconds * 1000
    assert retention["leads"] + segment_ms < redis_ms


def test_compose_dependencies_wait_for_health_or_completion() -> None:
    """Each depends_on names a condition its target can meet."""
    services = compose()["services"]
    for name, service in services.items():
        for target, dep in (service.get("depends_on") or {}).items():
            condition = dep["condition"]
            other = services[target]
            if condition == "service_healthy":
                has_check = "healthcheck" in other or ("build" in other and final_stage().of("HEALTHCHECK"))
                assert has_check, f"{name} waits for {target} to be healthy; it has no healthcheck"
            elif condition == "service_completed_successfully":
                assert other.get("restart") == "no", f"{target} is a one-shot job"
            else:
                assert condition == "service_started", condition
    for name in ("kafka", "redis", "prometheus", "alertmanager", "grafana"):
        assert "healthcheck" in services[name], name


def test_compose_redis_is_durable_and_never_evicts() -> None:
    """AOF fsynced every second, noeviction, data on a volume."""
    redis = compose()["services"]["redis"]
    assert redis["image"] == "redis:7.2"
    command = " ".join(compose_command(redis))
    for option in ("--appendonly yes", "--appendfsync everysec", "--maxmemory-policy noeviction"):
        assert option in command
    assert any(v.split(":")[1] == "/data" for v in redis["volumes"])


def test_compose_kafka_is_single_node_kraft() -> None:
    """apache/kafka 4.1.1 as broker and controller, advertising itself on the compose network."""
    services = compose()["services"]
    kafka = services["kafka"]
    assert kafka["image"] == "apache/kafka:4.1.1"
    env = compose_environment(kafka)
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert services["topics"]["image"] == kafka["image"]


def flags(service: str) -> dict[str, str]:
    """`--name=value` flags of a service's command."""
    command = compose()["services"][service]["command"]
    return dict(arg.split("=", 1) for arg in command if arg.startswith("--") and "=" in arg)


def mounted_files(service: str) -> dict[str, Path]:
    """Container path -> host path of a service's bind mounts."""
    return {m.target: m.path for m in bind_mounts() if m.service == service}


def prometheus_config() -> tuple[dict[str, Any], dict[str, Path]]:
    """The compose Prometheus config and its container paths -> host files."""
    files = mounted_files("prometheus")
    return load_yaml(files[flags("prometheus")["--config.file"]]), files


def test_compose_prometheus_scrapes_every_worker_and_loads_the_alerts() -> None:
    """DNS discovery of the worker services on the metrics port, job `leadrouter`, the repo's alerts."""
    config, files = prometheus_config()
    config_dir = PurePosixPath(flags("prometheus")["--config.file"]).parent
    for rule_file in config["rule_files"]:
        host = files[str(config_dir / rule_file)]
        assert host == (DEPLOY / "prometheus" / "alerts.yml").resolve()
    (job,) = config["scrape_configs"]
    assert job["job_name"] == JOB
    (sd,) = job["dns_sd_configs"]
    assert set(sd["names"]) == {"router", "monitor"}
    assert sd["port"] == METRICS_PORT
    for am in config["alerting"]["alertmanagers"]:
        for target in am["static_configs"][0]["targets"]:
            host, port = target.split(":")
            assert host in compose()["services"], target
            assert port == "9093"


def test_compose_prometheus_config_passes_promtool(tmp_path: Path) -> None:
    """promtool accepts the compose config with the files laid out as in the container."""
    promtool = require_tool("promtool", "prometheus")
    _, files = prometheus_config()
    for target, host in files.items():
        if host.is_file():
            shutil.copy(host, tmp_path / PurePosixPath(target).name)
    done = subprocess.run(
        [promtool, "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_alertmanager_reads_the_repo_config() -> None:
    """deploy/alertmanager/alertmanager.yml is mounted where --config.file points."""
    config = mounted_files("alertmanager")[flags("alertmanager")["--config.file"]]
    assert config == (DEPLOY / "alertmanager" / "alertmanager.yml").resolve()


def test_compose_grafana_provisioning_matches_its_paths() -> None:
    """Dashboards land where the provider reads them; the data source points at the prometheus service."""
    files = mounted_files("grafana")
    provider_dir = files["/etc/grafana/provisioning/dashboards"]
    assert provider_dir == (DEPLOY / "grafana" / "provisioning" / "dashboards").resolve()
    for provider_file in provider_dir.glob("*.yaml"):
        for provider in load_yaml(provider_file)["providers"]:
            path = provider["options"]["path"]
            assert files[path] == (DEPLOY / "grafana" / "dashboards").resolve()
    repo_sources = load_yaml(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yaml")
    (repo_source,) = repo_sources["datasources"]
    compose_sources = list(files["/etc/grafana/provisioning/datasources"].glob("*.yaml"))
    assert compose_sources
    for source_file in compose_sources:
        (source,) = load_yaml(source_file)["datasources"]
        assert source["url"] == "http://prometheus:9090"
        assert source["uid"] == repo_source["uid"]
        assert source["type"] == "prometheus"
