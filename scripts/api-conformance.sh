#!/usr/bin/env bash
# Checks a live sandcron API against the OpenAPI document it serves (/v1/openapi.json,
# i.e. host/assets/openapi.json) with schemathesis, property-based and deterministic.
#
#   scripts/api-conformance.sh --install          install the pinned schemathesis only
#   scripts/api-conformance.sh BASE_URL [TOKEN]   e.g. http://127.0.0.1:7373 s3cret
#
# schemathesis lives in a venv under $TARGET/toolchains/ (installed once, pinned; a warm
# run does no network I/O). tests/e2e/openapi.rs runs this against a host it starts.
# Settings (deterministic generation, no cache, per-operation expectations) are in
# tests/openapi/schemathesis.toml; extra arguments after TOKEN go to `st run`.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
# Pinned: the checks' names and the config file's keys are those of 4.x.
version=4.32.5
venv="$target_dir/toolchains/schemathesis-$version"
st="$venv/bin/st"

if ! "$st" --version 2>/dev/null | grep -qF "$version"; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
fi
if [[ "${1:-}" == "--install" ]]; then
    exit 0
fi

base="${1:?usage: api-conformance.sh BASE_URL [TOKEN] [st run args...]}"
token="${2:-}"
shift $(($# >= 2 ? 2 : 1))
auth=()
if [[ -n "$token" ]]; then
    auth=(--header "Authorization: Bearer $token")
fi

# The checks, all of them but two that have nothing to check here:
# - use_after_free: needs a DELETE that removes a resource; the API deletes nothing.
# - object_level_authorization: needs two principals; the host has one token.
# ignored_auth (every protected operation refuses a request without the token) only means
# something with a token, so it is left out when there is none.
exclude=use_after_free,object_level_authorization
if [[ -z "$token" ]]; then
    exclude+=,ignored_auth
fi

# Run from a scratch folder: schemathesis writes nothing into the work tree this way.
scratch="$target_dir/openapi-conformance"
mkdir -p "$scratch"
cd "$scratch"
exec "$st" --config-file "$root/tests/openapi/schemathesis.toml" --no-color run \
    "$base/v1/openapi.json" \
    --checks all --exclude-checks "$exclude" \
    --max-examples 20 \
    --workers 2 \
    --request-timeout 10 \
    "${auth[@]}" \
    "$@"
