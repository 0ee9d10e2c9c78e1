"""The embedded worker of `ganserve serve` starts once the train extra is installed (make run
installs it behind the server), and never after a stop."""

from __future__ import annotations

import threading
import time

import pytest

from ganserve.cli import embedded_worker
from ganserve.cli.embedded_worker import EmbeddedWorker


class FakeProcess:
    """Stands in for the worker process: runs until signalled."""

    started: list[FakeProcess] = []

    def __init__(self, *args, **kwargs):
        self.pid = 4242
        self.done = threading.Event()
        FakeProcess.started.append(self)

    def wait(self, timeout: float | None = None) -> int:
        self.done.wait(timeout)
        return 0

    def poll(self) -> int | None:
        return 0 if self.done.is_set() else None

    def send_signal(self, sig: int) -> None:
        self.done.set()


@pytest.fixture
def installed(monkeypatch) -> dict[str, bool]:
    state = {"train": False}
    FakeProcess.started = []
    monkeypatch.setattr(embedded_worker, "training_installed", lambda: state["train"])
    monkeypatch.setattr(embedded_worker, "TRAINING_POLL_S", 0.02)
    monkeypatch.setattr(embedded_worker.subprocess, "Popen", FakeProcess)
    return state


def until(check, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False


def test_embedded_worker_waits_for_the_train_extra_then_starts(installed):
    worker = EmbeddedWorker()
    worker.start()
    time.sleep(0.2)
    assert FakeProcess.started == [] and worker.proc is None     # waiting, nothing started
    installed["train"] = True
    assert until(lambda: len(FakeProcess.started) == 1)
    worker.stop()
    assert FakeProcess.started[0].done.is_set()


def test_embedded_worker_stopped_while_waiting_starts_nothing(installed):
    worker = EmbeddedWorker()
    worker.start()
    worker.stop()
    installed["train"] = True
    assert until(lambda: not worker._watch.is_alive())
    assert FakeProcess.started == []
