#!/usr/bin/env bash
# Build every Rust guest fixture and example, and collect them in $TARGET/guests/:
#   hello-rust.wasm       SDK example (component, world sandcron:job/job)
#   http-rust.wasm        SDK outbound HTTP example (same world; imports wasi:http)
#   command-rust.wasm     WASI command as a component (exports wasi:cli/run)
#   command-rust-p1.wasm  the same command as a preview1 core module (exports _start)
#   hello-rust-p1.wasm    the SDK example built for wasm32-wasip1 by mistake (a core module
#                         with the job world's exports: the host must say "use wasip2")
#   probe.wasm            the end-to-end tests' probe (component, world sandcron:job/job)
#   other-world.wasm      a component of the wrong world (the host must reject it)
# One cargo invocation per target, so a warm run is a couple of no-op cargo calls.
# Respects CARGO_TARGET_DIR. Usage: scripts/build-guests.sh (from any directory).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
out="$target_dir/guests"

rustup target add wasm32-wasip2 wasm32-wasip1 >/dev/null 2>&1 ||
    rustup target add wasm32-wasip2 wasm32-wasip1

# The workspace's release profile keeps line tables for the host's sake; in a guest that
# means std's DWARF too (~3 MB per component instead of ~0.2 MB). Strip it from the guest
# leaf crates only: a per-package override does not touch any dependency's build.
strip=()
for pkg in hello-rust http-rust command-rust probe other-world; do
    strip+=(--config "profile.release.package.$pkg.strip=\"debuginfo\"")
done

cargo build --release --target wasm32-wasip2 "${strip[@]}" \
    -p hello-rust -p http-rust -p command-rust -p probe -p other-world
cargo build --release --target wasm32-wasip1 "${strip[@]}" -p command-rust -p hello-rust

mkdir -p "$out"
p2="$target_dir/wasm32-wasip2/release"
p1="$target_dir/wasm32-wasip1/release"
copy() {
    cp "$1" "$out/$2"
    printf '%-22s %9d bytes\n' "$2" "$(wc -c <"$out/$2")"
}
copy "$p2/hello_rust.wasm" hello-rust.wasm
copy "$p2/http_rust.wasm" http-rust.wasm
copy "$p2/command-rust.wasm" command-rust.wasm
copy "$p1/command-rust.wasm" command-rust-p1.wasm
copy "$p1/hello_rust.wasm" hello-rust-p1.wasm
copy "$p2/probe.wasm" probe.wasm
copy "$p2/other_world.wasm" other-world.wasm
