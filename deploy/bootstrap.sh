#!/usr/bin/env bash
# Set up a fresh Debian machine for leadrouter development; run from the repo root.
# Idempotent and quiet when everything is in place:
#   1. system packages: redis-server, prometheus/promtool, Java 17 and Maven (Kafka jars),
#      openssl (throwaway certificates for the TLS tests)
#   2. .venv with `pip install -e '.[dev]'`, redone only when pyproject.toml changes
#   3. the Kafka broker jars, cached under $LEADROUTER_CACHE_DIR or ~/.cache/leadrouter
set -euo pipefail

die() {
    printf 'bootstrap: %s\n' "$*" >&2
    exit 1
}

# Run a command with its output hidden, showing it only if the command fails.
quietly() {
    local what=$1 log
    shift
    log=$(mktemp)
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        die "$what failed: $*"
    fi
    rm -f "$log"
}

[[ -f pyproject.toml && -f deploy/kafka/pom.xml ]] || die "run me from the repo root"

# --- 1. system packages ------------------------------------------------------
pick_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3 python3.13 python3.12 python3.11; do
        [[ -n $candidate ]] && command -v "$candidate" >/dev/null || continue
        if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            printf '%s\n' "$candidate"
            return 0
        fi
    done
    return 1
}

missing=()
need() { # need <command> <debian package>
    command -v "$1" >/dev/null 2>&1 || missing+=("$2")
}
need redis-server redis-server
need prometheus prometheus
need promtool prometheus
need amtool prometheus-alertmanager
need java openjdk-17-jre-headless
need mvn maven
need openssl openssl
need python3 python3
python=$(pick_python || true)
if [[ ! -x .venv/bin/python && -n $python ]] && ! "$python" -c 'import ensurepip' 2>/dev/null; then
    missing+=(python3-venv) # Debian splits venv support out of python3
fi

if ((${#missing[@]})); then
    # Unique, in first-seen order (prometheus and promtool share a package).
    mapfile -t packages < <(printf '%s\n' "${missing[@]}" | awk '!seen[$0]++')
    if [[ $(id -u) -ne 0 ]]; then
        printf 'bootstrap: missing system packages; as root run:\n' >&2
        printf '  apt-get update && apt-get install -y %s\n' "${packages[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    quietly "apt-get update" apt-get update -q
    quietly "apt-get install" apt-get install -y -q --no-install-recommends "${packages[@]}"
    python=$(pick_python || true)
fi

# --- 2. virtualenv -------------------------------------------------------------
if [[ ! -x .venv/bin/python ]]; then
    [[ -n $python ]] || die "no python3 >= 3.11 found (set PYTHON=/path/to/python3.11+)"
    quietly "creating .venv" "$python" -m venv .venv
fi
stamp=.venv/.leadrouter-pyproject.sha256
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [[ ! -f $stamp || $(<"$stamp") != "$want" ]]; then
    quietly "installing leadrouter" .venv/bin/python -m pip install -q -e '.[dev]'
    printf '%s\n' "$want" >"$stamp"
fi

# --- 3. Kafka broker jars --------------------------------------------------------
quietly "fetching the Kafka jars" .venv/bin/python -c \
    'from router.devinfra.kafka import ensure_kafka_jars; ensure_kafka_jars()'
