"""Shutdown, slow clients, disconnects and dead workers, against a real `ganserve serve`
(1 and 2 workers). Loads stay on loopback and are bounded in count and time."""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import threading
import time
from dataclasses import dataclass

import httpx
import pytest

from tests.service.conftest import add_version, copy_store
from tests.service.test_server import metric

DC = "baby-dcgan"


@dataclass
class Outcome:
    started: float
    ended: float
    result: int | str          # status code, or the transport error's class name


def _fire(url: str, body: dict, out: list[Outcome], stop: threading.Event) -> None:
    """One client: a new connection per request, until stopped."""
    while not stop.is_set():
        t0 = time.monotonic()
        try:
            r = httpx.post(url, json=body, timeout=20)
            res: int | str = r.status_code
            if r.status_code == 503:
                assert r.headers.get("retry-after"), r.headers
        except httpx.TimeoutException:
            res = "TIMEOUT"
        except httpx.HTTPError as e:
            res = type(e).__name__
        out.append(Outcome(t0, time.monotonic(), res))


def _probe_ready(url: str, out: list[Outcome], stop: threading.Event) -> None:
    while not stop.is_set():
        t0 = time.monotonic()
        try:
            res: int | str = httpx.get(url + "/v2/health/ready", timeout=5).status_code
        except httpx.TimeoutException:
            res = "TIMEOUT"
        except httpx.HTTPError as e:
            res = type(e).__name__
        out.append(Outcome(t0, time.monotonic(), res))
        time.sleep(0.02)


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_under_load_finishes_in_flight_and_hangs_nothing(store, server_factory,
                                                                 workers):
    # every batch waits 1 s for company, so requests sent 0.5 s before the signal are
    # surely accepted and waiting in a batch when it comes
    srv = server_factory(store, workers=workers, GANSERVE_MAX_BATCH_DELAY_MS="1000",
                         GANSERVE_LOG_LEVEL="INFO")
    url = f"{srv.url}/v1/models/{DC}/sample"
    loads: list[Outcome] = []
    held: list[Outcome] = []
    probes: list[Outcome] = []
    stop, once = threading.Event(), threading.Event()
    threads = [threading.Thread(target=_fire, args=(url, {"seeds": [i]}, loads, stop))
               for i in range(6)]
    threads.append(threading.Thread(target=_probe_ready, args=(srv.url, probes, stop)))
    for t in threads:
        t.start()
    time.sleep(1.5)
    in_flight = [threading.Thread(target=_fire, args=(url, {"seeds": [100 + i]}, held, once))
                 for i in range(6)]
    for t in in_flight:
        t.start()
    once.set()                                 # each sends exactly one request
    time.sleep(0.5)
    serving = srv.workers() if workers > 1 else [srv.proc.pid]
    t_term = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    time.sleep(2.5)                            # keep the load on through the drain
    stop.set()
    for t in threads + in_flight:
        t.join(30)
    assert srv.proc.wait(30) in (0, -signal.SIGTERM)
    assert not srv.workers()
    assert [o.result for o in held] == [200] * 6, held
    assert all(o.ended > t_term for o in held)   # they really were in flight
    # the rest: served, 503 + Retry-After, or refused at connect; none hung
    allowed = {200, 503, "ConnectError"}
    assert all(o.result in allowed for o in loads), {o.result for o in loads} - allowed
    # readiness: not ready within moments of the signal (it travels supervisor -> workers),
    # never ready again after that, never hung
    late = [o for o in probes if o.started > t_term + 0.3]
    assert late and all(o.result in (503, "ConnectError") for o in late), late
    after = sorted((o for o in probes if o.started > t_term), key=lambda o: o.started)
    first_no = next(i for i, o in enumerate(after) if o.result != 200)
    assert all(o.result != 200 for o in after[first_no:]), after
    before = [o for o in probes if o.ended < t_term]
    assert before and all(o.result == 200 for o in before)
    log = srv.output()
    # every process that served drained, each once (a line written twice by the log file's
    # writers would not make a third process)
    drained = re.findall(r"draining \(not ready\) in pid (\d+)", log)
    assert sorted({int(p) for p in drained}) == sorted(serving), log[-3000:]
    assert "Traceback" not in log


def _slow_body(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"POST /v1/models/baby-dcgan/sample HTTP/1.1\r\nHost: x\r\n"
              b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"seeds\"")
    return s


def _read_response(s: socket.socket, timeout: float) -> bytes:
    s.settimeout(timeout)
    data = b""
    try:
        while chunk := s.recv(65536):
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return data


def _closed_by_server(s: socket.socket, timeout: float) -> bool:
    """True when the server closes the connection (EOF or reset) within ``timeout``."""
    s.settimeout(timeout)
    try:
        return s.recv(65536) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_slow_body_gets_408_and_its_connection_closed(store, server_factory):
    srv = server_factory(store, GANSERVE_BODY_TIMEOUT_S="1")
    s = _slow_body(srv.port)
    t0 = time.monotonic()
    data = _read_response(s, 10)              # the server closes it: recv returns b""
    assert time.monotonic() - t0 < 5
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), data[:300]
    assert b'"request_timeout"' in body and b'"request_id"' in body
    assert b"connection: close" in head.lower()


def test_slow_bodies_do_not_hold_a_graceful_shutdown(store, server_factory):
    srv = server_factory(store, GANSERVE_BODY_TIMEOUT_S="2", GANSERVE_DRAIN_TIMEOUT_S="30")
    socks = [_slow_body(srv.port) for _ in range(50)]
    time.sleep(0.3)
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(20) in (0, -signal.SIGTERM)
    assert time.monotonic() - t0 < 15, "slow bodies held the 30 s drain"
    for s in socks:
        s.close()


def test_disconnect_storm_counts_499_never_500(store, server_factory):
    srv = server_factory(store, GANSERVE_LOG_LEVEL="INFO")
    body = (b'{"start": {"seed": 1}, "end": {"seed": 2}, "steps": 16, "scale": 4, '
            b'"format": "gif"}')
    req = (b"POST /v1/models/baby-dcgan/interpolate HTTP/1.1\r\nHost: x\r\n"
           b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
           % (len(body), body))
    rng = random.Random(0)
    for _ in range(300):
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.sendall(req)
        time.sleep(rng.uniform(0.002, 0.012))  # cut as the result is about ready
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()                              # RST, like a client that went away
    time.sleep(1.0)
    text = httpx.get(srv.url + "/metrics").text
    assert metric(text, "ganserve_requests_total", status="500") == 0
    assert metric(text, "ganserve_requests_in_flight") == 1        # this scrape
    counted = {c: metric(text, "ganserve_requests_total", model=DC, status=str(c))
               for c in (200, 499)}
    assert sum(counted.values()) == 300 and counted[499] > 0, counted
    log = srv.output()
    assert "Traceback" not in log and "ERROR" not in log, log[-3000:]


def test_dead_worker_is_replaced_and_its_gauges_dropped(store, server_factory):
    srv = server_factory(store, workers=2, GANSERVE_MAX_BATCH_DELAY_MS="1000")
    pids = srv.workers()
    assert len(pids) == 2
    results: list[int | str] = []

    def hold():
        try:
            results.append(httpx.post(f"{srv.url}/v1/models/{DC}/sample",
                                      json={"seeds": [1]}, timeout=10).status_code)
        except httpx.HTTPError as e:
            results.append(type(e).__name__)

    threads = [threading.Thread(target=hold) for _ in range(6)]
    for t in threads:
        t.start()
    time.sleep(0.4)                            # in flight, waiting for their batch
    os.kill(pids[0], signal.SIGKILL)
    for t in threads:
        t.join(15)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 30 and (len(srv.workers()) < 2 or pids[0] in srv.workers()):
        time.sleep(0.2)
    assert len(srv.workers()) == 2 and pids[0] not in srv.workers()
    srv.wait_ready()
    # the dead worker's in-flight requests stop counting: only this scrape is in flight
    for _ in range(4):                         # whichever worker answers
        text = httpx.get(srv.url + "/metrics").text
        assert metric(text, "ganserve_requests_in_flight") == 1, text[:2000]
    assert "died" in srv.output()


def test_worker_exits_when_its_supervisor_is_killed(store, server_factory):
    srv = server_factory(store, workers=2)
    pids = srv.workers()
    assert len(pids) == 2
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait(10)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 15 and any(os.path.exists(f"/proc/{p}") for p in pids):
        time.sleep(0.2)
    assert not any(os.path.exists(f"/proc/{p}") for p in pids), "orphaned workers"


def test_removed_version_leaves_the_metrics(store, server_factory, tmp_path):
    import shutil
    root = copy_store(store, tmp_path / "s")
    srv = server_factory(root, workers=2, GANSERVE_POLL_INTERVAL_S="0.2")
    add_version(root / DC, "1", "2")

    def info(version: str) -> float:
        return metric(httpx.get(srv.url + "/metrics").text, "ganserve_model_info",
                      model=DC, version=version)

    t0 = time.monotonic()
    while time.monotonic() - t0 < 20 and not all(info("2") for _ in range(4)):
        time.sleep(0.2)
    assert httpx.post(f"{srv.url}/v1/models/{DC}/sample",
                      json={"version": "2"}).status_code == 200
    shutil.rmtree(root / DC / "2")
    t0 = time.monotonic()
    while time.monotonic() - t0 < 20 and any(info("2") for _ in range(4)):
        time.sleep(0.2)
    for _ in range(4):
        text = httpx.get(srv.url + "/metrics").text
        assert 'version="2"' not in "\n".join(
            ln for ln in text.splitlines()
            if ln.startswith(("ganserve_model_info", "ganserve_queue_rows"))), text[:3000]
        assert metric(text, "ganserve_model_info", model=DC, version="1") == 1
    assert "Clearing labels" not in srv.output()


def test_silent_and_slowloris_connections_are_closed(store, server_factory):
    srv = server_factory(store, workers=2, GANSERVE_HEADER_TIMEOUT_S="1")
    silent = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(20)]
    slow = socket.create_connection(("127.0.0.1", srv.port))
    t0 = time.monotonic()
    for byte in b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n":      # one byte per 0.1 s
        try:
            slow.send(bytes([byte]))
        except OSError:
            break
        time.sleep(0.1)
    assert _closed_by_server(slow, 5) and time.monotonic() - t0 < 4.5
    assert all(_closed_by_server(s, 5) for s in silent)
    assert time.monotonic() - t0 < 6
    # a client that is quick is served, keep-alive included
    with httpx.Client() as c:
        assert c.get(srv.url + "/v2/health/live").status_code == 200
        time.sleep(1.5)                          # idle between requests: keep-alive's 5 s
        assert c.get(srv.url + "/v2/health/live").status_code == 200
