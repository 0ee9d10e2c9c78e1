"""Dynamic batching for one graph of one model version (Ray Serve / Triton style).

Requests submit rows; a single worker task merges the rows waiting in the queue into one
ONNX Runtime run of at most ``max_rows`` rows, waiting at most ``max_delay_s`` after the
oldest row arrived for others to join. Runs happen in a thread pool, so the event loop keeps
serving HTTP while a batch computes, and the next batch gathers meanwhile. A request larger
than ``max_rows`` is split into several items. Rows of a request whose client went away
(its future cancelled) or whose deadline passed are dropped before they run.

A request may bring a ``finish`` function (e.g. encode its rows as a PNG): once its batch has
run, the finishes of that batch's requests run together in one worker thread while the next
batch gathers and runs, so the event loop only hands the finished results back. A request
split into several items is finished once its parts are joined, in a worker thread too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ganserve.service.errors import DeadlineExceeded, InvalidInput, QueueFull

log = logging.getLogger(__name__)

Feeds = dict[str, np.ndarray]
RunFn = Callable[[Feeds], np.ndarray]
Finish = Callable[[np.ndarray], Any]


@dataclass
class BatchStats:
    """What the batcher reports after each run (for Prometheus and tests)."""
    rows: int
    requests: int
    queue_wait_s: list[float]
    run_s: float


@dataclass
class _Item:
    feeds: Feeds
    rows: int
    future: asyncio.Future
    deadline: float
    finish: Finish | None = None
    enqueued: float = field(default_factory=time.monotonic)


@dataclass
class _Failed:
    """A finish function's exception, carried back to the event loop for its request."""
    error: BaseException


def pad_rows(feeds: Feeds, rows: int) -> Feeds:
    """Repeat the last row until every array has ``rows`` rows (fixed-shape runs)."""
    n = _rows(feeds)
    if n >= rows:
        return feeds
    return {k: np.concatenate([v, np.repeat(v[-1:], rows - n, axis=0)])
            for k, v in feeds.items()}


def _rows(feeds: Feeds) -> int:
    sizes = {len(v) for v in feeds.values()}
    if len(sizes) != 1:
        raise ValueError(f"feeds disagree on the row count: {sizes}")
    return sizes.pop()


class Batcher:
    def __init__(self, name: str, run: RunFn, *, max_rows: int, max_delay_s: float,
                 max_queue_rows: int, executor: Executor | None = None,
                 pad_to: int | None = None,
                 on_batch: Callable[[BatchStats], None] | None = None,
                 on_queue: Callable[[int], None] | None = None):
        self.name = name
        self._run = run
        self.max_rows = max_rows
        self.max_delay_s = max_delay_s
        self.max_queue_rows = max_queue_rows
        self.pad_to = pad_to
        self._executor = executor
        self._on_batch = on_batch
        self._on_queue = on_queue
        self._queue: deque[_Item] = deque()
        self._queued_rows = 0
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._finishing: set[asyncio.Task] = set()
        self._recent_rows_per_s = 0.0

    @property
    def queued_rows(self) -> int:
        return self._queued_rows

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._worker(),
                                                                name=f"batcher:{self.name}")

    async def close(self) -> None:
        for task in list(self._finishing):
            task.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        while self._queue:
            item = self._queue.popleft()
            if not item.future.done():
                item.future.set_exception(asyncio.CancelledError())

    def retry_after_s(self) -> int:
        if self._recent_rows_per_s <= 0:
            return 1
        return max(1, math.ceil(self._queued_rows / self._recent_rows_per_s))

    async def submit(self, feeds: Feeds, deadline: float, finish: Finish | None = None) -> Any:
        """Run ``feeds`` (arrays sharing their first axis) and return the output rows, or
        ``finish(rows)`` computed in the worker thread."""
        n = _rows(feeds)
        if n == 0:
            raise ValueError("no rows to run")
        if n > self.max_queue_rows:         # never fits, however long the client waits
            raise InvalidInput(f"{n} rows in one request, more than a model's queue holds "
                               f"(GANSERVE_MAX_QUEUE_ROWS={self.max_queue_rows}); send fewer",
                               limit=self.max_queue_rows)
        if self._queued_rows + n > self.max_queue_rows:
            raise QueueFull(f"{self.name}: queue is full ({self._queued_rows} rows waiting, "
                            f"limit {self.max_queue_rows}); retry later",
                            headers={"Retry-After": str(self.retry_after_s())})
        self.start()
        loop = asyncio.get_running_loop()
        futures = []
        whole = n <= self.max_rows
        for lo in range(0, n, self.max_rows):
            hi = min(lo + self.max_rows, n)
            fut = loop.create_future()
            self._queue.append(_Item({k: v[lo:hi] for k, v in feeds.items()}, hi - lo, fut,
                                     deadline, finish if whole else None))
            self._queued_rows += hi - lo
            futures.append(fut)
        self._report_queue()
        self._wakeup.set()
        if whole:
            return await futures[0]
        out = np.concatenate(await asyncio.gather(*futures))
        return out if finish is None else await loop.run_in_executor(self._executor, finish, out)

    def _report_queue(self) -> None:
        if self._on_queue is not None:
            self._on_queue(self._queued_rows)

    def _take_batch(self) -> list[_Item]:
        batch, rows = [], 0
        while self._queue and (not batch or rows + self._queue[0].rows <= self.max_rows):
            item = self._queue.popleft()
            self._queued_rows -= item.rows
            if item.future.done():                 # cancelled: client went away
                continue
            if time.monotonic() > item.deadline:
                item.future.set_exception(DeadlineExceeded(
                    f"{self.name}: deadline passed after "
                    f"{time.monotonic() - item.enqueued:.2f} s in the queue"))
                continue
            batch.append(item)
            rows += item.rows
        self._report_queue()
        return batch

    async def _gather_window(self) -> None:
        """Wait until the batch is full or the oldest row has waited max_delay_s."""
        oldest = self._queue[0].enqueued
        while self._queued_rows < self.max_rows:
            remaining = oldest + self.max_delay_s - time.monotonic()
            if remaining <= 0:
                return
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except TimeoutError:
                return

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await self._gather_window()
            batch = self._take_batch()
            if not batch:
                continue
            started = time.monotonic()
            feeds = {k: np.concatenate([it.feeds[k] for it in batch]) for k in batch[0].feeds}
            rows = sum(it.rows for it in batch)
            if self.pad_to:
                feeds = pad_rows(feeds, self.pad_to)
            try:
                out = await loop.run_in_executor(self._executor, self._run, feeds)
            except Exception as e:  # a failed run fails its requests, not the worker
                log.exception("%s: batch of %d rows failed", self.name, rows)
                for it in batch:
                    if not it.future.done():
                        it.future.set_exception(e)
                continue
            run_s = time.monotonic() - started
            self._recent_rows_per_s = rows / run_s if run_s > 0 else 0.0
            self._deliver(batch, out)
            if self._on_batch is not None:
                self._on_batch(BatchStats(rows, len(batch),
                                          [started - it.enqueued for it in batch], run_s))

    def _deliver(self, batch: list[_Item], out: np.ndarray) -> None:
        """Each request its rows; those with a finish get them finished in a worker thread
        first, without holding up the next batch."""
        finishing: list[tuple[_Item, np.ndarray]] = []
        lo = 0
        for it in batch:
            rows = out[lo:lo + it.rows]
            lo += it.rows
            if it.future.done():
                continue
            if it.finish is None:
                it.future.set_result(rows)
            else:
                finishing.append((it, rows))
        if finishing:
            task = asyncio.get_running_loop().create_task(self._finish(finishing))
            self._finishing.add(task)
            task.add_done_callback(self._finishing.discard)

    async def _finish(self, finishing: list[tuple[_Item, np.ndarray]]) -> None:
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(self._executor, _finish_all, finishing)
        except asyncio.CancelledError:          # closing: nobody is left to answer
            _settle(finishing, [_Failed(asyncio.CancelledError())] * len(finishing))
            raise
        except Exception as e:                  # the pool was shut down
            results = [_Failed(e)] * len(finishing)
        _settle(finishing, results)


def _settle(finishing: list[tuple[_Item, np.ndarray]], results: list[Any]) -> None:
    for (it, _), result in zip(finishing, results, strict=True):
        if it.future.done():
            continue
        if isinstance(result, _Failed):
            it.future.set_exception(result.error)
        else:
            it.future.set_result(result)


def _finish_all(finishing: list[tuple[_Item, np.ndarray]]) -> list[Any]:
    """In a worker thread: each request's finish of its rows (a failure fails its own)."""
    results: list[Any] = []
    for it, rows in finishing:
        if it.future.done():                    # its client went away meanwhile
            results.append(None)
            continue
        try:
            results.append(it.finish(rows))
        except Exception as e:
            results.append(_Failed(e))
    return results
