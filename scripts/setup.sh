#!/usr/bin/env bash
# Installs what sandcron's build needs on a fresh machine (idempotent, quick when done):
# the wasm32 Rust targets for guests. Sourced by run-example.sh and test.sh.
set -euo pipefail
installed=$(rustup target list --installed)
for target in wasm32-wasip2 wasm32-wasip1; do
    grep -qx "$target" <<<"$installed" || rustup target add "$target"
done
