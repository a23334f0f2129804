"""deploy/k8s: identified objects, a complete kustomization, workers that match the code.

Structure only, offline. kubectl's built-in kustomize and the kubernetes-validate
package (bundled schemas) check more where they are installed, else those tests skip.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from router.kafka import make_producer
from router.settings import Settings
from rules.rulebook import parse_rulebook
from tests.deploy.manifests import (
    CONFIGMAP,
    CONFIGMAP_KEY,
    DEFAULT_RULEBOOK,
    JOB,
    K8S,
    KUSTOMIZATION,
    METRICS_PORT,
    SECRET_EXAMPLE,
    UID,
    deployments,
    image_env,
    k8s_files,
    k8s_objects,
    load_documents,
    load_yaml,
    matches,
    objects_of_kind,
    parse_cli,
    render_configmap,
    settings_from,
)

COMPONENTS = {"leadrouter-router": "router", "leadrouter-monitor": "monitor"}


@pytest.mark.parametrize("path", k8s_files(), ids=lambda p: p.name)
def test_every_k8s_object_is_identified(path: Path) -> None:
    """apiVersion, kind and metadata.name on every object; at least one object per file."""
    docs = load_documents(path)
    assert docs, f"{path.name} is empty"
    for doc in docs:
        assert doc.get("apiVersion"), path.name
        assert doc.get("kind"), path.name
        if doc["kind"] != "Kustomization":
            assert doc.get("metadata", {}).get("name"), path.name


def test_kustomization_lists_every_manifest_but_the_example_secret() -> None:
    """Every manifest is applied by `kubectl apply -k`, except the Secret's placeholders."""
    resources = load_yaml(KUSTOMIZATION)["resources"]
    manifests = {p.name for p in k8s_files()} - {KUSTOMIZATION.name, SECRET_EXAMPLE.name}
    assert sorted(resources) == sorted(manifests)
    assert SECRET_EXAMPLE.name not in resources


def test_kustomize_renders_the_manifests_into_the_namespace() -> None:
    """kubectl's built-in kustomize (offline) renders every object, namespaced."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed")
    done = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    rendered = [d for d in yaml.safe_load_all(done.stdout) if d]
    expected = {(doc["kind"], doc["metadata"]["name"]) for _, doc in k8s_objects() if doc["kind"] != "Secret"}
    assert {(d["kind"], d["metadata"]["name"]) for d in rendered} == expected
    for doc in rendered:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "leadrouter", doc["metadata"]["name"]


@pytest.mark.parametrize("version", ["1.30.0", "latest"])
def test_manifests_match_the_kubernetes_schemas(version: str) -> None:
    """Strict schema validation (unknown fields rejected) with kubernetes-validate's bundled schemas."""
    kv: Any = pytest.importorskip("kubernetes_validate")
    wanted = kv.latest_version() if version == "latest" else version
    checked = 0
    for path, doc in k8s_objects():
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # a CRD: no schema in the bundle
        try:
            kv.validate(doc, wanted, True)
        except kv.ValidationError as exc:
            pytest.fail(f"{path.name} {doc['kind']}/{doc['metadata']['name']}: {exc}")
        checked += 1
    assert checked >= 8


def pod_spec(deployment: Mapping[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def container(deployment: Mapping[str, Any]) -> dict[str, Any]:
    (only,) = pod_spec(deployment)["containers"]
    assert isinstance(only, dict)
    return only


def deployment_items() -> Iterator[tuple[str, dict[str, Any]]]:
    found = deployments()
    assert set(found) == set(COMPONENTS)
    yield from sorted(found.items())


def secret_values() -> dict[str, dict[str, str]]:
    """Secret name -> key -> placeholder value, from secret-example.yaml."""
    out = {}
    for doc in load_documents(SECRET_EXAMPLE):
        out[doc["metadata"]["name"]] = {**doc.get("stringData", {}), **doc.get("data", {})}
    return out


def container_env(deployment: Mapping[str, Any]) -> dict[str, str]:
    """The container's environment, secrets as the example's placeholders, field refs as samples."""
    secrets = secret_values()
    env = {}
    for item in container(deployment).get("env", []):
        name = item["name"]
        if "value" in item:
            env[name] = str(item["value"])
            continue
        source = item["valueFrom"]
        if ref := source.get("secretKeyRef"):
            assert ref["name"] in secrets, f"{name}: no Secret {ref['name']} in {SECRET_EXAMPLE.name}"
            assert ref["key"] in secrets[ref["name"]], f"{name}: Secret has no key {ref['key']}"
            env[name] = secrets[ref["name"]][ref["key"]]
        elif ref := source.get("fieldRef"):
            env[name] = "leadrouter-router-7d9f8-abcde"
        else:
            pytest.fail(f"{name}: unexpected valueFrom {sorted(source)}")
    return env


@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_deployment_runs_a_real_worker_command(name: str) -> None:
    """args parse with the leadrouter CLI (the image's entrypoint) and the role matches the component."""
    deployment = deployments()[name]
    spec = container(deployment)
    assert "command" not in spec, "the image's entrypoint (leadrouter) is used"
    args = parse_cli([str(a) for a in spec["args"]])
    assert (args.command, args.role) == ("worker", COMPONENTS[name])
    assert not args.create_topics, "topics are created by the platform with their settings"
    assert deployment["spec"]["replicas"] == 2


@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_deployment_settings_are_valid(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every variable is a setting, secrets come from the Secret, and Settings accepts the values."""
    deployment = deployments()[name]
    secret_backed = {
        item["name"] for item in container(deployment)["env"] if "secretKeyRef" in item.get("valueFrom", {})
    }
    assert secret_backed == {"LEADROUTER_REDIS__URL", "LEADROUTER_KAFKA__SASL_PASSWORD"}
    settings = settings_from({**image_env(), **container_env(deployment)}, monkeypatch)
    assert settings.http.host == "0.0.0.0"
    assert str(settings.rulebook).startswith("/etc/leadrouter/")


async def test_deployment_kafka_settings_build_a_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Kafka client accepts the manifests' security settings (aiokafka rejects SSL without a context)."""
    for _, deployment in deployment_items():
        for name, value in container_env(deployment).items():
            monkeypatch.setenv(name, value)
        producer = make_producer(Settings().kafka)  # raises on settings the client cannot use
        await producer.stop()


def test_router_and_monitor_share_their_settings() -> None:
    """A router and a monitor that disagree on Kafka, Redis or prefixes would silently break the SLA."""
    router, monitor = (container(deployments()[n]) for n in ("leadrouter-router", "leadrouter-monitor"))
    assert router["env"] == monitor["env"]


@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_deployment_probes_and_metrics_port(name: str) -> None:
    """startup and liveness on /healthz, readiness on /readyz, all through the port named metrics."""
    deployment = deployments()[name]
    spec = container(deployment)
    ports = {p["name"]: p["containerPort"] for p in spec["ports"]}
    assert ports == {"metrics": METRICS_PORT}
    assert container_env(deployment).get("LEADROUTER_HTTP__PORT", str(METRICS_PORT)) == str(METRICS_PORT)
    expected = {"startupProbe": "/healthz", "livenessProbe": "/healthz", "readinessProbe": "/readyz"}
    for probe, path in expected.items():
        http = spec[probe]["httpGet"]
        assert (http["path"], http["port"]) == (path, "metrics"), probe
    assert pod_spec(deployment)["terminationGracePeriodSeconds"] == 30


@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_deployment_resources_and_security(name: str) -> None:
    """Requests and limits; non-root, read-only root, no privilege escalation, no capabilities."""
    deployment = deployments()[name]
    spec = container(deployment)
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(spec["resources"][kind]), kind
    pod = pod_spec(deployment)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == UID
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    security = spec["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"]
    assert "add" not in security["capabilities"]
    template_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert matches(deployment["spec"]["selector"], template_labels)
    assert template_labels["app.kubernetes.io/component"] == COMPONENTS[name]


@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_rulebook_is_mounted_as_a_folder(name: str) -> None:
    """LEADROUTER_RULEBOOK is on a ConfigMap folder mount: no subPath, which would never see updates."""
    deployment = deployments()[name]
    spec = container(deployment)
    for mount in spec["volumeMounts"]:
        assert "subPath" not in mount, mount["name"]
        assert "subPathExpr" not in mount, mount["name"]
    volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
    rulebook = container_env(deployment)["LEADROUTER_RULEBOOK"]
    configmaps = {c["metadata"]["name"]: c for c in objects_of_kind("ConfigMap")}
    found = False
    for mount in spec["volumeMounts"]:
        volume = volumes[mount["name"]]
        if "configMap" not in volume:
            continue
        assert "items" not in volume["configMap"], "every key of the ConfigMap is mounted"
        key = str(PurePosixPath(rulebook).relative_to(mount["mountPath"]))
        assert key in configmaps[volume["configMap"]["name"]]["data"]
        found = True
    assert found, f"{rulebook} is not on a ConfigMap mount"


def test_configmap_rulebook_is_the_example_rulebook() -> None:
    """The ConfigMap is generated from rules/examples/default.yaml and still equal to it.

    Regenerate after editing the example: .venv/bin/python -m tests.deploy.manifests
    """
    source = DEFAULT_RULEBOOK.read_text(encoding="utf-8")
    assert CONFIGMAP.read_text(encoding="utf-8") == render_configmap(source), (
        "deploy/k8s/configmap-rulebook.yaml is stale: run .venv/bin/python -m tests.deploy.manifests"
    )
    (configmap,) = load_documents(CONFIGMAP)
    text = configmap["data"][CONFIGMAP_KEY]
    assert text == source
    parse_rulebook(text, str(CONFIGMAP))


@pytest.mark.parametrize(
    "text",
    ["a: 1\n", "a: 1", "a: 1\n\n", "  a: 1\n", "# c\n\nb:\n  - x   y\n"],
    ids=["newline", "no-newline", "blank-tail", "indented", "blank-line"],
)
def test_configmap_rendering_keeps_the_text_verbatim(text: str) -> None:
    """Whatever the rulebook's first and last lines, the ConfigMap holds exactly its text."""
    (doc,) = yaml.safe_load_all(render_configmap(text))
    assert doc["data"][CONFIGMAP_KEY] == text


def test_podmonitor_scrapes_both_deployments_as_job_leadrouter() -> None:
    """The PodMonitor selects both pod templates, on their metrics port, with job="leadrouter"."""
    (monitor,) = objects_of_kind("PodMonitor")
    spec = monitor["spec"]
    endpoints = spec["podMetricsEndpoints"]
    assert [e["port"] for e in endpoints] == ["metrics"]
    assert all(e.get("path", "/metrics") == "/metrics" for e in endpoints)
    for _, deployment in deployment_items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert matches(spec["selector"], labels), deployment["metadata"]["name"]
        assert labels[spec["jobLabel"]] == JOB


def test_pdbs_keep_one_pod_of_each_deployment() -> None:
    """One PodDisruptionBudget per deployment, minAvailable 1, selecting exactly its pods."""
    pdbs = objects_of_kind("PodDisruptionBudget")
    covered = []
    for pdb in pdbs:
        assert pdb["spec"]["minAvailable"] == 1
        selected = [
            name
            for name, d in deployment_items()
            if matches(pdb["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])
        ]
        assert len(selected) == 1, f"{pdb['metadata']['name']} selects {selected}"
        covered += selected
    assert sorted(covered) == sorted(COMPONENTS)


def test_services_expose_the_metrics_port_of_each_deployment() -> None:
    """Each Service selects exactly one deployment's pods and targets its metrics port."""
    covered = []
    for service in objects_of_kind("Service"):
        selected = [
            name
            for name, d in deployment_items()
            if matches(
                {"matchLabels": service["spec"]["selector"]}, d["spec"]["template"]["metadata"]["labels"]
            )
        ]
        assert len(selected) == 1, service["metadata"]["name"]
        assert [p["targetPort"] for p in service["spec"]["ports"]] == ["metrics"]
        covered += selected
    assert sorted(covered) == sorted(COMPONENTS)


def test_secret_example_holds_only_placeholders() -> None:
    """The example Secret says so, and its values are placeholders."""
    text = SECRET_EXAMPLE.read_text(encoding="utf-8")
    assert "EXAMPLE" in text
    for values in secret_values().values():
        assert values
        for key, value in values.items():
            assert "CHANGE_ME" in value, key
