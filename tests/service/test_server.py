"""A real uvicorn process: batching, determinism under concurrency, hot swap under load,
queue-full 503 and SIGTERM drain. Loads stay on loopback, bounded in count and time."""

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.service.conftest import REPO, add_version, copy_store

DC, SG = "baby-dcgan", "baby-stylegan"


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def post_many(url: str, bodies: list[dict], workers: int) -> list[httpx.Response]:
    with httpx.Client(timeout=30) as c, ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda b: c.post(url, json=b), bodies))


def test_concurrent_requests_merge_into_batches(store, server_factory):
    srv = server_factory(store, GANSERVE_MAX_BATCH_DELAY_MS="30")
    url = f"{srv.url}/v1/models/{DC}/sample"
    rs = post_many(url, [{"seeds": [i]} for i in range(48)], workers=16)
    assert all(r.status_code == 200 for r in rs)
    text = httpx.get(srv.url + "/metrics").text
    runs = metric(text, "ganserve_batch_rows_count", model=DC, graph="generator")
    rows = metric(text, "ganserve_batch_rows_sum", model=DC, graph="generator")
    assert rows >= 48
    assert rows / runs > 2, f"{rows} rows in {runs} runs: requests did not merge"
    merged = metric(text, "ganserve_batch_requests_sum", model=DC, graph="generator")
    assert merged >= 48


def test_determinism_under_concurrency_and_batch_composition(store, server_factory):
    srv = server_factory(store, GANSERVE_MAX_BATCH_DELAY_MS="10")
    seeds = [7, 99, 123456, 2**32 - 1]
    solo = {}
    with httpx.Client(timeout=30) as c:
        for name in (DC, SG):
            for s in seeds:
                solo[name, s] = c.post(f"{srv.url}/v1/models/{name}/sample",
                                       json={"seeds": [s]}).content
    # the same seeds again, mixed into concurrent traffic of other sizes
    bodies = []
    for i in range(24):
        bodies.append({"seeds": [seeds[i % 4]]})
        bodies.append({"seeds": list(range(1000 + 10 * i, 1000 + 10 * i + (i % 7) + 1))})
    for name in (DC, SG):
        rs = post_many(f"{srv.url}/v1/models/{name}/sample", bodies, workers=12)
        for i in range(0, len(bodies), 2):
            assert rs[i].content == solo[name, seeds[(i // 2) % 4]], (name, i)


def test_hot_swap_under_load_fails_no_request(store, server_factory, tmp_path):
    root = copy_store(store, tmp_path / "s")
    srv = server_factory(root, GANSERVE_POLL_INTERVAL_S="0.2")
    stop = threading.Event()
    results: list[tuple[int, str]] = []

    def load():
        with httpx.Client(timeout=30) as c:
            t_end = time.monotonic() + 20
            while not stop.is_set() and time.monotonic() < t_end:
                r = c.post(f"{srv.url}/v1/models/{SG}/sample", json={"n": 2})
                results.append((r.status_code, r.headers.get("x-model-version", "")))

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    add_version(root / SG, "1", "2")
    t0 = time.monotonic()
    while time.monotonic() - t0 < 15 and not any(v == "2" for _, v in results[-8:]):
        time.sleep(0.1)
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join()
    assert results and all(code == 200 for code, _ in results)
    versions = [v for _, v in results]
    assert "1" in versions and "2" in versions
    assert versions[-1] == "2"


def test_queue_full_answers_503_with_retry_after(store, server_factory):
    # Batches of up to 64 rows wait 1 s for company, but only 8 rows may wait: the first two
    # n=4 requests fill the queue and sit there, so the rest (sent well within that second, even
    # on a loaded machine) must be refused rather than merged.
    srv = server_factory(store, GANSERVE_MAX_QUEUE_ROWS="8", GANSERVE_MAX_BATCH_DELAY_MS="1000",
                         GANSERVE_MAX_BATCH_ROWS="64")
    rs = post_many(f"{srv.url}/v1/models/{SG}/sample", [{"n": 4}] * 12, workers=12)
    codes = [r.status_code for r in rs]
    assert 200 in codes and 503 in codes
    full = next(r for r in rs if r.status_code == 503)
    assert full.json()["error"]["code"] == "queue_full"
    assert int(full.headers["retry-after"]) >= 1


def test_sigterm_drains_requests_in_flight(store, server_factory):
    srv = server_factory(store, GANSERVE_MAX_BATCH_DELAY_MS="1000", GANSERVE_LOG_LEVEL="INFO")
    results = []

    def slow_request():
        # waits ~1 s in the batch queue, so SIGTERM arrives while it is in flight
        results.append(httpx.post(f"{srv.url}/v1/models/{DC}/sample", json={"seeds": [1]},
                                  timeout=30))

    threads = [threading.Thread(target=slow_request) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    srv.proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join()
    assert [r.status_code for r in results] == [200, 200, 200]
    # uvicorn re-raises the signal after a graceful shutdown: "killed by SIGTERM" is normal
    assert srv.proc.wait(30) in (0, -signal.SIGTERM)
    assert "draining" in srv.output()


def test_multiple_workers_share_metrics(store, server_factory):
    srv = server_factory(store, workers=2)
    with httpx.Client(timeout=30) as c:
        for i in range(10):
            assert c.post(f"{srv.url}/v1/models/{DC}/sample", json={"seeds": [i]}
                          ).status_code == 200
        text = c.get(srv.url + "/metrics").text
    n = metric(text, "ganserve_requests_total", model=DC, status="200")
    assert n == 10, text[:500]
    assert re.search(r"ganserve_model_info\{[^}]*baby-dcgan", text)


def test_disconnected_client_rows_are_dropped(store, server_factory):
    import socket
    srv = server_factory(store, GANSERVE_MAX_BATCH_DELAY_MS="800")
    body = b'{"seeds": [1, 2, 3, 4, 5]}'
    s = socket.create_connection(("127.0.0.1", srv.port))
    s.sendall(b"POST /v1/models/baby-dcgan/sample HTTP/1.1\r\nHost: x\r\n"
              b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
              % (len(body), body))
    time.sleep(0.2)
    s.close()                                   # gone before its batch runs
    time.sleep(1.5)
    text = httpx.get(srv.url + "/metrics").text
    assert metric(text, "ganserve_requests_total", model=DC, status="499") == 1
    assert metric(text, "ganserve_batch_rows_sum", model=DC, graph="generator") == 0


def _established(pid: int, port: int) -> int:
    """Established connections to ``port`` whose socket ``pid`` holds (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        if int(f[1].split(":")[1], 16) == port and f[3] == "01" and f[9] in inodes:
            count += 1
    return count


def _listening(port: int) -> int:
    """Sockets listening on ``port`` (a worker listens once it is ready)."""
    return sum(1 for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
               if int(line.split()[1].split(":")[1], 16) == port and line.split()[3] == "0A")


def test_workers_share_a_burst_of_connections(store, server_factory):
    """One listening socket per worker (SO_REUSEPORT): a burst of connections spreads over
    the workers. On one shared socket the first worker awake took most of wrk's 32."""
    srv = server_factory(store, workers=2)
    deadline = time.monotonic() + 60           # ready: one worker is; wait for the other
    while _listening(srv.port) < 2:
        assert time.monotonic() < deadline, _listening(srv.port)
        time.sleep(0.1)
    conns = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(32)]
    try:
        for c in conns:                 # a request on each: every one has been accepted
            c.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        for c in conns:
            assert c.recv(4096).startswith(b"HTTP/1.1 200")
        held = [_established(pid, srv.port) for pid in srv.workers()]
        assert sum(held) == 32 and min(held) >= 4, held
    finally:
        for c in conns:
            c.close()


def test_a_port_in_use_is_refused_not_shared(store, server_factory, tmp_path):
    """SO_REUSEPORT alone would let a second server join the first's port and take half its
    connections; it must stop instead, saying why."""
    first = server_factory(store, workers=2)
    env = {**os.environ, "GANSERVE_MODELS_DIR": str(store), "GANSERVE_DATA_DIR":
           str(tmp_path / "data"), "GANSERVE_EMBEDDED_WORKER": "false"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    second = subprocess.run(
        [sys.executable, "-m", "ganserve", "serve", "--port", str(first.port), "--workers",
         "2"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert second.returncode != 0, second.stdout + second.stderr
    assert f"cannot listen on 127.0.0.1:{first.port}" in second.stdout + second.stderr
    assert httpx.get(first.url + "/v2/health/ready").status_code == 200


def test_new_connections_go_to_the_live_worker_while_one_is_replaced(store, server_factory):
    """A dead worker's socket is closed at once: the connections the kernel would have put
    on it go to the live worker instead of waiting for the successor to load its models."""
    srv = server_factory(store, workers=2)
    deadline = time.monotonic() + 60
    while _listening(srv.port) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    victim = srv.workers()[0]
    os.kill(victim, signal.SIGKILL)
    while _listening(srv.port) > 1:             # the supervisor has closed its socket
        assert time.monotonic() < deadline
        time.sleep(0.02)
    codes = []
    for _ in range(24):                         # new connections each, by the address hash
        with httpx.Client(timeout=2.0) as c:
            codes.append(c.get(srv.url + "/v2/health/live").status_code)
    assert codes == [200] * 24, codes
