"""One advisory file lock helper (``flock``) for everything that serialises on a data dir:
migrations of a SQLite job database, a model's publisher, a host's one fine-tune."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


@contextlib.contextmanager
def _thread_lock(path: Path, while_waiting: Callable[[], None] | None,
                 poll_s: float) -> Iterator[None]:
    """The lock among this process's threads: flock excludes them only where it is per open
    file (local disks); on NFS and other network filesystems it may be per process."""
    with _THREAD_LOCKS_GUARD:
        lock = _THREAD_LOCKS.setdefault(str(path.parent.resolve() / path.name),
                                        threading.Lock())
    if while_waiting is None:
        lock.acquire()
    else:
        while not lock.acquire(timeout=poll_s):
            while_waiting()
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def file_lock(path: Path, while_waiting: Callable[[], None] | None = None,
              poll_s: float = 1.0) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created with its folder) against other threads
    and processes. With ``while_waiting`` the wait polls, calling it each ``poll_s`` (it
    may raise to give up); without, it blocks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _thread_lock(path, while_waiting, poll_s), _flock(path, while_waiting, poll_s):
        yield


@contextlib.contextmanager
def _flock(path: Path, while_waiting: Callable[[], None] | None,
           poll_s: float) -> Iterator[None]:
    # never through a symlink (the device lock lives in a shared temp dir, where anyone may
    # plant one), and never truncating: the lock is the file's flock, not its contents
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise OSError(errno.ELOOP, f"lock file {path} is a symlink; refusing to follow "
                          "it (remove it)") from None
        raise
    with os.fdopen(fd, "r+") as f:
        if while_waiting is None:
            fcntl.flock(f, fcntl.LOCK_EX)
        else:
            while True:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    while_waiting()
                    time.sleep(poll_s)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
