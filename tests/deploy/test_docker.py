"""The worker image: deploy/docker/Dockerfile and its build-context filter.

Structure only: nothing is built. The HEALTHCHECK command runs against the real
HTTP app on a loopback port.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import tomllib
from pathlib import PurePosixPath

import pytest
from prometheus_client import CollectorRegistry

from monitors.http import make_app, start_http
from router.settings import Settings
from tests.deploy.manifests import (
    DOCKERIGNORE,
    METRICS_PORT,
    REPO,
    UID,
    build_args,
    exec_form,
    final_stage,
    healthcheck_command,
    image_env,
    interpolate,
    parse_cli,
    stages,
)

# What a final image stage must not install or run: compilers and build front-ends.
BUILD_TOOLS = re.compile(
    r"\b(apt-get|apk|gcc|g\+\+|cc|make|build-essential|python3?-dev|pip wheel|setup\.py)\b"
)


def test_dockerfile_is_multi_stage_on_python_311_slim() -> None:
    """A builder stage makes the wheels; the final stage starts again from python:3.11-slim."""
    all_stages = stages()
    assert len(all_stages) >= 2
    args = build_args()
    bases = [interpolate(s.base, args) for s in all_stages]
    assert set(bases) == {"python:3.11-slim"}, bases
    builder = all_stages[0]
    assert builder.name, "the builder stage is named, for COPY/mount --from"
    assert any("pip wheel" in run for run in builder.of("RUN")), "the builder builds wheels"


def test_builder_copies_what_the_wheel_build_reads() -> None:
    """pyproject.toml, its readme and every package root reach the builder."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    needed = {"pyproject.toml", pyproject["project"]["readme"]}
    needed |= {p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = set()
    for args in stages()[0].of("COPY"):
        words = [w for w in args.split() if not w.startswith("--")]
        copied |= set(words[:-1])
    assert needed <= copied, f"not copied into the builder: {sorted(needed - copied)}"
    for source in copied:
        assert (REPO / source).exists(), f"COPY source {source} does not exist"


def test_final_stage_installs_only_the_wheels_offline() -> None:
    """The runtime installs from the builder's wheels (no index, no sdist builds, no compilers)."""
    final = final_stage()
    runs = final.of("RUN")
    installs = [r for r in runs if "pip install" in r]
    assert len(installs) == 1, runs
    install = installs[0]
    assert "--no-index" in install
    assert "--find-links" in install
    builder = stages()[0].name
    assert f"from={builder}" in install, "the wheels come from the builder stage"
    assert not final.of("COPY"), "the final stage copies no sources"
    assert not final.of("ADD")
    for run in runs:
        assert not BUILD_TOOLS.search(run), f"build tooling in the final stage: {run}"
    assert re.search(r"pip uninstall .*\bsetuptools\b.*\bwheel\b", install), "packaging tools removed"


def test_final_stage_runs_as_a_numeric_non_root_user() -> None:
    """USER is uid 10001 (numeric, so Kubernetes' runAsNonRoot can verify it)."""
    users = final_stage().of("USER")
    assert users, "no USER in the final stage"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), f"USER {users[-1]} is not numeric"
    assert int(uid) == UID
    # Nothing after USER needs root.
    keywords = [i.keyword for i in final_stage().instructions]
    assert "RUN" not in keywords[keywords.index("USER") :]


def test_image_entrypoint_command_and_environment() -> None:
    """leadrouter is the entrypoint, `worker --role all` the default, reachable on 0.0.0.0:9464."""
    final = final_stage()
    assert exec_form(final.of("ENTRYPOINT")[-1]) == ["leadrouter"]
    cmd = exec_form(final.of("CMD")[-1])
    assert cmd == ["worker", "--role", "all"]
    parse_cli(cmd)
    env = image_env()
    assert env["LEADROUTER_HTTP__HOST"] == "0.0.0.0"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert final.of("EXPOSE") == [str(METRICS_PORT)]
    assert Settings().http.port == METRICS_PORT
    assert final.of("STOPSIGNAL") == ["SIGTERM"]


def test_healthcheck_uses_python_against_healthz() -> None:
    """No curl in slim images: the health check is Python's urllib on /healthz."""
    command = healthcheck_command()
    assert command[:2] == ["python", "-c"]
    assert "urllib" in command[2]
    assert "/healthz" in command[2]


async def _run_healthcheck(port: int) -> int:
    command = healthcheck_command()
    env = {"LEADROUTER_HTTP__PORT": str(port), "PATH": "/usr/bin:/bin"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *command[1:],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return await asyncio.wait_for(proc.wait(), timeout=30)


async def test_healthcheck_passes_on_a_live_worker_endpoint_and_fails_without_one() -> None:
    """The image's HEALTHCHECK exits 0 against the worker's HTTP app and non-zero when nothing listens."""
    app = make_app(CollectorRegistry(), lambda: (True, {}))
    runner, port = await start_http(app, "127.0.0.1", 0)
    try:
        assert await _run_healthcheck(port) == 0
    finally:
        await runner.cleanup()
    assert await _run_healthcheck(port) != 0


def _ignore_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out += pattern[i : end + 1]
            i = end + 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")


def dockerignored(path: str) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern matching a parent matches the path."""
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    parts = PurePosixPath(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = _ignore_regex(pattern.lstrip("!").strip("/"))
        if any(regex.match(p) for p in prefixes):
            ignored = not negate
    return ignored


def _package_files() -> list[str]:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    roots = [p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]]
    return sorted(
        str(path.relative_to(REPO))
        for root in roots
        for path in (REPO / root).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    )


def test_build_context_keeps_what_the_build_needs() -> None:
    """The ignore file lets pyproject.toml, the readme and every package file (code, Lua, data) through."""
    needed = ["pyproject.toml", "README.md", *_package_files()]
    assert "router/lua/assign.lua" in needed
    assert "rules/examples/default.yaml" in needed
    dropped = [path for path in needed if dockerignored(path)]
    assert not dropped, f"left out of the build context: {dropped}"


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".git/HEAD",
        ".leadrouter-dev/kafka/meta.properties",
        "leadrouter.egg-info/PKG-INFO",
        "tests/conftest.py",
        "router/__pycache__/cli.cpython-311.pyc",
        "deploy/k8s/secret-example.yaml",
    ],
)
def test_build_context_leaves_out_local_state(path: str) -> None:
    """Virtualenvs, git, caches, local service data and stale build metadata stay out of the context."""
    assert dockerignored(path)
