"""``ganserve serve``: uvicorn with graceful drain and multi-worker metrics.

On SIGTERM/SIGINT the service reports not-ready (``/v2/health/ready`` -> 503), stops
accepting connections, lets requests in flight finish (at most ``drain_timeout_s``), then
exits. With ``--workers N`` uvicorn runs N processes; Prometheus samples go through a
shared multiprocess folder so ``/metrics`` is the sum of all workers.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile

import uvicorn

from service.observability import setup_logging

log = logging.getLogger(__name__)


class DrainingServer(uvicorn.Server):
    """Marks the app as draining as soon as a stop signal arrives."""

    def __init__(self, config: uvicorn.Config, app):
        super().__init__(config)
        self._app = app

    def handle_exit(self, sig, frame) -> None:
        if not self._app.state.draining:
            log.info("signal %s: draining (not ready), finishing requests in flight", sig)
        self._app.state.draining = True
        super().handle_exit(sig, frame)


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))       # honours taskset / container cpusets
    except AttributeError:                         # not on Linux
        return os.cpu_count() or 1


def threads_per_worker(configured: int, workers: int, cpus: int) -> int:
    """ONNX Runtime intra-op threads for each worker: the configured number, or (0 = auto)
    the cores shared out between the workers, so N workers don't each spin up a thread per
    core and oversubscribe the machine."""
    return configured if configured > 0 else max(1, cpus // max(workers, 1))


def serve(host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    from service.settings import get_settings

    settings = get_settings()          # validates the environment before anything starts
    setup_logging(settings.log_level)
    common = dict(host=host, port=port, log_config=None, access_log=False,
                  timeout_graceful_shutdown=int(settings.drain_timeout_s) or None,
                  timeout_keep_alive=5)
    if workers <= 1:
        from service.main import create_app

        app = create_app(settings)
        DrainingServer(uvicorn.Config(app, **common), app).run()
        return
    threads = threads_per_worker(settings.intra_op_threads, workers, available_cpus())
    os.environ["GANSERVE_INTRA_OP_THREADS"] = str(threads)    # read by each worker process
    log.info("%d workers, %d ONNX Runtime intra-op thread(s) each", workers, threads)
    own_dir = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        own_dir = tempfile.mkdtemp(prefix="ganserve-prom-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = own_dir
    try:
        uvicorn.run("service.main:app_factory", factory=True, workers=workers, **common)
    finally:
        if own_dir:
            shutil.rmtree(own_dir, ignore_errors=True)
