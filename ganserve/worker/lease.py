"""A running job's lease: a heartbeat thread, and the stop conditions the loop checks.

The loop asks ``should_stop()`` before every step. It becomes true when the job is cancelled
(the row's flag, read at most every ``CANCEL_POLL_S``), when the lease is lost (another
worker took the job over: this one must not write anything more), or when the worker shuts
down (the job checkpoints and is resumed by the next worker).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import sqlalchemy as sa

from ganserve.jobs.store import JobStore

log = logging.getLogger(__name__)
CANCEL_POLL_S = 0.5
PROGRESS_EVERY_S = 1.0


class Stopped(Exception):
    """The loop stopped early: ``reason`` is 'cancelled', 'lost' or 'shutdown'."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Lease:
    def __init__(self, store: JobStore, job_id: str, owner: str, heartbeat_s: float,
                 shutdown: threading.Event, lease_s: float | None = None):
        self.store, self.job_id, self.owner = store, job_id, owner
        self.heartbeat_s, self.shutdown = heartbeat_s, shutdown
        # a worker that cannot renew stops itself one beat before another worker may take
        # the job over (lease_s after the last renewal the database saw)
        self.give_up_s = (lease_s - heartbeat_s) if lease_s else float("inf")
        self._renewed = time.monotonic()
        self.cancelled = threading.Event()
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{job_id[:8]}",
                                        daemon=True)
        self._last_cancel_poll = 0.0
        self._last_progress = 0.0

    def __enter__(self) -> Lease:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            asked = time.monotonic()            # the renewal dates from the asking
            try:
                ours, cancel = self.store.heartbeat(self.job_id, self.owner)
            except sa.exc.SQLAlchemyError as e:     # the database blinked: next beat...
                unrenewed = time.monotonic() - self._renewed
                if unrenewed < self.give_up_s:
                    log.warning("job %s: heartbeat failed: %s", self.job_id, e)
                    continue
                # ...unless it blinked so long that the job may be another worker's now
                self._give_up(unrenewed)
                return
            self._renewed = asked
            if cancel:
                self.cancelled.set()
            if not ours:
                log.warning("job %s: lease lost to another worker; stopping", self.job_id)
                self.lost.set()
                return

    def _give_up(self, unrenewed: float) -> None:
        if not self.lost.is_set():
            log.error("job %s: lease not renewed for %.0f s (database unreachable); "
                      "stopping before another worker takes the job over", self.job_id,
                      unrenewed)
            self.lost.set()

    def stop_reason(self) -> str | None:
        """'cancelled', 'lost', 'shutdown' or None (go on). Also judges the lease's age
        itself: a heartbeat stuck in a database call that hangs must not keep the job."""
        self._check_age()
        self._poll_cancel()
        self._check_age()                       # the poll itself may have hung
        if self.lost.is_set():
            return "lost"
        if self.cancelled.is_set():
            return "cancelled"
        if self.shutdown.is_set():
            return "shutdown"
        return None

    def _check_age(self) -> None:
        unrenewed = time.monotonic() - self._renewed
        if unrenewed >= self.give_up_s:
            self._give_up(unrenewed)

    def _poll_cancel(self) -> None:
        """Read the row's cancel flag, at most every CANCEL_POLL_S."""
        now = time.monotonic()
        if not self.cancelled.is_set() and now - self._last_cancel_poll >= CANCEL_POLL_S:
            self._last_cancel_poll = now
            try:
                job = self.store.get(self.job_id)
            except sa.exc.SQLAlchemyError as e:    # a blip must not fail an hours-long job
                log.warning("job %s: cancel check failed: %s", self.job_id, e)
            else:
                if job is None or job.cancel_requested:
                    self.cancelled.set()

    def should_stop(self) -> bool:
        """The training loop's cancel check. A lost lease raises instead: the loop must not
        even write its final checkpoint, which is the new holder's now."""
        reason = self.stop_reason()
        if reason == "lost":
            raise Stopped("lost")
        return reason is not None

    def check(self, *allowed: str) -> None:
        """Raise Stopped unless the stop reason (if any) is one of ``allowed``."""
        reason = self.stop_reason()
        if reason is not None and reason not in allowed:
            raise Stopped(reason)

    def confirm(self) -> None:
        """The fencing check at the moment of a side effect outside the database: raise
        Stopped unless this worker still holds the lease of a running, uncancelled job
        (and renew it, so the side effect that follows at once is inside the lease). A
        database that cannot answer is no proof: that stops too."""
        if self.lost.is_set():
            raise Stopped("lost")
        asked = time.monotonic()
        try:
            ours, cancelled = self.store.confirm_lease(self.job_id, self.owner)
        except sa.exc.SQLAlchemyError as e:
            log.warning("job %s: cannot confirm the lease (%s); not publishing", self.job_id, e)
            raise Stopped("lost") from e
        if not ours:
            raise Stopped("cancelled" if cancelled else "lost")
        self._renewed = asked

    def progress_due(self) -> bool:
        """Whether ``progress`` would write now (what to skip making until it would)."""
        return time.monotonic() - self._last_progress >= PROGRESS_EVERY_S

    def progress(self, progress: dict[str, Any], force: bool = False) -> None:
        """Write progress to the row, at most every PROGRESS_EVERY_S unless ``force``."""
        now = time.monotonic()
        if not force and now - self._last_progress < PROGRESS_EVERY_S:
            return
        self._last_progress = now
        try:
            self.store.set_progress(self.job_id, self.owner, progress)
        except sa.exc.SQLAlchemyError as e:
            log.warning("job %s: progress not stored: %s", self.job_id, e)
