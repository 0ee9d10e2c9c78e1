"""The dynamic batcher on its own: merging, splitting, padding, queue limits, deadlines,
cancelled rows and failing runs."""

import asyncio
import time

import numpy as np
import pytest

from ganserve.service.batcher import Batcher
from ganserve.service.errors import DeadlineExceeded, InvalidInput, QueueFull


def run_rows(calls):
    def run(feeds):
        calls.append(len(feeds["x"]))
        return feeds["x"] * 2
    return run


def feeds(*vals):
    return {"x": np.asarray(vals, np.float32)[:, None]}


def far():
    return time.monotonic() + 30


async def _concurrent(b, n):
    return await asyncio.gather(*[b.submit(feeds(i), far()) for i in range(n)])


def test_concurrent_requests_merge_into_one_run():
    calls, stats = [], []
    b = Batcher("t", run_rows(calls), max_rows=64, max_delay_s=0.05, max_queue_rows=100,
                on_batch=stats.append)
    outs = asyncio.run(_concurrent(b, 10))
    assert [float(o[0, 0]) for o in outs] == [2.0 * i for i in range(10)]
    assert calls == [10] and stats[0].requests == 10 and stats[0].rows == 10


def test_full_batch_runs_without_waiting_for_the_delay():
    calls = []
    b = Batcher("t", run_rows(calls), max_rows=4, max_delay_s=5.0, max_queue_rows=100)
    t0 = time.monotonic()
    asyncio.run(_concurrent(b, 8))
    assert time.monotonic() - t0 < 2.0 and calls == [4, 4]


def test_large_request_is_split_and_reassembled():
    calls = []
    b = Batcher("t", run_rows(calls), max_rows=3, max_delay_s=0.0, max_queue_rows=100)
    out = asyncio.run(b.submit(feeds(*range(8)), far()))
    assert out[:, 0].tolist() == [2.0 * i for i in range(8)]
    assert sum(calls) == 8 and max(calls) <= 3


def test_pad_to_runs_fixed_shapes_and_trims():
    calls = []
    b = Batcher("t", run_rows(calls), max_rows=8, max_delay_s=0.0, max_queue_rows=100,
                pad_to=8)
    out = asyncio.run(b.submit(feeds(1, 2, 3), far()))
    assert calls == [8] and out[:, 0].tolist() == [2.0, 4.0, 6.0]


def test_queue_full_raises_with_retry_after():
    b = Batcher("t", run_rows([]), max_rows=8, max_delay_s=5.0, max_queue_rows=4)

    async def go():
        waiting = asyncio.ensure_future(b.submit(feeds(*range(3)), far()))
        await asyncio.sleep(0)              # 3 rows wait for company; 2 more do not fit
        try:
            await b.submit(feeds(3, 4), far())
        finally:
            waiting.cancel()
            await b.close()

    with pytest.raises(QueueFull) as e:
        asyncio.run(go())
    assert int(e.value.headers["Retry-After"]) >= 1


def test_more_rows_than_the_queue_holds_is_the_clients_error():
    """Retrying cannot help a request larger than the whole queue: not a 503."""
    b = Batcher("t", run_rows([]), max_rows=8, max_delay_s=0.0, max_queue_rows=4)
    with pytest.raises(InvalidInput, match="GANSERVE_MAX_QUEUE_ROWS=4"):
        asyncio.run(b.submit(feeds(*range(5)), far()))


def test_expired_rows_get_deadline_exceeded_and_do_not_run():
    calls = []
    b = Batcher("t", run_rows(calls), max_rows=8, max_delay_s=0.05, max_queue_rows=100)
    with pytest.raises(DeadlineExceeded):
        asyncio.run(b.submit(feeds(1), time.monotonic() - 1))
    assert calls == []


def test_cancelled_rows_are_dropped_before_running():
    calls = []

    async def scenario():
        b = Batcher("t", run_rows(calls), max_rows=8, max_delay_s=0.1, max_queue_rows=100)
        gone = asyncio.ensure_future(b.submit(feeds(1, 2, 3), far()))
        kept = asyncio.ensure_future(b.submit(feeds(4), far()))
        await asyncio.sleep(0.01)
        gone.cancel()
        return await kept

    out = asyncio.run(scenario())
    assert out[0, 0] == 8.0 and calls == [1]


def test_a_failing_run_fails_its_requests_and_the_worker_survives():
    state = {"fail": True}

    def run(f):
        if state["fail"]:
            state["fail"] = False
            raise RuntimeError("boom")
        return f["x"]

    async def scenario():
        b = Batcher("t", run, max_rows=8, max_delay_s=0.0, max_queue_rows=100)
        with pytest.raises(RuntimeError, match="boom"):
            await b.submit(feeds(1), far())
        return await b.submit(feeds(2), far())

    assert asyncio.run(scenario())[0, 0] == 2.0


def test_finish_runs_after_the_batch_and_a_failing_one_fails_alone():
    calls = []
    b = Batcher("t", run_rows(calls), max_rows=64, max_delay_s=0.05, max_queue_rows=100)

    def bad(rows):
        raise ValueError("cannot encode")

    async def go():
        return await asyncio.gather(b.submit(feeds(1), far(), lambda r: float(r[0, 0]) + 0.5),
                                    b.submit(feeds(2), far(), bad),
                                    b.submit(feeds(3), far()), return_exceptions=True)
    ok, failed, plain = asyncio.run(go())
    assert calls == [3] and ok == 2.5 and isinstance(failed, ValueError)
    assert float(plain[0, 0]) == 6.0


def test_a_slow_finish_does_not_hold_up_the_next_batch():
    from concurrent.futures import ThreadPoolExecutor
    calls = []
    b = Batcher("t", run_rows(calls), max_rows=64, max_delay_s=0.0, max_queue_rows=100,
                executor=ThreadPoolExecutor(2))
    done = {}

    def slow(rows):
        time.sleep(0.5)
        return "encoded"

    async def go():
        first = asyncio.ensure_future(b.submit(feeds(1), far(), slow))
        await asyncio.sleep(0.1)                    # its batch has run; its finish has not
        t0 = time.monotonic()
        await b.submit(feeds(2), far())
        done["second"] = time.monotonic() - t0
        done["first"] = await first
    asyncio.run(go())
    assert calls == [1, 1] and done["first"] == "encoded"
    assert done["second"] < 0.3, done                # not after the first one's 0.5 s finish


def test_split_requests_are_finished_once_joined():
    calls = []
    b = Batcher("t", run_rows(calls), max_rows=2, max_delay_s=0.0, max_queue_rows=100)
    out = asyncio.run(b.submit(feeds(1, 2, 3, 4, 5), far(), lambda r: r[:, 0].tolist()))
    assert out == [2.0, 4.0, 6.0, 8.0, 10.0] and sum(calls) == 5
