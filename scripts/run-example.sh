#!/usr/bin/env bash
# Sets up a fresh machine, builds sandcron and the example jobs, and runs the Rust SDK
# example once in the sandbox (state persists in ~/.local/share/sandcron/state.db, so
# every invocation counts one more run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build-guests.sh
cargo build --release -p sandcron
target=${CARGO_TARGET_DIR:-target}
exec "$target/release/sandcron" run "$target/guests/hello-rust.wasm" \
    --manifest examples/hello-rust/hello-rust.toml "$@"
