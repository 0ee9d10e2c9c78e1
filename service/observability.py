"""Prometheus metrics and request-id logging.

Metrics work with several uvicorn workers: when ``PROMETHEUS_MULTIPROC_DIR`` is set (``ganserve
serve --workers N`` sets it), every process writes its samples there and ``/metrics`` merges
them (prometheus_client's multiprocess mode); gauges sum the live processes.
"""

from __future__ import annotations

import contextvars
import logging
import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

REQUESTS = Counter("ganserve_requests_total", "HTTP requests by endpoint, model and status",
                   ["endpoint", "model", "status"])
REQUEST_LATENCY = Histogram("ganserve_request_duration_seconds", "Request latency",
                            ["endpoint", "model"], buckets=LATENCY_BUCKETS)
QUEUE_WAIT = Histogram("ganserve_queue_wait_seconds", "Time rows wait before their batch runs",
                       ["model", "version", "graph"], buckets=LATENCY_BUCKETS)
INFERENCE = Histogram("ganserve_inference_seconds", "ONNX Runtime run time per batch",
                      ["model", "version", "graph"], buckets=LATENCY_BUCKETS)
BATCH_ROWS = Histogram("ganserve_batch_rows", "Rows per ONNX Runtime run (batch size)",
                       ["model", "version", "graph"], buckets=ROW_BUCKETS)
BATCH_REQUESTS = Histogram("ganserve_batch_requests", "Requests merged into one run",
                           ["model", "version", "graph"], buckets=ROW_BUCKETS)
IMAGES = Counter("ganserve_images_generated_total", "Images generated",
                 ["model", "version"])
IN_FLIGHT = Gauge("ganserve_requests_in_flight", "Requests being handled",
                  multiprocess_mode="livesum")
QUEUE_ROWS = Gauge("ganserve_queue_rows", "Rows waiting to run", ["model", "version"],
                   multiprocess_mode="livesum")
MODEL_INFO = Gauge("ganserve_model_info", "Loaded model versions (1 = loaded)",
                   ["model", "version", "family", "provider", "deterministic"],
                   multiprocess_mode="max")


def metrics_payload() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s [req %(request_id)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
