#!/usr/bin/env bash
# Builds the JS job with `jco componentize`: the QuickJS engine by default (1.6 MB, ~3 s),
# or StarlingMonkey with --starlingmonkey (12 MB, ~25 s, through componentize-js's API: see
# componentize-starlingmonkey.mjs). QuickJS is built without its async support: the host
# does not enable the component-model-async feature it would need. Tools:
# scripts/lang-toolchains.sh, then `source target/toolchains/env.sh`.
# Usage: bash build.sh [--starlingmonkey] [OUT.wasm]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
name=hello-js
engine=quickjs
[[ "${1:-}" == --starlingmonkey ]] && { engine=starlingmonkey; shift; }
out="$(realpath -m "${1:-$here/$name.wasm}")"
wit="$here/wit"; [[ -d "$wit" ]] || wit="$here/../../wit"   # a scaffold's copy, or the repo's
if [[ $engine == quickjs ]]; then
    jco componentize "$here/$name.js" --wit "$wit" --world-name job --backend quickjs \
        --backend-qjs-disable-async -o "$out" >/dev/null
else
    node "$here/componentize-starlingmonkey.mjs" "$here/$name.js" "$wit" job "$out"
fi
