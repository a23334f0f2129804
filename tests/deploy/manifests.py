"""The deployment files under deploy/ (Dockerfile, compose, Kubernetes), loaded for tests.

Also writes deploy/k8s/configmap-rulebook.yaml from rules/examples/default.yaml:

    .venv/bin/python -m tests.deploy.manifests

The test suite fails when the ConfigMap and the example rulebook drift apart.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from router.cli import _parser
from router.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
DOCKER_DIR = DEPLOY / "docker"
DOCKERFILE = DOCKER_DIR / "Dockerfile"
DOCKERIGNORE = DOCKER_DIR / "Dockerfile.dockerignore"
COMPOSE = DEPLOY / "compose.yaml"
K8S = DEPLOY / "k8s"
CONFIGMAP = K8S / "configmap-rulebook.yaml"
SECRET_EXAMPLE = K8S / "secret-example.yaml"
KUSTOMIZATION = K8S / "kustomization.yaml"
DEPLOY_MD = REPO / "docs" / "deploy.md"
DEFAULT_RULEBOOK = REPO / "rules" / "examples" / "default.yaml"

ENV_PREFIX = "LEADROUTER_"
CONFIGMAP_NAME = "leadrouter-rulebook"
CONFIGMAP_KEY = "rulebook.yaml"
_CONFIGMAP_HEADER = f"""\
# GENERATED from rules/examples/default.yaml by `python -m tests.deploy.manifests`:
# edit that file and regenerate (tests/deploy fails while they differ). For your own
# rulebook, replace this ConfigMap in an overlay (docs/deploy.md, rulebook updates).
# Mounted as a folder at /etc/leadrouter (no subPath), so an update reaches running
# workers, which reload it without a restart.
apiVersion: v1
kind: ConfigMap
metadata:
  name: {CONFIGMAP_NAME}
  labels:
    app.kubernetes.io/name: leadrouter
    app.kubernetes.io/part-of: leadrouter
data:
"""


def render_configmap(rulebook: str) -> str:
    """The ConfigMap holding `rulebook` verbatim, as a YAML block scalar."""
    if "\t" in rulebook or "\r" in rulebook:
        raise ValueError("a rulebook with tabs or carriage returns needs a quoted scalar")
    chomp = "-" if not rulebook.endswith("\n") else "+" if rulebook.endswith("\n\n") else ""
    # An indented first line needs the indentation indicator (relative to the key, at 2).
    indent = "2" if rulebook[:1] == " " else ""
    body = "".join(f"    {line}" if line.strip() else "\n" for line in rulebook.splitlines(keepends=True))
    if not body.endswith("\n"):
        body += "\n"
    return f"{_CONFIGMAP_HEADER}  {CONFIGMAP_KEY}: |{indent}{chomp}\n{body}"


# --- YAML ----------------------------------------------------------------------


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_documents(path: Path) -> list[dict[str, Any]]:
    """Every non-empty document of a (multi-document) YAML file."""
    docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    return [doc for doc in docs if doc is not None]


def k8s_files() -> list[Path]:
    return sorted(K8S.glob("*.yaml")) + sorted(K8S.glob("*.yml"))


def k8s_objects() -> list[tuple[Path, dict[str, Any]]]:
    """(file, object) for every Kubernetes object in deploy/k8s, kustomization.yaml aside."""
    return [(path, doc) for path in k8s_files() if path != KUSTOMIZATION for doc in load_documents(path)]


def objects_of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in k8s_objects() if doc.get("kind") == kind]


def deployments() -> dict[str, dict[str, Any]]:
    """Deployment name -> object."""
    return {doc["metadata"]["name"]: doc for doc in objects_of_kind("Deployment")}


def matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Whether a LabelSelector (matchLabels and matchExpressions) selects `labels`."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return bool(selector.get("matchLabels") or selector.get("matchExpressions"))


# --- compose ---------------------------------------------------------------------

_INTERPOLATION = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}|\$(\w+)")


def interpolate(text: str, env: Mapping[str, str] | None = None) -> str:
    """Compose's `${VAR:-default}` substitution (`$$` is a literal `$`), with an empty environment."""
    env = env or {}
    parts = text.split("$$")

    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        return env.get(name) or match.group(2) or ""

    return "$".join(_INTERPOLATION.sub(one, part) for part in parts)


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = load_yaml(COMPOSE)
    return loaded


def compose_command(service: Mapping[str, Any]) -> list[str]:
    command = service.get("command", [])
    words = shlex.split(command) if isinstance(command, str) else [str(w) for w in command]
    return [interpolate(w) for w in words]


def compose_environment(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): interpolate(str(v)) for k, v in env.items()}


@dataclass(frozen=True)
class BindMount:
    service: str
    source: str  # as written, relative to deploy/
    target: str

    @property
    def path(self) -> Path:
        return (DEPLOY / self.source).resolve()


def bind_mounts() -> Iterator[BindMount]:
    """Every bind mount of every compose service (named volumes aside)."""
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            if isinstance(volume, dict):
                if volume.get("type") == "bind":
                    yield BindMount(name, volume["source"], volume["target"])
                continue
            source, target = volume.split(":")[:2]
            if source.startswith((".", "/")):
                yield BindMount(name, source, target)


# --- Dockerfile ------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction]

    def of(self, keyword: str) -> list[str]:
        return [i.args for i in self.instructions if i.keyword == keyword]


def dockerfile_stages(text: str) -> list[Stage]:
    """The stages of a Dockerfile: continuation lines joined, comments and directives dropped."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    stages: list[Stage] = []
    for line in lines:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = args.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name, []))
        elif stages:
            stages[-1].instructions.append(Instruction(keyword, args.strip()))
    return stages


def exec_form(args: str) -> list[str]:
    """A JSON-array (exec form) argument such as ENTRYPOINT's."""
    value = json.loads(args)
    assert isinstance(value, list), f"not exec form: {args}"
    return [str(v) for v in value]


# --- shared by the tests -----------------------------------------------------

METRICS_PORT = 9464
JOB = "leadrouter"  # deploy/prometheus/alerts.yml selects up{job="leadrouter"}
UID = 10001


def parse_cli(argv: list[str]) -> Any:
    """argv parsed by the real `leadrouter` parser; a failure names the arguments."""
    try:
        return _parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"`leadrouter {' '.join(argv)}` is not a valid leadrouter command line")


def settings_field_exists(env_name: str) -> bool:
    """Whether `LEADROUTER_A__B` names a field of Settings (nested with `__`, case-insensitive)."""
    parts = env_name.removeprefix(ENV_PREFIX).lower().split("__")
    model: type[BaseModel] = Settings
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        annotation = field.annotation
        nested = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        if i == len(parts) - 1:
            return not nested
        if not nested:
            return False
        assert isinstance(annotation, type)
        model = annotation
    return False


def settings_from(env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The Settings a process with exactly these LEADROUTER_* variables builds."""
    unknown = sorted(name for name in env if name.startswith(ENV_PREFIX) and not settings_field_exists(name))
    assert not unknown, f"not settings fields: {unknown}"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


def stages() -> list[Stage]:
    return dockerfile_stages(DOCKERFILE.read_text(encoding="utf-8"))


def build_args() -> dict[str, str]:
    """Global ARG defaults (before the first FROM)."""
    out = {}
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if line.startswith("FROM"):
            break
        if m := re.match(r"ARG\s+(\w+)=(\S+)", line):
            out[m.group(1)] = m.group(2)
    return out


def final_stage() -> Stage:
    return stages()[-1]


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for args in final_stage().of("ENV"):
        for m in re.finditer(r"(\w+)=(\S+)", args):
            env[m.group(1)] = m.group(2)
    return env


def healthcheck_command() -> list[str]:
    (healthcheck,) = final_stage().of("HEALTHCHECK")
    cmd = healthcheck[healthcheck.index("CMD") + 3 :].strip()
    return exec_form(cmd)


def main() -> int:
    CONFIGMAP.write_text(render_configmap(DEFAULT_RULEBOOK.read_text(encoding="utf-8")), encoding="utf-8")
    sys.stdout.write(f"wrote {CONFIGMAP.relative_to(REPO)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
