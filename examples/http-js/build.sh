#!/usr/bin/env bash
# Builds the JS job on the StarlingMonkey engine (12 MB, ~25 s) with its `fetch` kept:
# componentize-js's API through componentize-starlingmonkey.mjs, with --http. QuickJS, the
# default of examples/hello-js, has no fetch. Tools: scripts/lang-toolchains.sh, then
# `source target/toolchains/env.sh`.
# Usage: bash build.sh [OUT.wasm]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
name=http-js
out="$(realpath -m "${1:-$here/$name.wasm}")"
wit="$here/wit"; [[ -d "$wit" ]] || wit="$here/../../wit"   # a scaffold's copy, or the repo's
node "$here/componentize-starlingmonkey.mjs" --http "$here/$name.js" "$wit" job "$out"
