#!/usr/bin/env bash
# Builds the C job: bindings from the WIT (`wit-bindgen c`), a wasm32-wasi reactor module
# (clang + lld + wasi-libc), then a component (`wasm-tools component new` with wasmtime's
# preview1 reactor adapter, $SANDCRON_WASI_ADAPTER). Tools: scripts/lang-toolchains.sh,
# then `source target/toolchains/env.sh`.  Usage: bash build.sh [OUT.wasm]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
name=hello-c
out="$(realpath -m "${1:-$here/$name.wasm}")"
wit="$here/wit"; [[ -d "$wit" ]] || wit="$here/../../wit"   # a scaffold's copy, or the repo's
gen="$(mktemp -d)"; trap 'rm -rf "$gen"' EXIT
wit-bindgen c --world job --out-dir "$gen" "$wit" 2>&1 | { grep -v "^Generating" || true; }
clang --target=wasm32-wasi --sysroot=/usr -mexec-model=reactor -O2 -Wall -Werror \
    -Wl,-z,stack-size=1048576 -I "$gen" -o "$gen/core.wasm" \
    "$here/$name.c" "$gen/job.c" "$gen/job_component_type.o"
wasm-tools component new "$gen/core.wasm" -o "$out" \
    --adapt "wasi_snapshot_preview1=${SANDCRON_WASI_ADAPTER:?run: source target/toolchains/env.sh}"
