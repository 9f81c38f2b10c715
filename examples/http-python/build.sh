#!/usr/bin/env bash
# Builds the Python job with componentize-py (~18 MB, ~25 s) against the `job-http` world of
# wit/ here: the job world plus wasi:http/outgoing-handler, whose WASI packages (0.2.12,
# as wasmtime-wasi-http 48 ships them) are in wit/deps/. Tools: scripts/lang-toolchains.sh,
# then `source target/toolchains/env.sh`.
# Usage: bash build.sh [OUT.wasm]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$(realpath -m "${1:-$here/http-python.wasm}")"
cd "$here"
componentize-py -d "$here/wit" -w job-http componentize app -o "$out" >/dev/null
