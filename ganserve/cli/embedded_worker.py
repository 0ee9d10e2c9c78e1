"""Embedded mode's worker: ``ganserve serve`` with no broker configured starts one
``ganserve worker`` process beside the API, at lower CPU priority so inference stays
responsive, and stops it on shutdown (running jobs checkpoint and resume at the next start).
The worker also dies with its parent (PR_SET_PDEATHSIG), so a killed server leaves no orphan.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time

from ganserve.extras import training_installed

log = logging.getLogger(__name__)
NICE = 10
PR_SET_PDEATHSIG = 1
STOP_TIMEOUT_S = 60.0
TRAINING_POLL_S = 2.0


def _child_setup() -> None:
    os.nice(NICE)
    # its own process group: a Ctrl-C or a group-wide SIGTERM reaches the server, which
    # stops the worker in order (its main process first); signalled with the server, the
    # Celery pool's children died under their parent's shutdown and it waited to be killed
    os.setsid()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class EmbeddedWorker:
    """The worker process, restarted (after 1, 2, 4 ... 60 s) if it dies: its running job
    resumes from its checkpoint."""

    def __init__(self, log_level: str = "INFO"):
        self.log_level = log_level
        self.proc: subprocess.Popen | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()        # a spawn and a stop never cross
        self._watch = threading.Thread(target=self._keep_alive, name="embedded-worker",
                                       daemon=True)

    def _spawn(self) -> bool:
        """Start the worker process -> False once stop() has begun (nothing started)."""
        with self._lock:
            if self._stopping.is_set():
                return False
            cmd = [sys.executable, "-m", "ganserve", "worker", "--concurrency", "1",
                   "--log-level", self.log_level]
            self.proc = subprocess.Popen(cmd, preexec_fn=_child_setup)
        log.info("jobs: embedded mode: started a worker (pid %d, nice +%d)", self.proc.pid,
                 NICE)
        return True

    def start(self) -> None:
        if training_installed():
            self._spawn()
        self._watch.start()

    def _wait_for_training(self) -> bool:
        """Until the train extra is installed (``make run`` installs it in the background
        while the API serves) -> False if stopped first."""
        log.info("jobs: the embedded worker starts once torch and the training side are "
                 "installed (pip install torch==2.13.0 'ganserve[train]')")
        while not training_installed():
            if self._stopping.wait(TRAINING_POLL_S):
                return False
        return self._spawn()

    def _keep_alive(self) -> None:
        if self.proc is None and not self._wait_for_training():
            return
        backoff = 1.0
        while not self._stopping.is_set():
            assert self.proc is not None
            started = time.monotonic()
            code = self.proc.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - started > 60:
                backoff = 1.0
            log.error("jobs: the embedded worker (pid %d) exited with %s; restarting in "
                      "%.0f s", self.proc.pid, code, backoff)
            if self._stopping.wait(backoff):
                return
            backoff = min(backoff * 2, 60.0)
            if not self._spawn():
                return

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM (a running job checkpoints and stops), then SIGKILL after ``timeout_s``."""
        with self._lock:                    # no spawn after this point
            self._stopping.set()
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("jobs: the embedded worker did not stop in %.0f s; killing it",
                        timeout_s)
            self.proc.kill()
            self.proc.wait()
        log.info("jobs: embedded worker stopped")
