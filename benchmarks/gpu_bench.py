"""The GPU path in numbers, one run, side by side (``scripts/gpu_check.sh`` runs it).

    python benchmarks/gpu_bench.py [--models models] [--seconds 4] [--train-steps 20]

First, for every shipped model, the service is started with GANSERVE_DEVICE=cuda and asked
which execution provider it loaded the model on: anything but CUDA stops the run with exit
code 1 and the reason (ONNX Runtime falls back to the CPU silently; this must not). Then:

  raw     ONNX Runtime batch-64 images/s, in this process: CUDA, CUDA with IO binding, CPU;
  served  POST /v1/models/NAME/sample on `ganserve serve` (one worker), n=1 at 32 connections
          and n=64 at 4: images/s and p99 latency, CUDA against CPU. The load comes from an
          asyncio keep-alive client in this process (wrk may not be installed there);
  train   per family, the fashion32 preset's images/s over --train-steps steps: CUDA with
          AMP (bf16 autocast) against the CPU in fp32. Fashion-MNIST when it is installed,
          else random images of its shape (speed does not depend on the pixels).

float16 graphs: the shipped versions are copied and given their float16 twins first
(``ganserve.training.fp16``, parity-checked against float32 as at ``export --fp16``); the raw
rows run them on CUDA beside float32, and the served rows run them where GANSERVE_FP16=auto
picks them (CUDA: yes, CPU: no).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
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
from typing import Any

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from serve_bench import images_per_s  # noqa: E402

from ganserve.generator import OnnxGenerator  # noqa: E402
from ganserve.manifest import list_versions  # noqa: E402
from ganserve.onnx_runtime import CUDA_PROVIDER, cuda_problem  # noqa: E402

FAMILIES = ("dcgan", "cgan", "stylegan")


class NotOnCuda(SystemExit):
    def __init__(self, why: str):
        super().__init__(f"gpu_bench: CUDA is not really used: {why}")


def shipped(models: Path) -> list[Path]:
    return [d / list_versions(d)[-1] for d in sorted(models.iterdir())
            if not d.name.startswith(("_", ".")) and list_versions(d)]


# ------------------------------------------------------------------------------------- raw
def raw_images_per_s(vdir: Path, device: str, io_binding: bool, seconds: float,
                     fp16: bool = False) -> float:
    gen = OnnxGenerator(vdir, device=device, fp16=fp16)
    if device == "cuda" and any(s.get_providers()[0] != CUDA_PROVIDER
                                for s in gen.sessions.values()):
        raise NotOnCuda(f"{vdir}: ONNX Runtime put a graph on the CPU")
    if fp16 and not gen.fp16:
        raise RuntimeError(f"{vdir} has no float16 graphs")
    return images_per_s(gen, 64, seconds, io_binding)


def with_fp16(vdir: Path, root: Path) -> Path:
    """A copy of the version ``vdir`` with its float16 twins (parity-checked)."""
    from ganserve.training.fp16 import add_fp16_graphs
    copy = root / "fp16" / vdir.parent.name / vdir.name
    shutil.copytree(vdir, copy)
    add_fp16_graphs(copy)
    return copy


# ---------------------------------------------------------------------------------- served
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(store: Path, device: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {**os.environ, "GANSERVE_MODELS_DIR": str(store), "GANSERVE_DEVICE": device,
           "GANSERVE_LOG_LEVEL": "WARNING", "GANSERVE_EMBEDDED_WORKER": "false",
           "GANSERVE_DATA_DIR": str(store.parent / f"data-{device}")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)       # the server's own, not a caller's
    proc = subprocess.Popen([sys.executable, "-m", "ganserve", "serve", "--port", str(port)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    for _ in range(1200):
        if proc.poll() is not None:
            raise NotOnCuda(f"the service would not start with GANSERVE_DEVICE={device}: "
                            f"{proc.stdout.read()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready").status_code == 200:
                return proc, port
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"the service with GANSERVE_DEVICE={device} did not get ready")


def stop_server(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


async def _load(port: int, path: str, body: bytes, connections: int, seconds: float
                ) -> tuple[int, float, float]:
    """(requests, elapsed s, p99 ms) of a closed loop of ``connections`` keep-alive clients."""
    request = (f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def client() -> None:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < stop:
            t = time.perf_counter()
            w.write(request)
            head = await r.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length: *(\d+)", head)
            await r.readexactly(int(length.group(1)))
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(head.decode("latin-1"))
            latencies.append(time.perf_counter() - t)
        w.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(connections)))
    return len(latencies), time.perf_counter() - t0, float(np.percentile(latencies, 99) * 1e3)


def served(vdir: Path, device: str, seconds: float, root: Path) -> dict[str, Any]:
    name = vdir.parent.name
    store = root / f"store-{device}"
    shutil.copytree(vdir, store / name / vdir.name)
    proc, port = start_server(store, device)
    try:
        info = httpx.get(f"http://127.0.0.1:{port}/v1/models/{name}").json()
        provider = info["versions"][0]["provider"]
        if device == "cuda" and provider != CUDA_PROVIDER:
            raise NotOnCuda(f"{name} loaded on {provider} with GANSERVE_DEVICE=cuda")
        path = f"/v1/models/{name}/sample"
        out: dict[str, Any] = {"provider": provider, "fp16": info["versions"][0]["fp16"]}
        for label, seeds, conns in (("n1", [42], 32), ("n64", list(range(64)), 4)):
            body = json.dumps({"seeds": seeds}).encode()
            asyncio.run(_load(port, path, body, conns, 1.0))            # warm up
            n, elapsed, p99 = asyncio.run(_load(port, path, body, conns, seconds))
            out[f"{label}_ips"] = n * len(seeds) / elapsed
            out[f"{label}_p99"] = p99
        return out
    finally:
        stop_server(proc)


# ----------------------------------------------------------------------------------- train
def training_data(root: Path):
    from ganserve.data import load_images
    from ganserve.data.load import DEFAULT_FASHION_DIR
    if DEFAULT_FASHION_DIR.exists():
        return load_images(limit=4096), "Fashion-MNIST"
    rng = np.random.default_rng(0)
    path = root / "random.npz"
    np.savez(path, x=rng.integers(0, 256, (4096, 28, 28), dtype=np.uint8),
             y=np.arange(4096) % 10, class_names=np.array([f"c{i}" for i in range(10)]))
    return load_images(path), "random images of Fashion-MNIST's shape"


def training(steps: int, root: Path) -> tuple[list[dict], str]:
    from train_speed import bench_family
    data, source = training_data(root)
    rows = []
    for fam in FAMILIES:
        cuda = bench_family(fam, data, steps, 3, root / "cuda", export=False, device="cuda",
                            precision="bf16")
        cpu = bench_family(fam, data, max(2, steps // 5), 1, root / "cpu", export=False,
                           device="cpu")
        rows.append({"family": fam, "batch": cuda["batch"], "cuda": cuda["images_per_s"],
                     "cpu": cpu["images_per_s"]})
    return rows, source


# ---------------------------------------------------------------------------------- report
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=str(REPO / "models"))
    ap.add_argument("--seconds", type=float, default=4.0, help="per measurement")
    ap.add_argument("--train-steps", type=int, default=20)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if (why := cuda_problem()) is not None:
        raise NotOnCuda(why)
    import torch
    if not torch.cuda.is_available():
        raise NotOnCuda(f"torch {torch.__version__} sees no GPU (training would run on "
                        "the CPU)")
    print(f"# GPU path: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, "
          f"onnxruntime {__import__('onnxruntime').__version__}\n")
    root = Path(tempfile.mkdtemp(prefix="gpu-bench-"))
    try:
        print("| model | provider | raw b=64 img/s CUDA | + IO binding | fp16 | fp16 + IO "
              "binding | CPU | best CUDA ÷ CPU | /sample n=1 img/s (p99 ms) CUDA | CPU | "
              "n=64 img/s (p99 ms) CUDA | CPU | served fp16 on CUDA |")
        print("|" + "---|" * 13)
        for shipped_dir in shipped(Path(args.models)):
            vdir = with_fp16(shipped_dir, root)
            raw = [raw_images_per_s(vdir, "cuda", bound, args.seconds, fp16)
                   for fp16 in (False, True) for bound in (False, True)]
            cpu = raw_images_per_s(vdir, "cpu", False, args.seconds)
            on_gpu = served(vdir, "cuda", args.seconds, root / vdir.parent.name)
            on_cpu = served(vdir, "cpu", args.seconds, root / vdir.parent.name)
            print(f"| {vdir.parent.name} | {on_gpu['provider']} | "
                  + " | ".join(f"{r:.0f}" for r in raw) + f" | {cpu:.0f} | "
                  f"{max(raw) / cpu:.1f}× | "
                  f"{on_gpu['n1_ips']:.0f} ({on_gpu['n1_p99']:.1f}) | "
                  f"{on_cpu['n1_ips']:.0f} ({on_cpu['n1_p99']:.1f}) | "
                  f"{on_gpu['n64_ips']:.0f} ({on_gpu['n64_p99']:.1f}) | "
                  f"{on_cpu['n64_ips']:.0f} ({on_cpu['n64_p99']:.1f}) | "
                  f"{'yes' if on_gpu['fp16'] else 'NO'} |", flush=True)
        rows, source = training(args.train_steps, root)
        print(f"\ntraining, fashion32 presets, {source}\n")
        print("| family | batch | CUDA + AMP (bf16) img/s | CPU fp32 img/s | CUDA ÷ CPU |")
        print("|---|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['family']} | {r['batch']} | {r['cuda']:.0f} | {r['cpu']:.0f} | "
                  f"{r['cuda'] / r['cpu']:.1f}× |")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
