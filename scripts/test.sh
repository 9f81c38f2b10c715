#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs toolchain targets, builds the host
# and every guest once, fails on any compiler warning, then runs unit and end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
bash scripts/setup.sh
bash scripts/build-guests.sh
bash scripts/build-lang-guests.sh   # JS, Python, C, Go: toolchains from the registries
bash scripts/browser-setup.sh >/dev/null   # Chromium + playwright-core for the dashboard test
bash scripts/api-conformance.sh --install   # schemathesis for the OpenAPI conformance test
bash scripts/alert-rules-check.sh   # promtool: the alert rules in docs/alerts and their unit tests

# Build first and fail on warnings in our own crates (cargo replays cached warnings).
build_log=$(mktemp)
cargo build --release --all-targets 2>&1 | tee "$build_log"
if grep -E '^warning' "$build_log" | grep -v 'generated [0-9]* warning' >/dev/null; then
    echo "error: the build has warnings (see above); CI fails on warnings" >&2
    exit 1
fi
cargo fmt --all -- --check
# Lints, warnings as errors (check builds only: no second compile of wasmtime's code).
cargo clippy --release --all-targets -- -D warnings

cargo test --release -- --test-threads=2
echo "test suite finished in $((SECONDS - started))s"
