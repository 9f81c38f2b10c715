#!/usr/bin/env bash
# Sets up a fresh machine, builds sandcron and the example jobs (hello-* and the http-*
# jobs that call this host's own API), collects them into a jobs
# folder (target/example-jobs) and serves it on the embedded SQLite store until Ctrl-C.
# Extra arguments go to `sandcron serve` (e.g. --store /tmp/demo.db).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build-guests.sh
bash scripts/build-lang-guests.sh   # the JS, Python, C and Go examples (toolchains cached)
cargo build --release -p sandcron
target=${CARGO_TARGET_DIR:-target}
jobs="$target/example-jobs"
mkdir -p "$jobs"
cp "$target/guests/hello-rust.wasm" examples/hello-rust/hello-rust.toml "$jobs/"
cp "$target/guests/command-rust.wasm" examples/command-rust/command-rust.toml "$jobs/"
rm -rf "$jobs/data" && cp -r examples/command-rust/data "$jobs/data"
for lang in js python c go; do
    cp "$target/guests/hello-$lang.wasm" "examples/hello-$lang/hello-$lang.toml" "$jobs/"
done
# The HTTP examples GET this host's own /healthz (their allowed_hosts name 127.0.0.1:7070).
for lang in rust js python; do
    cp "$target/guests/http-$lang.wasm" "examples/http-$lang/http-$lang.toml" "$jobs/"
done
echo "serving $jobs: dashboard on http://127.0.0.1:7070/ (or: $target/release/sandcron jobs / runs hello-rust)"
SANDCRON_LOG=${SANDCRON_LOG:-info} exec "$target/release/sandcron" serve --jobs "$jobs" "$@"
