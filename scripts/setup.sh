#!/usr/bin/env bash
# Installs what sandcron's build needs on a fresh machine (idempotent, quick when done):
# the wasm32 Rust targets for guests, and the system tools the tests call. Sourced by
# run-example.sh and test.sh.
set -euo pipefail
installed=$(rustup target list --installed)
for target in wasm32-wasip2 wasm32-wasip1; do
    grep -qx "$target" <<<"$installed" || rustup target add "$target"
done

# Tools the end-to-end tests call (install, TLS, store health, journald tests); Debian names.
missing=()
for pair in openssl:openssl systemd-analyze:systemd man:man-db objcopy:binutils \
    readelf:binutils chattr:e2fsprogs prlimit:util-linux; do
    command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
if ((${#missing[@]})); then
    sudo=(); [ "$(id -u)" = 0 ] || sudo=(sudo)
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q "${missing[@]}" ||
        { "${sudo[@]}" apt-get update -q &&
            DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q "${missing[@]}"; }
fi
