#!/usr/bin/env bash
# Installs what the dashboard's headless-browser test (tests/e2e/dashboard.rs) needs:
# Debian's Chromium at /usr/bin/chromium, Node.js and npm if missing, and playwright-core
# at the version pinned by tests/browser/package-lock.json, into
# $CARGO_TARGET_DIR/toolchains/browser/node_modules. Idempotent: a few milliseconds when
# everything is already there. Prints the node_modules path on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

packages=()
[ -x /usr/bin/chromium ] || packages+=(chromium)
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)
if [ ${#packages[@]} -gt 0 ]; then
    echo "browser-setup: installing ${packages[*]} from Debian" >&2
    as_root apt-get update -q >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${packages[@]}" >&2
fi
[ -x /usr/bin/chromium ] || { echo "browser-setup: /usr/bin/chromium is still missing" >&2; exit 1; }

target=${CARGO_TARGET_DIR:-target}
mkdir -p "$target/toolchains/browser"
dir=$(cd "$target/toolchains/browser" && pwd)
if ! cmp -s tests/browser/package-lock.json "$dir/package-lock.json" \
    || [ ! -f "$dir/node_modules/playwright-core/package.json" ]; then
    echo "browser-setup: installing playwright-core into $dir" >&2
    cp tests/browser/package.json tests/browser/package-lock.json "$dir/"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi
echo "$dir/node_modules"
