"""What the deployment files say, for the tests that check them against the running code."""

from __future__ import annotations

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "ganserve.json"
_METRIC = re.compile(r"\bganserve_[a-z0-9_]+")


def dashboard_exprs() -> list[str]:
    doc = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in doc["panels"] for t in p.get("targets", [])]


def dashboard_metrics() -> set[str]:
    """Every metric name (as sampled: ``_bucket``, ``_sum``... included) a panel queries."""
    return {m for expr in dashboard_exprs() for m in _METRIC.findall(expr)}


def sampled_names(metrics_text: str) -> set[str]:
    """The sample names a /metrics page holds."""
    return {line.split("{", 1)[0].split(" ", 1)[0] for line in metrics_text.splitlines()
            if line and not line.startswith("#")}
