"""Prometheus metrics and request-id logging.

Metrics work with several uvicorn workers: when ``PROMETHEUS_MULTIPROC_DIR`` is set (``ganserve
serve --workers N`` sets it), every process writes its samples there and ``/metrics`` merges
them (prometheus_client's multiprocess mode). Gauges are ``livesum``: the supervisor calls
``mark_process_dead`` for a worker that died, so its in-flight requests stop counting.

Series that describe what is loaded now are not kept in the multiprocess files, which cannot
forget a label set: ``ganserve_model_info`` is built at scrape time from the answering
worker's registry (every worker loads the same store), and ``ganserve_queue_rows`` is
filtered to the versions that are loaded, so a removed version disappears from both.
"""

from __future__ import annotations

import contextvars
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

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
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ganserve.jobs.queue import QUEUES as JOB_QUEUES
from ganserve.logs import quiet_libraries

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
MODEL_INFO_NAME = "ganserve_model_info"
VERSION_SCOPED = {"ganserve_queue_rows"}      # series dropped once their version is gone


class LoadedModel:
    """One loaded version as the info gauge sees it."""

    def __init__(self, name: str, version: str, family: str, provider: str,
                 deterministic: bool):
        self.labels = (name, version, family, provider, str(deterministic).lower())


class _Scrape(Collector):
    """The process's (or all processes') samples, filtered to loaded versions, plus
    ``ganserve_model_info`` from the registry."""

    def __init__(self, source: Collector | CollectorRegistry, loaded: list[LoadedModel],
                 jobs: dict[tuple[str, str], int] | None = None,
                 datasets: tuple[int, int] | None = None):
        self.source, self.loaded, self.jobs, self.datasets = source, loaded, jobs, datasets
        self.keys = {m.labels[:2] for m in loaded}

    def collect(self) -> Iterator[Metric]:
        for metric in self.source.collect():
            if metric.name in VERSION_SCOPED:
                metric.samples = [s for s in metric.samples
                                  if (s.labels.get("model"), s.labels.get("version"))
                                  in self.keys]
            yield metric
        info = GaugeMetricFamily(MODEL_INFO_NAME, "Loaded model versions (1 = loaded)",
                                 labels=["model", "version", "family", "provider",
                                         "deterministic"])
        for m in self.loaded:
            info.add_metric(list(m.labels), 1.0)
        yield info
        if self.jobs is not None:
            yield self._jobs()
        if self.datasets is not None:
            # from the data dir, like the job gauges: every replica reports the same numbers
            yield GaugeMetricFamily("ganserve_datasets", "uploaded datasets stored",
                                    value=self.datasets[0])
            yield GaugeMetricFamily("ganserve_dataset_bytes", "bytes of uploaded datasets "
                                    "stored (converted arrays, previews, records)",
                                    value=self.datasets[1])

    def _jobs(self) -> GaugeMetricFamily:
        """Queue lengths and running jobs, from the job records (every replica agrees)."""
        fam = GaugeMetricFamily("ganserve_jobs", "jobs by queue and state (queued: the queue "
                                "length; running)", labels=["queue", "state"])
        for queue in JOB_QUEUES:
            for state in ("queued", "running"):
                fam.add_metric([queue, state], float(self.jobs.get((queue, state), 0)))
        return fam


def metrics_payload(loaded: Iterable[LoadedModel] = (),
                    jobs: dict[tuple[str, str], int] | None = None,
                    datasets: tuple[int, int] | None = None) -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        source: Collector | CollectorRegistry = multiprocess.MultiProcessCollector(None)
    else:
        source = REGISTRY
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Scrape(source, list(loaded), jobs, datasets))
    return generate_latest(registry), CONTENT_TYPE_LATEST


def mark_worker_dead(pid: int) -> None:
    """Forget a dead worker's live gauges (in flight, queue rows)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid)


def drop_dead_workers_gauges() -> None:
    """At start: live gauges left in a reused PROMETHEUS_MULTIPROC_DIR by processes that are
    gone (a supervisor that was killed) would otherwise be summed forever."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder:
        return
    for path in Path(folder).glob("gauge_live*_*.db"):
        pid = path.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            multiprocess.mark_process_dead(int(pid))


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def setup_logging(level: str, verbose: bool = False) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s [req %(request_id)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    quiet_libraries(verbose)
