#!/usr/bin/env bash
# Installs the official Prometheus Python client (its text-format parsers are what the
# metrics test checks /metrics with) into a venv under target/toolchains/. Idempotent and
# instant when warm. Prints the venv's python path.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${CARGO_TARGET_DIR:-$root/target}/toolchains/metrics-venv"
# Pinned: the parser's behaviour is what the test relies on.
version="0.23.1"
if ! "$venv/bin/python" -c "import prometheus_client, sys; sys.exit(prometheus_client.__version__ != '$version')" 2>/dev/null; then
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check "prometheus-client==$version" >&2
fi
echo "$venv/bin/python"
