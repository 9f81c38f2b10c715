#!/usr/bin/env bash
# Checks the shipped Prometheus alert rules (docs/alerts/): syntax with `promtool check
# rules`, behaviour with the unit tests in sandcron.rules.test.yml (`promtool test rules`).
# promtool comes from Debian's `prometheus` package, installed when missing. That every
# metric the rules use is one the host exports is checked by host/tests/alert_rules.rs.
set -euo pipefail
cd "$(dirname "$0")/../docs/alerts"
if ! command -v promtool >/dev/null; then
    apt-get install -y --no-install-recommends prometheus >/dev/null \
        || { apt-get update >/dev/null && apt-get install -y --no-install-recommends prometheus >/dev/null; }
fi
promtool check rules sandcron.rules.yml
promtool test rules sandcron.rules.test.yml
