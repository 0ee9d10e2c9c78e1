"""Serving benchmark, one run, side by side, load from a separate process (wrk).

    python benchmarks/serve_bench.py [--models models] [--duration 6] [--only NAME]
                                     [--workers 2]

Per shipped model, every server with the same number of worker processes (--workers):
  (a) raw ONNX Runtime in process: images/s at batch 1 and 64;
  (b) a bare FastAPI endpoint returning a fixed PNG (the framework's ceiling here);
  (c) the naive server: FastAPI + PyTorch eager, one forward per request, no batching;
  (d) ganserve POST /sample n=1 at 1, 8, 32 and 64 concurrent clients, and at 32 once more
      right after (two runs in a row: is it steady?);
  (e) ganserve n=64 grids;
  (f) the Open Inference Protocol: POST /v2/models/NAME/infer, one seed, JSON tensors, 32
      connections;
  (g) each ganserve worker's memory once loaded and after the load: RSS, PSS (shared pages
      split between the processes sharing them) and USS (its own pages only).
HTTP and model work share this machine's cores, so the limit for n=1 requests is
L = 1 / (1/bare_req_per_s + 1/raw_batch64_images_per_s). Needs `wrk` (apt install wrk).
The first table is the summary the README quotes; the second has every measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ganserve.generator import OnnxGenerator, class_weights  # noqa: E402
from ganserve.manifest import list_versions  # noqa: E402
from ganserve.onnx_runtime import run_function  # noqa: E402

LUA = """wrk.method = "POST"
wrk.body = '%s'
wrk.headers["Content-Type"] = "application/json"
"""
PROTOCOL_BODY = {"inputs": [{"name": "seed", "datatype": "INT64", "shape": [1], "data": [42]}]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, argv: list[str], env: dict[str, str], ready_path: str):
        self.port = free_port()
        argv = [a.replace("{port}", str(self.port)) for a in argv]
        self.proc = subprocess.Popen(argv, cwd=REPO, env={**os.environ, **env},
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{self.port}{ready_path}"
        for _ in range(600):
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"{argv} did not start")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


    def worker_pids(self) -> list[int]:
        """The server's worker processes (its children), or itself with one worker."""
        kids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
                and _ppid(int(p.name)) == self.proc.pid]
        return [k for k in kids if "resource_tracker" not in _cmdline(k)] or [self.proc.pid]


def _ppid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return ""


def memory_mb(pid: int) -> dict[str, float]:
    """RSS, PSS and USS of one process, in MB, from /proc/PID/smaps_rollup."""
    kb: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split(":", 1)
        kb[key] = int(value.split()[0])
    return {"rss": kb["Rss"] / 1024, "pss": kb["Pss"] / 1024,
            "uss": (kb["Private_Clean"] + kb["Private_Dirty"]) / 1024}


def workers_memory(server: Server) -> dict[str, float]:
    """The mean over the server's workers."""
    per = [memory_mb(p) for p in server.worker_pids()]
    return {k: sum(m[k] for m in per) / len(per) for k in per[0]}


def uvicorn_app(module: str, env: dict[str, str], workers: int) -> Server:
    return Server([sys.executable, "-m", "uvicorn", module, "--port", "{port}",
                   "--workers", str(workers), "--log-level", "warning", "--no-access-log"],
                  env, "/docs")


def wrk(url: str, body: dict, connections: int, duration: float) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(LUA % json.dumps(body))
        script = f.name
    secs = max(1, round(duration))
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{secs}s", "--latency",
                          "-s", script, url], capture_output=True, text=True).stdout
    os.unlink(script)

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": ms("50"), "p99": ms("99"),
            "errors": int(errors.group(1)) if errors else 0}


def images_per_s(gen: OnnxGenerator, batch: int, seconds: float,
                 io_binding: bool = False) -> float:
    """Raw ONNX Runtime images/s of ``gen`` at ``batch`` rows a run, in this process."""
    runs = {graph: run_function(sess, io_binding) for graph, sess in gen.sessions.items()}
    m = gen.manifest
    z = gen.latents(list(range(batch)))
    feeds = {"z": z}
    if m.conditional:
        feeds["class"] = class_weights(np.arange(batch) % m.num_classes, m.num_classes)

    def once():
        if m.family_spec.w_space:
            runs["synthesis"]({"ws": gen.broadcast(runs["mapping"]({"z": z}))})
        else:
            runs["generator"](feeds)

    for _ in range(3):
        once()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        once()
        n += 1
    return n * batch / (time.perf_counter() - t0)


def raw_ort(vdir: Path, batch: int, seconds: float = 3.0) -> float:
    return images_per_s(OnnxGenerator(vdir), batch, seconds)


def bench_model(vdir: Path, duration: float, workers: int) -> dict:
    name = vdir.parent.name
    r: dict = {"model": name}
    r["raw1"] = raw_ort(vdir, 1)
    r["raw64"] = raw_ort(vdir, 64)
    bare = uvicorn_app("benchmarks.apps.bare:app", {}, workers)
    try:
        r["bare"] = wrk(f"http://127.0.0.1:{bare.port}/sample", {"seeds": [42]}, 32, duration)
    finally:
        bare.stop()
    naive = uvicorn_app("benchmarks.apps.naive:app", {"MODEL_DIR": str(vdir)}, workers)
    try:
        r["naive"] = wrk(f"http://127.0.0.1:{naive.port}/sample", {"seeds": [42]}, 32,
                         duration)
    finally:
        naive.stop()
    store = Path(tempfile.mkdtemp(prefix="bench-store-"))
    shutil.copytree(vdir, store / name / vdir.name)
    gs = Server([sys.executable, "-m", "ganserve", "serve", "--port", "{port}",
                 "--workers", str(workers)],
                {"GANSERVE_MODELS_DIR": str(store), "GANSERVE_LOG_LEVEL": "WARNING",
                 "GANSERVE_POLL_INTERVAL_S": "0", "GANSERVE_EMBEDDED_WORKER": "false"},
                "/v2/health/ready")
    try:
        r["mem_loaded"] = workers_memory(gs)
        url = f"http://127.0.0.1:{gs.port}/v1/models/{name}/sample"
        for c in (1, 8, 32, 64):
            r[f"gs{c}"] = wrk(url, {"seeds": [42]}, c, duration)
        r["gs32b"] = wrk(url, {"seeds": [42]}, 32, duration)      # again, right after
        r["grid"] = wrk(url, {"seeds": list(range(64))}, 4, duration)
        r["v2"] = wrk(f"http://127.0.0.1:{gs.port}/v2/models/{name}/infer", PROTOCOL_BODY,
                      32, duration)
        r["mem_after"] = workers_memory(gs)
    finally:
        gs.stop()
        shutil.rmtree(store, ignore_errors=True)
    r["L"] = 1.0 / (1.0 / r["bare"]["rps"] + 1.0 / r["raw64"])
    return r


def summary(rows: list[dict], workers: int) -> str:
    """The ratios the README quotes, one row per model."""
    out = [f"| {workers} workers each, one run | /sample n=1 c=32 ÷ L (run 1, run 2) | "
           "÷ naive | p99/p50 at c=8 | n=64 grids ÷ raw b=64 | /v2 infer n=1 ÷ L | "
           "worker RSS / PSS / USS MB, loaded → after |", "|" + "---|" * 7]
    for r in rows:
        a, b = r["gs32"]["rps"], r["gs32b"]["rps"]
        m0, m1 = r["mem_loaded"], r["mem_after"]
        out.append(
            f"| {r['model']} | {a / r['L']:.2f}, {b / r['L']:.2f} | "
            f"{a / r['naive']['rps']:.2f}× | {r['gs8']['p99'] / r['gs8']['p50']:.2f} | "
            f"{r['grid']['rps'] * 64 / r['raw64']:.2f} | {r['v2']['rps'] / r['L']:.2f} | "
            f"{m0['rss']:.0f} / {m0['pss']:.0f} / {m0['uss']:.0f} → "
            f"{m1['rss']:.0f} / {m1['pss']:.0f} / {m1['uss']:.0f} |")
    return "\n".join(out)


def report(rows: list[dict]) -> str:
    out = ["| model | raw ORT b=1 img/s | raw ORT b=64 img/s | bare FastAPI req/s | L req/s |"
           " naive req/s (p50/p99 ms) | ganserve c=1 | c=8 | c=32 | c=64 | c=32 / L |"
           " c=32 / naive | n=64 grids img/s | grids / raw64 | p99/p50 at c=8 |",
           "|" + "---|" * 15]
    for r in rows:
        def cell(k, r=r):
            d = r[k]
            return f"{d['rps']:.0f} ({d['p50']:.1f}/{d['p99']:.1f})"
        grid_ips = r["grid"]["rps"] * 64
        out.append(
            f"| {r['model']} | {r['raw1']:.0f} | {r['raw64']:.0f} | {r['bare']['rps']:.0f} | "
            f"{r['L']:.0f} | {cell('naive')} | {cell('gs1')} | {cell('gs8')} | {cell('gs32')}"
            f" | {cell('gs64')} | {r['gs32']['rps'] / r['L']:.2f} | "
            f"{r['gs32']['rps'] / r['naive']['rps']:.2f}x | {grid_ips:.0f} | "
            f"{grid_ips / r['raw64']:.2f} | {r['gs8']['p99'] / r['gs8']['p50']:.2f} |")
    errors = sum(v["errors"] for r in rows for v in r.values()
                 if isinstance(v, dict) and "errors" in v)
    out.append(f"\nnon-2xx responses during the run: {errors}")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="models")
    ap.add_argument("--duration", type=float, default=6.0, help="seconds per wrk run")
    ap.add_argument("--only", help="one model name")
    ap.add_argument("--workers", type=int, default=2,
                    help="worker processes of every server (bare, naive and ganserve)")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("needs wrk: apt-get install -y wrk")
    models_dir = Path(args.models).resolve()
    rows: list[dict] = []
    for d in sorted(models_dir.iterdir()):
        if d.name.startswith(("_", ".")) or not list_versions(d):
            continue
        if args.only and d.name != args.only:
            continue
        vdir = d / list_versions(d)[-1]
        print(f"benchmarking {d.name}/{vdir.name} ...", file=sys.stderr)
        rows.append(bench_model(vdir, args.duration, args.workers))
    print(summary(rows, args.workers) + "\n")
    print(report(rows))


if __name__ == "__main__":
    main()
