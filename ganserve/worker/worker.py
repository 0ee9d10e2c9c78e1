"""``ganserve worker``: a Celery worker (prefork) running fine-tune, evaluate and project jobs.

The main process serves the worker's /metrics, runs the reaper (stale jobs back to the
queue) and, on SIGTERM, tells running jobs to checkpoint and stop (they resume on the next
worker); the children run the jobs.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import subprocess
import sys
from typing import Any

from celery import Celery, signals

from ganserve import process_metrics
from ganserve.cpus import quota_threads
from ganserve.jobs.migrate import upgrade
from ganserve.jobs.queue import QUEUES, TASK_OF, WORKER_READY, make_celery, publish
from ganserve.jobs.records import JobType
from ganserve.jobs.running import RunningList
from ganserve.jobs.store import JobStore
from ganserve.webhooks import WebhookSender
from ganserve.worker.runner import Reaper, WorkerContext, busy, run_job
from ganserve.worker.settings import WorkerSettings

log = logging.getLogger(__name__)


def create_worker_app(settings: WorkerSettings) -> tuple[Celery, WorkerContext]:
    """The Celery app with the job tasks registered, and what they run with."""
    from ganserve.worker.evaluate import evaluate_job
    from ganserve.worker.fine_tune import fine_tune
    from ganserve.worker.project import project_job

    app = make_celery(settings)
    store = JobStore.from_url(settings.resolved_database_url())
    ctx = WorkerContext(settings, store, app, multiprocessing.get_context("fork").Event(),
                        WebhookSender(settings, store.get),
                        RunningList(None if settings.embedded else settings.resolved_broker_url()))

    @app.task(name=TASK_OF[JobType.FINE_TUNE], acks_late=True, reject_on_worker_lost=True)
    def fine_tune_task(job_id: str) -> None:
        run_job(ctx, job_id, fine_tune)

    @app.task(name=TASK_OF[JobType.EVALUATE], acks_late=True, reject_on_worker_lost=True)
    def evaluate_task(job_id: str) -> None:
        run_job(ctx, job_id, evaluate_job)

    @app.task(name=TASK_OF[JobType.PROJECT], acks_late=True, reject_on_worker_lost=True)
    def project_task(job_id: str) -> None:
        run_job(ctx, job_id, project_job)

    return app, ctx


def _idle() -> bool:
    """No job running or reserved in this worker (main process view)."""
    from celery.worker import state

    return not state.active_requests and not state.reserved_requests


def _child_sigterm(ctx: WorkerContext) -> None:
    """A SIGTERM sent to a pool child itself (a process-group or cgroup-wide stop): with a
    job, "checkpoint and stop", not "die now and lose the steps since the last checkpoint";
    idle, stop at once (ignoring it left idle children, and the stop, hanging until killed)."""
    ctx.shutdown.set()
    if not busy():
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)


def _connect_signals(ctx: WorkerContext, metrics: tuple[str, int], queues: list[str]) -> None:
    """``metrics``: the (host, port) of the worker's /metrics; port 0 is off."""
    reaper = Reaper(ctx, lambda job: publish(ctx.celery, job), queues, _idle)

    @signals.worker_process_init.connect(weak=False)
    def _child(**_: Any) -> None:
        ctx.store.after_fork()
        process_metrics.start()
        threads = quota_threads()           # torch would start a thread per host core
        if threads:
            import torch
            torch.set_num_threads(threads)
        signal.signal(signal.SIGTERM, lambda *_: _child_sigterm(ctx))

    @signals.worker_process_shutdown.connect(weak=False)
    def _child_exit(**_: Any) -> None:
        if ctx.webhooks is not None:    # the last events (a job's "completed") go out first
            ctx.webhooks.close(timeout=10.0)

    @signals.worker_ready.connect(weak=False)
    def _ready(**_: Any) -> None:
        process_metrics.start()
        host, port = metrics
        if port:
            from ganserve.worker import metrics as worker_metrics
            if worker_metrics.serve(host, port):
                log.info("worker metrics on http://%s:%d/metrics", host, port)
        reaper.start()
        log.info("%s (pid %d): taking jobs from %s", WORKER_READY, os.getpid(), ",".join(queues))

    @signals.worker_shutting_down.connect(weak=False)
    def _shutting_down(**_: Any) -> None:
        ctx.shutdown.set()          # running jobs checkpoint at their next step and stop
        reaper.stop.set()
        if ctx.webhooks is not None:
            ctx.webhooks.close(timeout=5.0)


# asked in a child process: CUDA initialised in this one before Celery forks its pool would
# leave the children unable to use the GPU
CUDA_PROBE = ("from ganserve.training.loop import RunError, training_device\n"
              "try:\n    training_device('cuda')\n"
              "except RunError as e:\n    raise SystemExit(str(e))\n")


def check_cuda_training() -> None:
    """GANSERVE_TRAIN_DEVICE=cuda where torch sees no GPU: refuse to start (ValueError, one
    line) rather than take fine-tunes and fail each one."""
    r = subprocess.run([sys.executable, "-c", CUDA_PROBE], capture_output=True, text=True,
                       timeout=300)
    if r.returncode != 0:
        lines = (r.stderr.strip() or f"the probe exited {r.returncode}").splitlines()
        raise ValueError(f"GANSERVE_TRAIN_DEVICE=cuda: {lines[-1]}")


def run_worker(settings: WorkerSettings, queues: list[str], concurrency: int,
               loglevel: str = "INFO") -> None:
    """Migrate the job database, then run the worker until SIGTERM/SIGINT."""
    unknown = [q for q in queues if q not in QUEUES]
    if unknown:
        raise ValueError(f"unknown queue {', '.join(unknown)}; queues: {', '.join(QUEUES)}")
    if "train" in queues and settings.train_device == "cuda":
        check_cuda_training()
    upgrade(JobStore.from_url(settings.resolved_database_url()).engine)
    app, ctx = create_worker_app(settings)
    _connect_signals(ctx, (settings.worker_metrics_host, settings.worker_metrics_port), queues)
    mode = "embedded (SQLite broker)" if settings.embedded else "broker " + _safe(
        settings.broker_url or "")
    log.info("worker: queues %s, concurrency %d, %s, jobs in %s", ",".join(queues),
             concurrency, mode, settings.jobs_dir)
    # -q: no banner (the log says the same in one line above), unless --verbose
    app.worker_main([*([] if settings.verbose else ["-q"]), "worker",
                     f"--queues={','.join(queues)}",
                     f"--concurrency={concurrency}", "--pool=prefork",
                     f"--loglevel={loglevel}", "--without-gossip", "--without-mingle",
                     f"--hostname=ganserve-{os.getpid()}@%h"])


def _safe(url: str) -> str:
    """The URL without its password, for the log."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url
