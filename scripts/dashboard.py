"""Write deploy/grafana/dashboards/ganserve.json: the Grafana dashboard, as code.

    python scripts/dashboard.py

Every query names only metrics the API and the workers export; tests/jobs/test_workers.py
reads their live /metrics and checks each name this dashboard uses.
"""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "dashboards" / "ganserve.json"
DS = {"type": "prometheus", "uid": "prometheus"}
GEN = 'endpoint=~"/v1/models/.*"'


def q(expr: str, legend: str) -> dict:
    return {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": legend[:8]}


def panel(title: str, targets: list[dict], unit: str = "short", kind: str = "timeseries",
          w: int = 8) -> dict:
    return {"type": kind, "title": title, "datasource": DS, "targets": targets,
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "gridPos": {"w": w, "h": 8}, "options": {}}


def quantiles(metric: str, by: str, where: str = "") -> list[dict]:
    sel = f"{{{where}}}" if where else ""
    return [q(f"histogram_quantile({p}, sum by (le{', ' + by if by else ''}) "
              f"(rate({metric}_bucket{sel}[5m])))", f"p{int(p * 100)}" + (f" {{{{{by}}}}}"
                                                                            if by else ""))
            for p in (0.5, 0.95, 0.99)]


def row(title: str) -> dict:
    return {"type": "row", "title": title, "collapsed": False, "gridPos": {"w": 24, "h": 1},
            "panels": []}


def panels() -> list[dict]:
    return [
        row("Serving"),
        panel("Requests/s by route and model", [q(
            "sum by (endpoint, model) (rate(ganserve_requests_total[1m]))",
            "{{endpoint}} {{model}}")], "reqps"),
        panel("Errors/s by route and status", [q(
            'sum by (endpoint, status) (rate(ganserve_requests_total{status=~"[45].."}[1m]))',
            "{{endpoint}} {{status}}")], "reqps"),
        panel("Generation latency", quantiles("ganserve_request_duration_seconds", "", GEN),
              "s"),
        panel("Queue wait before a batch runs", quantiles("ganserve_queue_wait_seconds",
                                                          "model"), "s"),
        panel("Batch size (rows per ONNX Runtime run)", [q(
            "sum by (model) (rate(ganserve_batch_rows_sum[5m])) / "
            "sum by (model) (rate(ganserve_batch_rows_count[5m]))", "{{model}}")]),
        panel("Images/s", [q("sum by (model) (rate(ganserve_images_generated_total[1m]))",
                             "{{model}}")], "short"),
        panel("Requests in flight", [q("sum(ganserve_requests_in_flight)", "in flight")]),
        panel("Rows waiting per model", [q("sum by (model) (ganserve_queue_rows)",
                                           "{{model}}")]),
        panel("Model versions loaded", [q(
            "count by (model) (count by (model, version) (ganserve_model_info))",
                                          "{{model}}")], kind="stat"),
        row("Jobs"),
        # every API replica reports the same job counts (from the records): max, not sum
        panel("Jobs by state", [q("sum by (state) (max by (queue, state) (ganserve_jobs))",
                                  "{{state}}")]),
        panel("Queue length", [q('max by (queue) (ganserve_jobs{state="queued"})',
                                 "{{queue}}")]),
        panel("Jobs finished/min", [q(
            "sum by (type, state) (rate(ganserve_jobs_finished_total[5m])) * 60",
            "{{type}} {{state}}")]),
        panel("Job duration", quantiles("ganserve_job_duration_seconds", "type"), "s"),
        panel("Fine-tune images/s", [q("sum(ganserve_fine_tune_images_per_second)",
                                       "images/s")]),
        panel("Jobs running in workers", [q("sum by (type) (ganserve_jobs_running)",
                                            "{{type}}")]),
        row("Processes"),
        panel("CPU (cores) by scrape job", [q(
            "sum by (job) (rate(ganserve_process_cpu_seconds[1m]))", "{{job}}")]),
        panel("Resident memory by scrape job", [q(
            "sum by (job) (ganserve_process_resident_memory_bytes)", "{{job}}")], "bytes"),
        panel("GPU memory used (on a GPU)", [q(
            "max by (instance, gpu) (ganserve_gpu_memory_used_bytes)", "{{instance}} gpu{{gpu}}")],
            "bytes"),
        panel("GPU utilization (on a GPU)", [q(
            "max by (instance, gpu) (ganserve_gpu_utilization_ratio)", "{{instance}} gpu{{gpu}}")],
            "percentunit"),
    ]


def layout(items: list[dict]) -> list[dict]:
    x = y = 0
    for i, p in enumerate(items, 1):
        p["id"] = i
        w, h = p["gridPos"]["w"], p["gridPos"]["h"]
        if p["type"] == "row" or x + w > 24:
            x, y = 0, y + (h if x else 0)
        p["gridPos"].update(x=x, y=y)
        x += w
        if p["type"] == "row":
            x, y = 0, y + 1
    return items


def dashboard() -> dict:
    return {"uid": "ganserve", "title": "ganserve", "tags": ["ganserve"], "timezone": "browser",
            "schemaVersion": 39, "version": 1, "refresh": "30s",
            "time": {"from": "now-1h", "to": "now"}, "panels": layout(panels()),
            "templating": {"list": []}, "annotations": {"list": []}}


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(dashboard(), indent=1) + "\n")
    print(OUT)
