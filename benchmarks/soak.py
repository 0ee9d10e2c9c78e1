"""Soak test: a bounded open-loop run of every endpoint; unexpected errors and RSS growth.

    python benchmarks/soak.py [--models models] [--workers 2] [--duration 600] [--load 0.7]
                              [--clients 16] [--out docs/soak.md]

Starts `ganserve serve --workers N` on a free 127.0.0.1 port (its own process group, logs
to a temporary file) and finds its processes (master, workers, multiprocessing helpers) in
/proc. Load comes from separate generator process(es) (--generators), never from the
server's interpreters: each one asyncio event loop (uvloop when installed) driving a minimal
HTTP/1.1 keep-alive client, RawClient, at ~0.05 ms of CPU per request where httpx takes
~1 ms and far more once requests queue; on 2 shared cores that CPU is the server's.
  1. a closed-loop burst (--burst seconds at --clients concurrency) measures the maximum
     req/s for the request mix below;
  2. the soak issues requests open-loop, at a fixed arrival rate of --load x that maximum,
     for --duration seconds: at most rate x duration requests, at most --max-in-flight
     outstanding (an arrival beyond that is skipped and reported), 60 s per request.
The mix (KINDS) covers every endpoint plus ~5% deliberately invalid requests. A response is
an *unexpected error* when its status is not one its kind expects (any 5xx always is), when a
success has the wrong content-type, or on a transport error or timeout. Each server process's
RSS is sampled every few seconds; growth = (RSS at the end - RSS after the warm-up, the first
10% of the soak or 30 s, whichever is shorter) / RSS after the warm-up.
The report also gives the target and achieved soak rate (with a WARN when the generator or
the server could not keep up), and who used the CPU (server, generator, everything else).
Verdict: PASS (exit 0) when there is no unexpected error, no server process exited or was
replaced, and every process grew by less than 5%; else FAIL (exit 1). The server is always
stopped with SIGTERM at the end (SIGKILL to its process group after 40 s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import queue
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]

# --- The request mix: edit here. ---------------------------------------------------------------
# kind: (share of requests in %, statuses this kind expects, content-type of such a response).
# The invalid kinds' expected codes follow README "Errors"; the server is being hardened, so
# adjust a row here when a code is changed on purpose. Any 5xx is unexpected whatever this says.
KINDS: dict[str, tuple[float, tuple[int, ...], str]] = {
    "sample n=1":           (27, (200,), "image/png"),
    "sample n=8 grid":      (8, (200,), "image/png"),
    "sample json":          (5, (200,), "application/json"),
    "conditional":          (10, (200,), "image/png"),
    "interpolate png":      (8, (200,), "image/png"),
    "interpolate gif":      (3, (200,), "image/gif"),
    "style-mix":            (5, (200,), "image/png"),
    "GET sample.png":       (14, (200,), "image/png"),
    "GET /v1/models":       (6, (200,), "application/json"),
    "GET /v2/health/ready": (6, (200,), "application/json"),
    "GET /metrics":         (3, (200,), "text/plain"),
    # deliberately invalid, 5% together
    "bad: unknown model":   (1, (404,), "application/json"),
    "bad: field value":     (1, (422,), "application/json"),
    "bad: steps > max":     (1, (422,), "application/json"),
    "bad: malformed JSON":  (0.7, (422,), "application/json"),
    "bad: content-type":    (0.7, (415,), "application/json"),
    "bad: wrong family":    (0.6, (400,), "application/json"),
}
REQUEST_TIMEOUT_S = 60.0       # client side; the server's own deadline (504) is 30 s
RSS_GROWTH_LIMIT_PCT = 5.0
STOP_GRACE_S = 40.0            # SIGTERM, then SIGKILL to the process group
Req = tuple[str, str, bytes, str]          # method, path, body, content-type
KEEPALIVE_S = 2.0              # reuse an idle connection this long (the server keeps 5 s)


# --- Requests ---------------------------------------------------------------------------------

def _post(path: str, body: dict[str, Any]) -> Req:
    return "POST", path, json.dumps(body).encode(), "application/json"


def _interp(store: dict, rng: random.Random, fmt: str | None, steps: int = 8) -> Req:
    m = rng.choice(store["interpolate"])
    a, b = {"seed": rng.randrange(2**32)}, {"seed": rng.randrange(2**32)}
    if m in store["classes"] and rng.random() < 0.5:
        a["class"], b["class"] = rng.sample(store["classes"][m], 2)
    body = {"start": a, "end": b, "steps": steps} | ({"format": fmt} if fmt else {})
    return _post(f"/v1/models/{m}/interpolate", body)


def _valid(kind: str, store: dict, rng: random.Random) -> Req:
    s, m = rng.randrange(2**32), rng.choice(store["sample"])
    if kind == "sample n=1":
        return _post(f"/v1/models/{m}/sample", {"seeds": [s]})
    if kind == "sample n=8 grid":
        return _post(f"/v1/models/{m}/sample", {"n": 8, "cols": 4, "scale": 2})
    if kind == "sample json":
        return _post(f"/v1/models/{m}/sample", {"seeds": [s, s // 2], "format": "json",
                                                "return_latents": rng.random() < 0.5})
    if kind == "conditional":
        c = rng.choice(list(store["classes"]))
        return _post(f"/v1/models/{c}/conditional",
                     {"class": rng.choice(store["classes"][c]), "n": rng.choice([1, 4])})
    if kind in ("interpolate png", "interpolate gif"):
        return _interp(store, rng, "gif" if kind.endswith("gif") else None)
    if kind == "style-mix":
        return _post(f"/v1/models/{rng.choice(store['style-mix'])}/style-mix",
                     {"row_seeds": [s, s // 3], "col_seeds": [s // 5, s // 7, s // 11],
                      "styles": rng.choice(["coarse", "middle", "fine", "0-3"])})
    if kind == "GET sample.png":
        return "GET", f"/v1/models/{m}/sample.png?seed={s}&psi=0.7", b"", ""
    return "GET", kind.removeprefix("GET "), b"", ""


def _invalid(kind: str, store: dict, rng: random.Random) -> Req:
    m = rng.choice(store["sample"])
    if kind == "bad: unknown model":
        return _post("/v1/models/no-such-model/sample", {"seeds": [1]})
    if kind == "bad: field value":
        return _post(f"/v1/models/{m}/sample", rng.choice(
            [{"seeds": [1], "truncation_psi": 5}, {"seeds": [-1]}, {"n": 0},
             {"seeds": [1], "colour": "red"}, {"seeds": "abc"}]))
    if kind == "bad: steps > max":
        return _interp(store, rng, None, steps=100_000)
    if kind == "bad: malformed JSON":
        return "POST", f"/v1/models/{m}/sample", b'{"seeds": [1, 2', "application/json"
    if kind == "bad: content-type":
        return "POST", f"/v1/models/{m}/sample", b'{"seeds": [1]}', "text/plain"
    return _post(f"/v1/models/{rng.choice(store['no-style-mix'])}/style-mix",
                 {"row_seeds": [1], "col_seeds": [2]})


def build(kind: str, store: dict, rng: random.Random) -> Req:
    return (_invalid if kind.startswith("bad:") else _valid)(kind, store, rng)


def usable_kinds(store: dict) -> dict[str, float]:
    """The kinds this store can serve, with their weights (no cGAN: no 'conditional'...)."""
    needs = {"conditional": store["classes"], "style-mix": store["style-mix"],
             "interpolate png": store["interpolate"], "interpolate gif": store["interpolate"],
             "bad: steps > max": store["interpolate"], "bad: wrong family": store["no-style-mix"]}
    return {k: w for k, (w, _, _) in KINDS.items() if needs.get(k, True)}


def describe(req: Req) -> str:
    method, path, body, ctype = req
    return oneline(f"{method} {path}" + (f" [{ctype}] {body.decode()}" if body else ""))


def problem(kind: str, status: int, ctype: str) -> str | None:
    """None when the response is what this kind expects, else a short label."""
    _, expected, want_ctype = KINDS[kind]
    if status >= 500 or status not in expected:
        return f"HTTP {status}"
    if not ctype.startswith(want_ctype):
        return f"HTTP {status} with content-type {ctype!r}"
    return None


# --- Load generator (runs in its own process) ---------------------------------------------------

class Recorder:
    def __init__(self) -> None:
        self.lat: dict[str, list[float]] = {}
        self.status: dict[str, dict[int, int]] = {}    # kind -> status (0: none) -> count
        self.bad: dict[str, dict[str, list]] = {}   # kind -> label -> [count, request, response]
        self.lag_ms: list[float] = []
        self.skipped = self.unsent = self.unfinished = 0
        self.send_window_s = 0.0

    def add(self, kind: str, ms: float, status: int, label: str | None, req: Req,
            answer: str) -> None:
        self.lat.setdefault(kind, []).append(ms)
        seen = self.status.setdefault(kind, {})
        seen[status] = seen.get(status, 0) + 1
        if label:
            entry = self.bad.setdefault(kind, {}).setdefault(label, [0, describe(req), answer])
            entry[0] += 1

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


class RawClient:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams. httpx costs several times
    the CPU per request, and far more once requests queue in its pool (its bookkeeping is
    O(queued x connections)): on 2 shared cores that would come out of the server's share."""

    def __init__(self, host: str, port: int, limit: int) -> None:
        self.host, self.port = host, port
        self.slots = asyncio.Semaphore(limit)
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []

    def _reuse(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        while self.idle:
            r, w, since = self.idle.pop()
            if time.monotonic() - since < KEEPALIVE_S and not r.at_eof():
                return r, w
            w.close()
        return None

    async def request(self, req: Req, rid: str) -> tuple[int, dict[str, str], bytes]:
        async with self.slots:
            r, w = self._reuse() or await asyncio.open_connection(self.host, self.port)
            try:
                status, headers, data = await asyncio.wait_for(
                    self._exchange(r, w, req, rid), REQUEST_TIMEOUT_S)
            except BaseException:
                w.close()
                raise
            if headers.get("connection", "").lower() == "close":
                w.close()
            else:
                self.idle.append((r, w, time.monotonic()))
            return status, headers, data

    async def _exchange(self, r: asyncio.StreamReader, w: asyncio.StreamWriter, req: Req,
                        rid: str) -> tuple[int, dict[str, str], bytes]:
        method, path, body, ctype = req
        head = [f"{method} {path} HTTP/1.1", f"host: {self.host}:{self.port}",
                f"x-request-id: {rid}"]
        if method != "GET":
            head += [f"content-type: {ctype}", f"content-length: {len(body)}"]
        w.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        lines = (await r.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip()
                   for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
        if "content-length" in headers:
            return status, headers, await r.readexactly(int(headers["content-length"]))
        if headers.get("transfer-encoding", "").lower() == "chunked":
            return status, headers, await self._chunked(r)
        return status, headers | {"connection": "close"}, await r.read()

    @staticmethod
    async def _chunked(r: asyncio.StreamReader) -> bytes:
        data = b""
        while size := int((await r.readuntil(b"\r\n")).split(b";")[0], 16):
            data += (await r.readexactly(size + 2))[:-2]
        await r.readuntil(b"\r\n")                         # the (empty) trailer
        return data

    def close(self) -> None:
        for _, w, _ in self.idle:
            w.close()


def oneline(text: str) -> str:
    """Fit for one markdown list item in backticks."""
    return text.replace("\r", "").replace("\n", "\\n").replace("`", "'")


async def one(client: RawClient, kind: str, req: Req, rec: Recorder, rid: str) -> None:
    t0, status = time.perf_counter(), 0
    try:
        status, headers, data = await client.request(req, rid)
        ctype = headers.get("content-type", "")
        label = problem(kind, status, ctype)
        answer = oneline(f"{status} {ctype} {data[:300].decode(errors='replace')}") \
            if label else ""
    except Exception as e:            # noqa: BLE001 - any transport failure is an error
        label, answer = f"transport error {type(e).__name__}", oneline(repr(e)[:300])
    rec.add(kind, (time.perf_counter() - t0) * 1000, status, label, req, answer)


class Plan:
    """Deterministic pseudo-random sequence of requests of the weighted mix."""

    def __init__(self, store: dict, seed: int, tag: str) -> None:
        self.store, self.rng, self.tag = store, random.Random(seed), tag
        weights = usable_kinds(store)
        self.kinds, self.weights = list(weights), list(weights.values())
        self.count = 0

    def next(self) -> tuple[str, Req, str]:
        kind = self.rng.choices(self.kinds, self.weights)[0]
        self.count += 1
        return kind, build(kind, self.store, self.rng), f"{self.tag}-{self.count}"


async def closed_loop(client: RawClient, plan: Plan, rec: Recorder, clients: int,
                      duration: float) -> None:
    deadline = time.perf_counter() + duration

    async def user() -> None:
        while time.perf_counter() < deadline:
            kind, req, rid = plan.next()
            await one(client, kind, req, rec, rid)

    t0 = time.perf_counter()
    await asyncio.gather(*(user() for _ in range(clients)))
    rec.send_window_s = time.perf_counter() - t0


async def open_loop(client: RawClient, plan: Plan, rec: Recorder, rate: float,
                    duration: float, max_in_flight: int) -> None:
    total, tasks = int(rate * duration), set()
    t0 = time.perf_counter()
    for i in range(total):
        due = t0 + i / rate
        if (delay := due - time.perf_counter()) > 0:
            await asyncio.sleep(delay)
        elif time.perf_counter() > t0 + duration * 1.1 + 5:     # hopelessly behind: stop
            rec.unsent = total - i
            break
        rec.lag_ms.append((time.perf_counter() - due) * 1000)
        if len(tasks) >= max_in_flight:
            rec.skipped += 1
            continue
        kind, req, rid = plan.next()
        task = asyncio.create_task(one(client, kind, req, rec, rid))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    rec.send_window_s = time.perf_counter() - t0
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=REQUEST_TIMEOUT_S + 5)
        rec.unfinished = len(pending)
        for t in pending:
            t.cancel()


async def _generate(mode: str, port: int, store: dict, seed: int, p: dict[str, Any],
                    rec: Recorder) -> None:
    client = RawClient("127.0.0.1", port, p["clients"] if mode == "burst" else
                       p["max_in_flight"])
    plan = Plan(store, seed, f"{mode}{seed}")
    try:
        if mode == "burst":
            await closed_loop(client, plan, rec, p["clients"], p["duration"])
        else:
            await open_loop(client, plan, rec, p["rate"], p["duration"], p["max_in_flight"])
    finally:
        client.close()


def generator_main(mode: str, port: int, store: dict, seed: int, p: dict[str, Any],
                   out: Any) -> None:
    """Process entry point: run one generator, put its Recorder (as a dict) on `out`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)       # the parent handles Ctrl-C
    try:
        import uvloop
        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    rec, t0 = Recorder(), os.times()
    try:
        runner(_generate(mode, port, store, seed, p, rec))
        t1 = os.times()
        out.put(rec.as_dict() | {"cpu_s": t1.user + t1.system - t0.user - t0.system})
    except BaseException as e:                          # noqa: BLE001 - report, don't hang
        out.put({"failed": f"{type(e).__name__}: {e}"})


def run_generators(mode: str, port: int, store: dict, n: int, p: dict[str, Any],
                   timeout: float) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=generator_main, args=(mode, port, store, i, p, out),
                         daemon=True) for i in range(n)]
    try:
        for pr in procs:
            pr.start()
        parts: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(parts) < n:
            try:
                parts.append(out.get(timeout=1))
            except queue.Empty:
                if time.monotonic() > deadline or not any(pr.is_alive() for pr in procs):
                    raise RuntimeError(f"{n - len(parts)} of {n} load generator(s) gave no "
                                       "result") from None
        for pr in procs:
            pr.join(10)
    finally:
        for pr in procs:
            if pr.is_alive():
                pr.terminate()
    failed = [x["failed"] for x in parts if "failed" in x]
    if failed:
        raise RuntimeError(f"load generator failed: {failed[0]}")
    return merge(parts)


def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    m: dict[str, Any] = {"lat": {}, "bad": {}, "lag_ms": [], "status": {}}
    for x in parts:
        for kind, seen in x["status"].items():
            into = m["status"].setdefault(kind, {})
            for code, count in seen.items():
                into[code] = into.get(code, 0) + count
        for kind, lat in x["lat"].items():
            m["lat"].setdefault(kind, []).extend(lat)
        for kind, labels in x["bad"].items():
            for label, (count, req, answer) in labels.items():
                e = m["bad"].setdefault(kind, {}).setdefault(label, [0, req, answer])
                e[0] += count
        m["lag_ms"] += x["lag_ms"]
        for k in ("skipped", "unsent", "unfinished", "cpu_s"):
            m[k] = m.get(k, 0) + x[k]
        m["send_window_s"] = max(m.get("send_window_s", 0.0), x["send_window_s"])
    m["requests"] = sum(len(v) for v in m["lat"].values())
    m["unexpected"] = m["unfinished"] + sum(c for labels in m["bad"].values()
                                            for c, _, _ in labels.values())
    return m


# --- Server processes (/proc) -----------------------------------------------------------------

def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()     # fields from 3 (state) on


def alive(pid: int) -> bool:
    st = _stat(pid)
    return st is not None and st[0] != "Z"


def process_tree(root: int) -> list[int]:
    """root and all its descendants (from the ppid field of /proc/*/stat)."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and (st := _stat(int(d.name))):
            children.setdefault(int(st[1]), []).append(int(d.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return sorted(out)


def role(pid: int, root: int) -> str:
    if pid == root:
        return "master"
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "?"
    return "resource tracker" if "resource_tracker" in cmd else "worker"


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def machine_cpu_s() -> np.ndarray:
    """CPU seconds since boot, all cores: [busy (user, nice, system, irq, softirq), steal]."""
    t = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return np.array([t[0] + t[1] + t[2] + t[5] + t[6], t[7]]) / os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float | None:
    st = _stat(pid)
    return (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK") if st else None


class RssSampler(threading.Thread):
    """Every `interval` s: RSS of each process of the server's tree, by pid."""

    def __init__(self, root: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.t0 = time.monotonic()
        self.series: dict[int, list[tuple[float, float]]] = {}     # pid -> [(t, MB)]
        self.roles: dict[int, str] = {}
        self.cpu0: dict[int, float] = {}
        self.last: set[int] = set()          # the pids of the latest sample
        self.stopped = threading.Event()

    def sample(self) -> None:
        t, seen = time.monotonic() - self.t0, set()
        for pid in process_tree(self.root):
            if (mb := rss_mb(pid)) is None:
                continue
            seen.add(pid)
            if pid not in self.series:
                self.roles[pid] = role(pid, self.root)
                self.cpu0[pid] = cpu_s(pid) or 0.0
            self.series.setdefault(pid, []).append((t, mb))
        self.last = seen

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            self.sample()

    def finish(self) -> float:
        self.stopped.set()
        self.join()
        self.sample()
        return time.monotonic() - self.t0


# --- Server lifecycle -------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(models: Path, workers: int, port: int, log: Any) -> subprocess.Popen:
    env = os.environ | {"GANSERVE_MODELS_DIR": str(models), "GANSERVE_LOG_LEVEL": "WARNING"}
    return subprocess.Popen(
        [sys.executable, "-m", "ganserve", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(workers)], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)          # own process group: Ctrl-C reaches only us


def wait_ready(proc: subprocess.Popen, base: str, timeout: float = 300) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before ready")
        try:
            if httpx.get(base + "/v2/health/ready", timeout=2).status_code == 200:
                return time.monotonic() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server not ready after {timeout:.0f} s")


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):      # all gone already
        os.killpg(pgid, signal.SIGKILL)


def stop_server(proc: subprocess.Popen) -> str:
    """SIGTERM, wait up to STOP_GRACE_S, then SIGKILL the whole process group."""
    t0 = time.monotonic()
    tree = process_tree(proc.pid)
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(STOP_GRACE_S)
        note = f"SIGTERM: exited in {time.monotonic() - t0:.1f} s with code {code}"
    except subprocess.TimeoutExpired:
        kill_group(proc.pid)
        proc.wait()
        return f"SIGTERM: still running after {STOP_GRACE_S:.0f} s, SIGKILLed (WARN)"
    deadline = time.monotonic() + 5           # helpers (resource tracker) exit just after
    while (left := [p for p in tree if p != proc.pid and alive(p)]) and \
            time.monotonic() < deadline:
        time.sleep(0.1)
    if left:
        kill_group(proc.pid)
        note += f"; {len(left)} child process(es) outlived the master, SIGKILLed (WARN)"
    return note


def discover(base: str) -> dict[str, Any]:
    """Which loaded models can do what, from GET /v1/models."""
    models = [m for m in httpx.get(base + "/v1/models", timeout=30).json()["models"]
              if m.get("latest")]

    def able(cap: str) -> list[str]:
        return [m["name"] for m in models if cap in m.get("capabilities", [])]

    if not able("sample"):
        raise RuntimeError("no loaded model in the store can sample")
    return {"sample": able("sample"), "interpolate": able("interpolate"),
            "style-mix": able("style-mix"),
            "no-style-mix": [m for m in able("sample") if m not in able("style-mix")],
            "classes": {m["name"]: m["classes"] for m in models
                        if "conditional" in m.get("capabilities", [])
                        and len(m.get("classes", [])) >= 2}}


# --- The run ----------------------------------------------------------------------------------

def run(args: argparse.Namespace, proc: subprocess.Popen, base: str) -> dict[str, Any]:
    """The burst, then the soak with RSS sampling; everything the report needs."""
    n = args.generators
    r: dict[str, Any] = {"ready_rss": {p: rss_mb(p) for p in process_tree(proc.pid)}}
    r["store"] = store = discover(base)
    log(f"max-throughput burst: {args.clients} clients, closed loop, {args.burst:.0f} s")
    port = int(base.rsplit(":", 1)[1])
    r["burst"] = run_generators("burst", port, store, n,
                                {"clients": max(1, args.clients // n), "duration": args.burst},
                                timeout=args.burst + REQUEST_TIMEOUT_S + 120)
    r["max_rps"] = r["burst"]["requests"] / r["burst"]["send_window_s"]
    r["rate"] = args.load * r["max_rps"]
    log(f"max {r['max_rps']:.1f} req/s; soak at {r['rate']:.1f} req/s for {args.duration:.0f} s")
    sampler = RssSampler(proc.pid, args.sample_every)
    sampler.sample()
    sampler.start()
    machine0 = machine_cpu_s()
    r["soak"] = run_generators(
        "soak", port, store, n, {"rate": r["rate"] / n, "duration": args.duration,
                                 "max_in_flight": max(1, args.max_in_flight // n)},
        timeout=args.duration * 1.1 + 5 + REQUEST_TIMEOUT_S + 120)
    r["wall_s"] = sampler.finish()
    r["machine_cpu_s"] = machine_cpu_s() - machine0
    r["sampler"] = sampler
    r["cpu_end"] = {p: cpu_s(p) for p in sampler.series}
    return r


def log(msg: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- The report -------------------------------------------------------------------------------

def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def kind_table(res: dict[str, Any], kinds: list[str]) -> list[str]:
    rows = ["| request kind | expects | got (status x count; 0 = no response) | requests | "
            "unexpected | p50 ms | p99 ms |", "|---|---|---|--:|--:|--:|--:|"]
    for kind in kinds:
        lat = res["lat"].get(kind, [])
        bad = sum(c for c, _, _ in res["bad"].get(kind, {}).values())
        got = ", ".join(f"{c} x {n}" for c, n in sorted(res["status"].get(kind, {}).items()))
        rows.append(f"| {kind} | {'/'.join(map(str, KINDS[kind][1]))} | {got} | {len(lat)} | "
                    f"{bad} | {pct(lat, 50):.1f} | {pct(lat, 99):.1f} |")
    every = [x for lat in res["lat"].values() for x in lat]
    rows.append(f"| **total** | | | {len(every)} | {res['unexpected']} | {pct(every, 50):.1f} | "
                f"{pct(every, 99):.1f} |")
    return rows


def process_table(r: dict[str, Any], warmup: float) -> tuple[list[str], list[str]]:
    """The per-process rows, and the reasons this part fails (empty: pass)."""
    s: RssSampler = r["sampler"]
    rows = ["| pid | role | RSS at ready (MB) | RSS start (MB, after warm-up) | RSS end (MB) | "
            "RSS max (MB) | growth % | CPU % of a core (soak) |",
            "|--:|---|--:|--:|--:|--:|--:|--:|"]
    fails = []
    for pid, series in sorted(s.series.items()):
        warm = next((mb for t, mb in series if t >= warmup), None)
        end = series[-1][1]
        growth = (end - warm) / warm * 100 if warm else float("nan")
        cpu = ((r["cpu_end"].get(pid) or s.cpu0[pid]) - s.cpu0[pid]) / r["wall_s"] * 100
        ready = r["ready_rss"].get(pid)
        note = " (exited during the soak)" if pid not in s.last else \
            "" if pid in r["ready_rss"] else " (new since ready: a replaced worker?)"
        rows.append(f"| {pid} | {s.roles[pid]}{note} | {ready or float('nan'):.1f} | "
                    f"{warm or float('nan'):.1f} | {end:.1f} | {max(mb for _, mb in series):.1f}"
                    f" | {growth:+.2f} | {cpu:.0f} |")
        if note:
            fails.append(f"{s.roles[pid]} {pid}{note}")
        if not growth < RSS_GROWTH_LIMIT_PCT:
            fails.append(f"{s.roles[pid]} {pid} RSS growth {growth:+.2f}%")
    return rows, fails


def mismatch_lines(phase: str, res: dict[str, Any]) -> list[str]:
    out = []
    for kind, labels in res["bad"].items():
        for label, (count, req, answer) in sorted(labels.items(), key=lambda x: -x[1][0]):
            out += [f"- {phase}, **{kind}** (expects {'/'.join(map(str, KINDS[kind][1]))}): "
                    f"{label} x {count}", f"  - request: `{req}`",
                    f"  - response: `{answer}`"]
    return out


def rate_lines(args: argparse.Namespace, r: dict[str, Any]) -> tuple[list[str], bool]:
    """Max throughput, target and achieved soak rate; and whether the target was met."""
    b, s = r["burst"], r["soak"]
    sent = s["requests"] + s["unfinished"]
    achieved = sent / s["send_window_s"] if s["send_window_s"] else 0.0
    lag = s["lag_ms"]
    met = achieved >= 0.95 * r["rate"] and not (s["skipped"] or s["unsent"])
    out = [f"- max throughput (closed loop, {args.clients} clients, {b['send_window_s']:.0f} s): "
           f"**{r['max_rps']:.1f} req/s** ({b['requests']} requests, {b['unexpected']} "
           f"unexpected; generator CPU {b['cpu_s'] / b['send_window_s'] * 100:.0f}% of a core)",
           f"- soak: target {args.load:g} x max = **{r['rate']:.1f} req/s** for "
           f"{args.duration:.0f} s; achieved **{achieved:.1f} req/s** "
           f"({achieved / r['rate'] * 100 if r['rate'] else 0:.0f}% of target, {sent} sent); "
           f"skipped at the in-flight cap ({args.max_in_flight}): {s['skipped']}; not sent "
           f"(generator behind): {s['unsent']}; unfinished at the end: {s['unfinished']}",
           f"- arrival lag (due -> sent) p50/p99/max: {pct(lag, 50):.1f} / {pct(lag, 99):.1f} / "
           f"{max(lag, default=float('nan')):.1f} ms; generator CPU "
           f"{s['cpu_s'] / r['wall_s'] * 100:.0f}% of a core"]
    out += cpu_lines(r)
    if s["skipped"]:
        out.append("- WARN: the server fell behind: in-flight requests hit the cap")
    if s["unsent"] or pct(lag, 99) > 100 or not met:
        out.append("- WARN: the load generator could not keep up with the target rate"
                   if s["unsent"] or pct(lag, 99) > 100 else "- WARN: target rate not met")
    return out, met


def cpu_lines(r: dict[str, Any]) -> list[str]:
    """Who used the CPU during the soak: the server, the generator, everything else."""
    sm: RssSampler = r["sampler"]
    server = sum((r["cpu_end"].get(p) or sm.cpu0[p]) - sm.cpu0[p] for p in sm.series)
    (busy, steal), gen, wall = r["machine_cpu_s"], r["soak"]["cpu_s"], r["wall_s"]
    other = max(0.0, busy - server - gen)
    out = [f"- CPU during the soak, % of one core ({len(os.sched_getaffinity(0))} cores here): "
           f"server {server / wall * 100:.0f}, load generator {gen / wall * 100:.0f}, "
           f"everything else {other / wall * 100:.0f}, steal {steal / wall * 100:.0f}"]
    if other / wall > 0.25 or steal / wall > 0.1:
        out.append("- WARN: other processes (or the hypervisor) took CPU during the soak: "
                   "the rates and latencies above are not the server's alone")
    return out


def server_log_lines(path: str) -> list[str]:
    text = Path(path).read_text(errors="replace").splitlines()
    hits: dict[str, int] = {}
    for line in text:
        if any(w in line for w in ("Traceback", "ERROR", "CRITICAL", "WARNING", "Warning")):
            key = line.split(" ", 2)[-1][:160] if line[:2].isdigit() else line[:160]
            hits[key] = hits.get(key, 0) + 1
    out = [f"- server log ({path}): {len(text)} lines, {sum(hits.values())} warning/error"]
    out += [f"  - {n} x `{k}`" for k, n in sorted(hits.items(), key=lambda x: -x[1])[:8]]
    return out


def render(args: argparse.Namespace, r: dict[str, Any], shutdown: str,
           log_path: str) -> tuple[str, bool]:
    kinds = [k for k in KINDS if k in usable_kinds(r["store"])]
    warmup = args.warmup if args.warmup is not None else min(30.0, 0.1 * args.duration)
    procs, fails = process_table(r, warmup)
    rates, met = rate_lines(args, r)
    unexpected = r["soak"]["unexpected"] + r["burst"]["unexpected"]
    if unexpected:
        fails.insert(0, f"{unexpected} unexpected error(s)")
    lines = [f"`ganserve serve --workers {args.workers}` on `{args.models}` (ready in "
             f"{r['ready_s']:.1f} s); soak {args.duration:.0f} s at load {args.load:g}, "
             f"RSS warm-up {warmup:g} s, sampled every {args.sample_every:g} s", "", *rates,
             "", "Soak, per request kind (latency from sent to response read):", "",
             *kind_table(r["soak"], kinds), "", "Server processes:", "", *procs, "",
             "Unexpected responses (burst and soak):", ""]
    lines += mismatch_lines("burst", r["burst"]) + mismatch_lines("soak", r["soak"]) or ["- none"]
    lines += ["", f"- shutdown: {shutdown}", *server_log_lines(log_path), "",
              f"**Verdict: {'FAIL' if fails else 'PASS'}** (target: 0 unexpected errors, RSS "
              f"growth < {RSS_GROWTH_LIMIT_PCT:g}% per process)"
              + (": " + "; ".join(fails) if fails else "")
              + ("" if met else " - but the target rate was not met, see WARN above")]
    return "\n".join(lines), not fails


def machine() -> str:
    cpu = next((ln.split(":", 1)[1].strip() for ln in
                Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), "unknown CPU")
    return f"{len(os.sched_getaffinity(0))} cores (nproc), {cpu}"


def write_out(path: str, report: str) -> None:
    head = [f"# ganserve soak test, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", "",
            f"- machine: {machine()}", f"- command: `python {' '.join(sys.argv)}`", ""]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(head) + "\n" + report + "\n")


# --- Main -------------------------------------------------------------------------------------

def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="models", help="model store (default ./models)")
    ap.add_argument("--workers", type=int, default=2, help="ganserve worker processes")
    ap.add_argument("--duration", type=float, default=600.0, help="soak seconds (default 600)")
    ap.add_argument("--load", type=float, default=0.7, help="soak rate / max rate (0.7)")
    ap.add_argument("--clients", type=int, default=16, help="burst concurrency (16)")
    ap.add_argument("--burst", type=float, default=15.0, help="burst seconds (15)")
    ap.add_argument("--max-in-flight", type=int, default=128,
                    help="soak: outstanding requests at most (128)")
    ap.add_argument("--generators", type=int, default=1, help="load generator processes (1)")
    ap.add_argument("--warmup", type=float,
                    help="seconds before the RSS baseline (default min(30, 10%% of duration))")
    ap.add_argument("--sample-every", type=float, help="RSS sample period, s (default <= 5)")
    ap.add_argument("--out", help="also write the report to this markdown file")
    args = ap.parse_args()
    if args.sample_every is None:
        args.sample_every = min(5.0, max(1.0, args.duration / 20))
    return args


def serve_and_run(args: argparse.Namespace, logf: Any) -> tuple[dict[str, Any], str]:
    """Start the server, run, and always stop it; the results and how it stopped."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log(f"starting ganserve on {base}, {args.workers} worker(s); server log {logf.name}")
    proc = start_server(Path(args.models).resolve(), args.workers, port, logf)
    try:
        ready_s = wait_ready(proc, base)
        r = run(args, proc, base) | {"ready_s": ready_s}
    finally:
        shutdown = stop_server(proc)
        log(f"server stopped: {shutdown}")
    return r, shutdown


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # run the finally blocks
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started ignoring it
    with tempfile.NamedTemporaryFile("w", prefix="ganserve-soak-", suffix=".log",
                                     delete=False) as logf:
        r, shutdown = serve_and_run(args, logf)
    report, ok = render(args, r, shutdown, logf.name)
    print(report)
    if args.out:
        write_out(args.out, report)
        log(f"written to {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted; the server was stopped")
        sys.exit(130)
