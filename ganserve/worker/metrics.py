"""A worker's own Prometheus metrics, served on GANSERVE_WORKER_METRICS_PORT.

Celery's prefork children run the jobs, so the metrics use prometheus_client's multiprocess
mode: ``ganserve worker`` points PROMETHEUS_MULTIPROC_DIR at a fresh folder before anything
imports prometheus_client, and the main process serves the merged view.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector

log = logging.getLogger(__name__)
FINISHED = Counter("ganserve_jobs_finished_total", "jobs that ended, by type and final state",
                   ["type", "state"])
DURATION = Histogram("ganserve_job_duration_seconds", "start to end of finished jobs",
                     ["type", "state"],
                     buckets=(5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 21600))
RUNNING = Gauge("ganserve_jobs_running", "jobs running in this worker", ["type"],
                multiprocess_mode="livesum")
IMAGES_PER_S = Gauge("ganserve_fine_tune_images_per_second", "training speed of the "
                     "fine-tunes running now", multiprocess_mode="livesum")


@contextlib.contextmanager
def running(job_type: str) -> Iterator[None]:
    RUNNING.labels(job_type).inc()
    try:
        yield
    finally:
        RUNNING.labels(job_type).dec()
        if job_type == "fine-tune":
            IMAGES_PER_S.set(0)


def finished(job_type: str, state: str, started_at: dt.datetime | None) -> None:
    FINISHED.labels(job_type, state).inc()
    if started_at is not None:
        seconds = (dt.datetime.now(dt.UTC) - started_at).total_seconds()
        DURATION.labels(job_type, state).observe(max(0.0, seconds))


def serve(host: str, port: int) -> bool:
    """Serve the merged metrics of this worker's processes on ``host:port`` -> whether it
    could (a port taken by another worker on the host is a warning, not a dead worker)."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as e:
        log.warning("worker metrics not served: %s:%d: %s (set "
                    "GANSERVE_WORKER_METRICS_HOST / _PORT)", host, port, e.strerror)
        return False
    return True
