"""Running one delivered job: take the lease, run the work, record how it ended.

Every outcome lands in the job row: succeeded with a result, failed with a message a user can
act on (the traceback goes to the log under the job id), cancelled (files removed), or left
for another worker (shutdown: it resumes from its checkpoint; lease lost: someone else has it).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from celery import Celery
from celery.exceptions import Reject, SoftTimeLimitExceeded

from ganserve.jobs.queue import QueueUnreachable, publish
from ganserve.jobs.records import Job, JobState, now
from ganserve.jobs.running import RunningList
from ganserve.jobs.store import JobStore
from ganserve.webhooks import WebhookSender
from ganserve.worker import metrics
from ganserve.worker.lease import Lease, Stopped
from ganserve.worker.settings import WorkerSettings

log = logging.getLogger(__name__)


class JobError(Exception):
    """A job that cannot succeed as asked; the message tells the user what to change."""


@dataclass
class WorkerContext:
    settings: WorkerSettings
    store: JobStore
    celery: Celery
    shutdown: Any           # a multiprocessing.Event: set in the main process, seen by children
    webhooks: WebhookSender | None = None
    running: RunningList = field(default_factory=lambda: RunningList(None))

    def notify(self, job: Job, event: str) -> None:
        if self.webhooks is not None:
            self.webhooks.notify(job, event)

    def job_folder(self, job_id: str) -> Path:
        return self.settings.jobs_dir / job_id


Work = Callable[[Job, Lease, WorkerContext], dict[str, Any]]


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def remove_job_files(ctx: WorkerContext, job_id: str) -> None:
    shutil.rmtree(ctx.job_folder(job_id), ignore_errors=True)


def worker_deaths(n: int) -> str:
    return (f"the job's worker stopped {n} times without finishing it (killed? out of "
            "memory?); see the worker logs for this job id")


_running: set[str] = set()        # jobs this process is running now


def busy() -> bool:
    """Whether this process runs a job now (its SIGTERM then means "checkpoint and stop")."""
    return bool(_running)


HAND_BACK_PAUSE_S = 2.0     # before a worker cut off from the store returns a message


def run_job(ctx: WorkerContext, job_id: str, work: Work) -> None:
    """The body of every task: deliveries of a finished, cancelled or leased job do nothing."""
    _running.add(job_id)
    try:
        owner = owner_id()
        claimed = _claim(ctx, job_id, owner)
        if claimed is not None:
            _start(ctx, claimed, owner, work)
    finally:
        _running.discard(job_id)


def _claim(ctx: WorkerContext, job_id: str, owner: str) -> Job | None:
    """Take the job's lease -> the job, or None when this delivery has nothing to do. A
    worker that cannot reach the store hands the message back to the queue (after a pause,
    so that a worker that can reach it is the one that takes it) instead of acking it away:
    a partitioned worker must not eat the messages of jobs it cannot run."""
    try:
        return _claim_or_drop(ctx, job_id, owner)
    except sa.exc.OperationalError as e:
        log.warning("job %s: job store unreachable (%s); message handed back to its queue",
                    job_id, str(e).splitlines()[0])
        ctx.shutdown.wait(HAND_BACK_PAUSE_S)
        raise Reject("job store unreachable", requeue=True) from e


def _claim_or_drop(ctx: WorkerContext, job_id: str, owner: str) -> Job | None:
    job = ctx.store.get(job_id)
    if job is None:
        log.warning("job %s: no such job (deleted?); message dropped", job_id)
        return None
    if job.terminal:
        log.info("job %s: already %s; duplicate delivery dropped", job_id, job.state)
        if job.state == JobState.CANCELLED:
            remove_job_files(ctx, job_id)
        return None
    claimed = ctx.store.claim(job_id, owner, ctx.settings.job_lease_s)
    if claimed is None:
        log.info("job %s: another worker holds its lease (or it is being cancelled); "
                 "duplicate delivery dropped", job_id)
    return claimed


def _start(ctx: WorkerContext, claimed: Job, owner: str, work: Work) -> None:
    job_id = claimed.id
    if claimed.attempts > ctx.settings.job_max_attempts:
        msg = worker_deaths(claimed.attempts - 1)
        _ended(ctx, ctx.store.finish(job_id, owner, JobState.FAILED, error=msg), claimed,
               JobState.FAILED)
        return
    log.info("job %s: %s %s started (attempt %d)", job_id, claimed.type, claimed.model,
             claimed.attempts)
    ctx.notify(claimed, "start")
    ctx.running.add(job_id)
    try:
        with Lease(ctx.store, job_id, owner, ctx.settings.job_heartbeat_s,
                   ctx.shutdown, ctx.settings.job_lease_s) as lease, metrics.running(claimed.type):
            _run_claimed(ctx, claimed, lease, owner, work)
    finally:        # ended, failed, stopped or back in its queue: no longer running here
        ctx.running.remove(job_id)


def _run_claimed(ctx: WorkerContext, job: Job, lease: Lease, owner: str, work: Work) -> None:
    store, jid = ctx.store, job.id
    try:
        result = work(job, lease, ctx)
    except Stopped as e:
        _stopped(ctx, job, owner, e.reason)
        return
    except SoftTimeLimitExceeded:
        msg = (f"the job ran past GANSERVE_JOB_SOFT_TIME_LIMIT_S "
               f"({ctx.settings.job_soft_time_limit_s:.0f} s); ask for fewer steps")
        _ended(ctx, store.finish(jid, owner, JobState.FAILED, error=msg), job, JobState.FAILED)
        return
    except JobError as e:
        log.warning("job %s failed: %s", jid, e)
        _ended(ctx, store.finish(jid, owner, JobState.FAILED, error=str(e)), job, JobState.FAILED)
        return
    except Exception as e:
        log.exception("job %s failed with an internal error", jid)
        msg = (f"internal error ({type(e).__name__}: {str(e)[:300]}); the worker's log has "
               f"the traceback under job {jid}")
        _ended(ctx, store.finish(jid, owner, JobState.FAILED, error=msg), job, JobState.FAILED)
        return
    if _ended(ctx, store.finish(jid, owner, JobState.SUCCEEDED, result=result), job,
              JobState.SUCCEEDED):
        after_success(ctx, jid)


def after_success(ctx: WorkerContext, job_id: str) -> None:
    """Once the row says succeeded: the checkpoint is no longer needed to resume (the
    version holds the weights); the progress grids and metrics stay for the record."""
    (ctx.job_folder(job_id) / "run" / "checkpoint.pt").unlink(missing_ok=True)


def _stopped(ctx: WorkerContext, job: Job, owner: str, reason: str) -> None:
    if reason == "cancelled":
        # files first: a client that reads "cancelled" finds them gone (a cancelled job is
        # never claimed again, so nothing needs them meanwhile)
        remove_job_files(ctx, job.id)
        moved = ctx.store.finish(job.id, owner, JobState.CANCELLED, error="cancelled by request")
        _ended(ctx, moved, job, JobState.CANCELLED)
    elif reason == "shutdown":
        ctx.store.release(job.id, owner)
        # back into its queue's list at once: the next worker resumes it without waiting for
        # another worker's reaper, and a queue-length autoscaler (KEDA) sees it waiting even
        # when this was the last worker (the lease lets one delivery run it)
        try:
            publish(ctx.celery, job)
        except QueueUnreachable:
            log.warning("job %s: could not put it back in its queue; a worker's reaper will "
                        "requeue it", job.id)
        log.info("job %s: worker shutting down; checkpoint kept, the job is back in its "
                 "queue and resumes on the next worker", job.id)
    else:
        log.info("job %s: lease lost; this worker leaves it to the new holder", job.id)


def _ended(ctx: WorkerContext, moved: bool, job: Job, state: JobState) -> bool:
    if moved:
        log.info("job %s: %s", job.id, state.value)
        metrics.finished(job.type, state.value, job.started_at)
        ctx.notify(job, "completed")
    else:
        log.info("job %s: ended as %s here, but its row had already moved on", job.id,
                 state.value)
    return moved


class Reaper(threading.Thread):
    """In each worker's main process: finds running jobs whose heartbeat went stale (their
    worker died) and sends them to the queue again, where they resume from their checkpoint;
    and, while this worker is idle, queued jobs of its queues that waited far longer than an
    idle worker takes to receive a message (their message was lost: the API died between
    the record and the send, the broker restarted empty) and sends them again. Duplicates
    are harmless: the lease lets one delivery run the job."""

    def __init__(self, ctx: WorkerContext, publish: Callable[[Job], None],
                 queues: list[str], idle: Callable[[], bool]):
        super().__init__(name="job-reaper", daemon=True)
        self.ctx, self.publish, self.queues, self.idle = ctx, publish, queues, idle
        self.stop = threading.Event()

    def run(self) -> None:
        period = max(1.0, self.ctx.settings.job_lease_s / 2)
        while True:
            try:
                self.sweep()
            except Exception as e:
                log.warning("job reaper: %s", e)
            if self.stop.wait(period):
                return

    def sweep(self) -> None:
        self.sweep_stale()
        if self.idle():
            self.sweep_lost_messages()
        self.ctx.running.reconcile(self._is_running)

    def _is_running(self, job_id: str) -> bool:
        job = self.ctx.store.get(job_id)
        return job is not None and job.state == JobState.RUNNING

    def sweep_lost_messages(self) -> None:
        after = max(60.0, 2 * self.ctx.settings.job_lease_s)
        for job in self.ctx.store.waiting(self.queues, after):
            if not self.ctx.store.touch_if_unchanged(job):
                continue                    # another worker's reaper got there first
            try:
                self.publish(job)
            except Exception as e:
                log.warning("job %s: could not resend (%s); will retry", job.id, e)
                continue
            log.info("job %s: queued %.0f s with idle workers; its message was lost, sent "
                     "again", job.id, (now() - job.updated_at).total_seconds())

    def sweep_stale(self) -> None:
        store, lease_s = self.ctx.store, self.ctx.settings.job_lease_s
        for job in store.stale(lease_s):
            if job.cancel_requested:        # files first, as in _stopped
                remove_job_files(self.ctx, job.id)
                if store.finish(job.id, None, JobState.CANCELLED,
                                error="cancelled by request"):
                    self.ctx.notify(job, "completed")
                continue
            if job.attempts >= self.ctx.settings.job_max_attempts:
                if store.finish(job.id, None, JobState.FAILED,
                                error=worker_deaths(job.attempts)):
                    metrics.finished(job.type, JobState.FAILED.value, job.started_at)
                    self.ctx.notify(job, "completed")
                continue
            if not store.requeue_stale(job, lease_s):
                continue
            try:
                self.publish(job)
            except Exception as e:
                log.warning("job %s: could not requeue (%s); will retry", job.id, e)
                store.mark_stale(job.id)
                continue
            log.info("job %s: its worker stopped heartbeating; requeued to resume from its "
                     "checkpoint", job.id)
