#!/usr/bin/env bash
# Builds the Rust job: one cargo build for wasm32-wasip2, where the SDK's bindings make
# the cdylib a component of the sandcron:job world (no other tool).
# Usage: bash build.sh [OUT.wasm]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$(realpath -m "${1:-$here/{{name}}.wasm}")"
cd "$here"
cargo build --quiet --release --target wasm32-wasip2
cp "${CARGO_TARGET_DIR:-$here/target}/wasm32-wasip2/release/{{crate}}.wasm" "$out"
