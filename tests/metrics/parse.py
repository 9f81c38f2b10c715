"""Parses a /metrics body from stdin with the official Prometheus client's parsers and
prints every sample as JSON: [{"name", "labels", "value", "type", "family"}].

The host serves the OpenMetrics text format (what `prometheus-client` in Rust writes and
Prometheus scrapes); it is parsed with the strict OpenMetrics parser, which rejects
malformed exposition (missing `# EOF`, bad escapes, counters without `_total`, ...).
"""
import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families

text = sys.stdin.read()
samples = []
for family in text_string_to_metric_families(text):
    for sample in family.samples:
        samples.append({
            "family": family.name,
            "type": family.type,
            "name": sample.name,
            "labels": sample.labels,
            "value": sample.value,
        })
json.dump(samples, sys.stdout)
