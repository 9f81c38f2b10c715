#!/usr/bin/env bash
# What a cached load costs, side by side for several `sandcron` binaries: for each guest,
# each binary gets its own cache (filled by one run), then `sandcron run --json` is run N
# times per binary, the binaries taking turns so that machine noise hits them alike. Prints
# the medians of the report's `load.elapsed_ms` (open, verify and map the precompiled
# code), of the whole process's wall time, and of its CPU time (user + system, which a busy
# machine stretches less than wall time).
#
# Usage: scripts/bench-cache-load.sh [-n N] BIN [BIN...]   (default N = 31)
#   e.g. keep the old commit's binary as /tmp/sandcron-old, build the new one, then
#   scripts/bench-cache-load.sh /tmp/sandcron-old "$CARGO_TARGET_DIR/release/sandcron"
# Guests come from $CARGO_TARGET_DIR/guests (hello-rust: scripts/build-guests.sh;
# hello-python, hello-js-starlingmonkey: scripts/build-lang-guests.sh); missing ones are
# skipped. GUESTS="a b" picks others.
set -euo pipefail

runs=31
if [[ ${1:-} == -n ]]; then
    runs=$2
    shift 2
fi
(($# > 0)) || { sed -n '2,15p' "$0"; exit 2; }
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export GUESTS_DIR="${CARGO_TARGET_DIR:-$root/target}/guests" RUNS=$runs
export GUESTS="${GUESTS:-hello-rust hello-python hello-js-starlingmonkey}"

exec python3 - "$@" <<'EOF'
import json, os, resource, statistics, subprocess, sys, tempfile, time

bins, runs = sys.argv[1:], int(os.environ["RUNS"])
work = tempfile.mkdtemp(prefix="sandcron-bench-cache-")


def one(binary, wasm, cache):
    """One `sandcron run --json`: (load ms, wall ms, cpu ms, cache status)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    out = subprocess.run(
        [binary, "run", wasm, "--json", "--state", f"{work}/state.db", "--cache-dir", cache],
        capture_output=True, check=True, text=True,
    ).stdout
    wall = (time.perf_counter() - started) * 1e3
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1e3
    load = json.loads(out)["load"]
    return load["elapsed_ms"], wall, cpu, load["cache"]


print(f"{'guest':<36} {'binary':<36} {'load p50':>10} {'process p50':>12} {'cpu p50':>9}")
for guest in os.environ["GUESTS"].split():
    wasm = f"{os.environ['GUESTS_DIR']}/{guest}.wasm"
    if not os.path.isfile(wasm):
        print(f"{guest}: skipped ({wasm} not built)")
        continue
    caches = [f"{work}/cache-{guest}-{n}" for n in range(len(bins))]
    for binary, cache in zip(bins, caches):
        one(binary, wasm, cache)  # fills the cache
    samples = [[] for _ in bins]
    for _ in range(runs):
        for binary, cache, sample in zip(bins, caches, samples):
            *numbers, status = one(binary, wasm, cache)
            assert status == "hit", f"{binary}: expected a cache hit, got {status}"
            sample.append(numbers)
    label = f"{guest} ({os.path.getsize(wasm) // 1000} KB)"
    for binary, sample in zip(bins, samples):
        load, wall, cpu = (statistics.median(column) for column in zip(*sample))
        print(f"{label:<36} {binary:<36} {load:>7.2f} ms {wall:>9.1f} ms {cpu:>6.1f} ms")
print(f"({runs} runs per binary and guest, taking turns; medians; load average "
      f"{os.getloadavg()[0]:.1f} at the end)")
subprocess.run(["rm", "-rf", work], check=True)
EOF
