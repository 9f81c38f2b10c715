#!/usr/bin/env bash
# Builds the non-Rust example jobs (and any other job folders named as arguments, e.g. the
# scaffolds the tests make with `sandcron new`) into $TARGET/guests/:
#   hello-js.wasm                 examples/hello-js (QuickJS)
#   hello-js-starlingmonkey.wasm  the same source on the StarlingMonkey engine
#   hello-python.wasm  hello-c.wasm  hello-go.wasm
#   http-js.wasm  http-python.wasm  outbound HTTP: examples/http-js (StarlingMonkey `fetch`),
#                                   examples/http-python (componentize-py, wasi:http)
#   NAME.wasm                     each extra folder DIR, through DIR/build.sh (NAME = its name)
# Each folder is built by its own build.sh, and only when a hash of its files (plus the WIT
# and the toolchain stamps) differs from the last build's: a warm run takes a second.
# Installs the toolchains first (scripts/lang-toolchains.sh). Respects CARGO_TARGET_DIR.
# Usage: scripts/build-lang-guests.sh [DIR...]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
out="$target_dir/guests"
mkdir -p "$out"

bash "$root/scripts/lang-toolchains.sh"
# shellcheck source=/dev/null
source "$target_dir/toolchains/env.sh"
# A Rust scaffold is its own workspace: give it one shared target dir, not one per folder.
export CARGO_TARGET_DIR="$target_dir/scaffold-cargo"

# The hash of everything a build reads besides the tools themselves (through symlinks:
# http-js shares hello-js's componentize-starlingmonkey.mjs). Not __pycache__: a Python build
# writes it after the hash is taken, which made the next run build again.
inputs_hash() {
    local dir=$1
    {
        (cd "$dir" && find -L . -type f ! -name '*.wasm' ! -path './target/*' \
            ! -path '*/__pycache__/*' -print0 | sort -z |
            xargs -0 sha256sum)
        sha256sum "$root/wit/job.wit"
        cat "$target_dir"/toolchains/*.stamp
    } | sha256sum | cut -d' ' -f1
}

# build NAME DIR [build.sh flags...]: DIR/build.sh [flags] $out/NAME.wasm, unless unchanged.
build() {
    local name=$1 dir=$2 hash started=$SECONDS
    shift 2
    hash="$(inputs_hash "$dir") $*"
    if [[ -f "$out/$name.wasm" && "$(cat "$out/$name.stamp" 2>/dev/null)" == "$hash" ]]; then
        printf '%-30s %9d bytes (unchanged)\n' "$name.wasm" "$(wc -c <"$out/$name.wasm")"
        return
    fi
    rm -f "$out/$name.stamp"
    bash "$dir/build.sh" "$@" "$out/$name.wasm"
    echo "$hash" >"$out/$name.stamp"
    printf '%-30s %9d bytes (built in %ds)\n' "$name.wasm" "$(wc -c <"$out/$name.wasm")" \
        $((SECONDS - started))
}

build hello-js "$root/examples/hello-js"
build hello-js-starlingmonkey "$root/examples/hello-js" --starlingmonkey
build hello-python "$root/examples/hello-python"
build hello-c "$root/examples/hello-c"
build hello-go "$root/examples/hello-go"
build http-js "$root/examples/http-js"
build http-python "$root/examples/http-python"
for dir in "$@"; do
    dir="$(realpath "$dir")"
    build "$(basename "$dir")" "$dir"
done
