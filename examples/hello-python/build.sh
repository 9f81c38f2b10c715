#!/usr/bin/env bash
# Builds the Python job with componentize-py (bindings generated on the fly from the WIT,
# CPython and app.py snapshotted into one ~18 MB component, ~25 s). Tools:
# scripts/lang-toolchains.sh, then `source target/toolchains/env.sh`.
# Usage: bash build.sh [OUT.wasm]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$(realpath -m "${1:-$here/hello-python.wasm}")"
wit="$here/wit"; [[ -d "$wit" ]] || wit="$here/../../wit"   # a scaffold's copy, or the repo's
cd "$here"
componentize-py -d "$wit" -w job componentize app -o "$out" >/dev/null
