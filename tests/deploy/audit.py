"""`make audit`: pip-audit over the runtime dependencies leadrouter has installed.

    .venv/bin/python -m tests.deploy.audit            # audit; exit 1 on a known vulnerability
    .venv/bin/python -m tests.deploy.audit --list     # print the pinned requirements audited

What is audited is what the image ships: leadrouter's runtime dependencies and
theirs, at the versions installed in this environment (there is no lock file yet),
not the dev tools. pip-audit runs with `--strict`, so a package it could not look up
fails the audit instead of passing silently, and with `--ignore-vuln` for each entry
of deploy/pip-audit-allow.txt; an entry without a reason is refused.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
ALLOW_LIST = REPO / "deploy" / "pip-audit-allow.txt"
# `GHSA-xxxx-xxxx-xxxx`, `PYSEC-2024-1`, `CVE-2024-1234` and the like, then the reason.
ENTRY = re.compile(r"^(?P<id>[A-Z][A-Z0-9]*-[A-Za-z0-9-]+)\s+(?P<reason>\S.*)$")


class AllowListError(ValueError):
    pass


def runtime_requirements(project: str = "leadrouter") -> list[str]:
    """`name==version` for every installed runtime dependency of `project`, transitively
    (markers evaluated for this interpreter, extras only where a requirement asks)."""
    pinned: dict[str, str] = {}
    todo: list[tuple[str, frozenset[str]]] = [(project, frozenset())]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            raise SystemExit(f"{name} is required but not installed: run `make bootstrap`") from None
        if name != project:
            pinned[canonicalize_name(dist.metadata["Name"])] = dist.version
        for line in dist.requires or []:
            req = Requirement(line)
            envs = [{"extra": extra} for extra in extras] or [{"extra": ""}]
            if req.marker is None or any(req.marker.evaluate(env) for env in envs):
                todo.append((canonicalize_name(req.name), frozenset(req.extras)))
    return [f"{name}=={version}" for name, version in sorted(pinned.items())]


def read_allow_list(path: Path = ALLOW_LIST) -> dict[str, str]:
    """Vulnerability id -> reason; blank lines and `#` comments are skipped."""
    allowed: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not line:
            continue
        match = ENTRY.match(line)
        if match is None:
            raise AllowListError(f"{path.name}:{number}: expected `VULN-ID  reason`, got {raw.strip()!r}")
        allowed[match["id"]] = match["reason"]
    return allowed


def audit_command(requirements: Path, allowed: dict[str, str]) -> list[str]:
    cmd = [sys.executable, "-m", "pip_audit", "--strict", "--progress-spinner", "off"]
    # Pinned and complete: pip need not resolve anything (no virtualenv, no downloads).
    cmd += ["--disable-pip", "--no-deps", "--requirement", str(requirements)]
    for vuln in sorted(allowed):
        cmd += ["--ignore-vuln", vuln]
    return cmd


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.deploy.audit", description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="print the pinned requirements and stop")
    parser.add_argument("--allow", type=Path, default=ALLOW_LIST, help="allow-list file")
    args = parser.parse_args(argv)
    pinned = runtime_requirements()
    if args.list:
        print("\n".join(pinned))
        return 0
    try:
        allowed = read_allow_list(args.allow)
    except AllowListError as exc:
        print(exc, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        requirements = Path(tmp) / "requirements.txt"
        requirements.write_text("".join(f"{line}\n" for line in pinned))
        print(
            f"pip-audit: {len(pinned)} runtime packages, {len(allowed)} allowed vulnerabilities", flush=True
        )
        return subprocess.run(audit_command(requirements, allowed), check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
