"""Write k8s/components/monitoring/prometheusrule.yaml: compose's alert rules
(deploy/prometheus/alerts.yml, unit-tested by promtool) as the Prometheus Operator's
PrometheusRule, so Kubernetes and compose alert on the same rules.

    python scripts/prometheus_rule.py

tests/deploy checks the committed file is what this writes.
"""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "deploy" / "prometheus" / "alerts.yml"
OUT = REPO / "k8s" / "components" / "monitoring" / "prometheusrule.yaml"
HEADER = """\
# WRITTEN BY scripts/prometheus_rule.py from deploy/prometheus/alerts.yml: edit that file
# (and its promtool tests, alerts_test.yml), then run the script. The ServiceMonitors set
# jobLabel so the rules' job names (ganserve-api, ganserve-worker) match here as in compose.
# kube-prometheus-stack picks rules by its `release` label: add it, or set
# ruleSelectorNilUsesHelmValues: false.
"""


def prometheus_rule() -> dict:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": {"name": "ganserve"}, "spec": {"groups": groups}}


def render() -> str:
    return HEADER + yaml.safe_dump(prometheus_rule(), sort_keys=False, width=100)


if __name__ == "__main__":
    OUT.write_text(render())
    print(OUT)
