"""Dataset uploads against a real `ganserve serve`: throughput, the server's peak memory while
a large upload streams in (it must not hold the body), and how fast hostile files are refused.

    python benchmarks/upload_bench.py [--images 5000] [--big-mb 200]

Prints one table; every row is measured in this run on this machine.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.service import crafted  # noqa: E402  (the hostile files of the tests)


def png(rng: np.random.Generator, side: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (side, side), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def images_zip(path: Path, n: int, side: int = 28) -> Path:
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(n):
            zf.writestr(f"Class{i % 10}/{i:06d}.png", png(rng, side))
    return path


def padded_zip(path: Path, mb: int) -> Path:
    """An archive of incompressible 256x256 PNGs, about ``mb`` MB."""
    rng = np.random.default_rng(1)
    written, i = 0, 0
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        while written < mb << 20:
            data = png(rng, 256)
            zf.writestr(f"Big/{i:05d}.png", data)
            written += len(data)
            i += 1
    return path


def rss_anon_mb(pid: int) -> float:
    """Anonymous resident memory: the heap, not file pages (the memmap the conversion
    writes through is file-backed and would count in VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class PeakSampler(threading.Thread):
    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self.done = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.02):
            self.peak = max(self.peak, rss_anon_mb(self.pid))


def upload(url: str, path: Path) -> tuple[int, float, dict]:
    t0 = time.perf_counter()

    def chunks():
        with path.open("rb") as f:
            while block := f.read(1 << 20):
                yield block
    boundary = "benchmarkboundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{path.name}\"\r\nContent-Type: application/zip\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def body():
        yield head
        yield from chunks()
        yield tail
    r = httpx.post(f"{url}/v1/datasets", content=body(), timeout=600,
                   headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    return r.status_code, time.perf_counter() - t0, r.json()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--big-mb", type=int, default=200)
    ap.add_argument("--port", type=int, default=8123)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="upload-bench-"))
    env = {**os.environ, "GANSERVE_DATA_DIR": str(work / "data"),
           "GANSERVE_LOG_LEVEL": "WARNING", "GANSERVE_EMBEDDED_WORKER": "false",
           "GANSERVE_UPLOAD_MAX_BYTES": str((args.big_mb + 50) << 20)}
    server = subprocess.Popen([sys.executable, "-m", "ganserve", "serve", "--models-dir",
                               str(REPO / "models"), "--port", str(args.port)], env=env,
                              cwd=REPO)
    url = f"http://127.0.0.1:{args.port}"
    rows = []
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/v2/health/ready").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        small = images_zip(work / "small.zip", args.images)
        status, secs, d = upload(url, small)
        rows.append((f"{args.images} PNGs 28x28 in 10 classes ({small.stat().st_size >> 10} "
                     f"KB): {status}", f"{secs:.2f} s", f"{args.images / secs:.0f} images/s"))
        status, secs, _ = upload(url, small)
        rows.append(("the same upload again (duplicate)", f"{secs:.2f} s", f"{status}"))
        big = padded_zip(work / "big.zip", args.big_mb)
        base = rss_anon_mb(server.pid)
        sampler = PeakSampler(server.pid)
        sampler.start()
        status, secs, d = upload(url, big)
        sampler.done.set()
        sampler.join()
        peak = sampler.peak
        rows.append((f"{big.stat().st_size >> 20} MB of 256x256 PNGs ({d.get('images')} "
                     f"images): {status}", f"{secs:.2f} s",
                     f"server heap peak +{peak - base:.0f} MB"))
        for name, content in [("20,000 x 20,000 PNG (bomb)", crafted.zip_of(
                {"Bag/a.png": crafted.bomb_png()})),
                ("8 MB of zeros at 1000:1 (zip bomb)", crafted.ratio_bomb_zip()),
                ("overlapping members", crafted.overlapping_zip())]:
            p = work / "hostile.zip"
            p.write_bytes(content)
            status, secs, d = upload(url, p)
            rows.append((f"{name}, {len(content):,} bytes: {status} "
                         f"{d.get('error', {}).get('code')}", f"{secs * 1000:.0f} ms", ""))
    finally:
        server.terminate()
        server.wait(60)
        shutil.rmtree(work, ignore_errors=True)
    width = max(len(r[0]) for r in rows)
    print(f"| {'upload'.ljust(width)} | time | note |")
    print(f"|{'-' * (width + 2)}|--:|---|")
    for r in rows:
        print(f"| {r[0].ljust(width)} | {r[1]} | {r[2]} |")


if __name__ == "__main__":
    main()
