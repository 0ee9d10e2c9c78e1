"""The API's peak memory while it ingests one upload, by kind and size: what issue 23 bounds.

    python benchmarks/upload_memory.py [--sizes 1,5,20]

Starts one `ganserve serve` (one process), uploads each file in turn and reads the
process's peak resident memory around each upload: VmHWM (reset before each upload through
/proc/PID/clear_refs; it counts the file-backed pages of the memmap a conversion writes
through) and a sampled RssAnon (the heap alone). Prints one table; every row is measured in
this run. tests/service/test_upload_memory.py asserts the bound on the same measurements.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.upload_bench import PeakSampler, rss_anon_mb  # noqa: E402

MB = 1 << 20
SIDE = 28


def _png(rng: np.random.Generator, side: int = SIDE) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (side, side), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def noise_npz(mb: float, seed: int) -> tuple[str, bytes]:
    """A valid .npz of incompressible 28 x 28 images in ten classes, about ``mb`` MB."""
    rng = np.random.default_rng(seed)
    n = int(mb * MB) // (SIDE * SIDE)
    buf = io.BytesIO()
    np.savez(buf, images=rng.integers(0, 256, (n, SIDE, SIDE), dtype=np.uint8),
             labels=np.arange(n) % 10, class_names=np.array([f"c{i}" for i in range(10)]))
    return "noise.npz", buf.getvalue()


def noise_zip(mb: float, seed: int) -> tuple[str, bytes]:
    """A valid zip of incompressible 28 x 28 PNGs in ten class folders, about ``mb`` MB."""
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        i = 0
        while buf.tell() < mb * MB:
            zf.writestr(f"c{i % 10}/{i:06d}.png", _png(rng))
            i += 1
    return "noise.zip", buf.getvalue()


def long_names_npz(mb: float, seed: int) -> tuple[str, bytes]:
    """The hostile .npz of issue 23: ten class names, one of them random letters long
    enough to make the compressed file ``mb`` MB; NumPy pads all ten to it (40 bytes of
    array per character). Written in chunks: the test process never holds the array."""
    rng = np.random.default_rng(seed)
    chars = int(mb * MB / 0.62)             # deflate packs a random letter in ~0.62 bytes
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("images.npy", _npy(np.zeros((10, 8, 8), np.uint8)))
        zf.writestr("labels.npy", _npy(np.arange(10)))
        with zf.open("class_names.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_2_0(
                f, {"descr": f"<U{chars}", "fortran_order": False, "shape": (10,)})
            for start in range(0, chars, MB):
                k = min(MB, chars - start)
                f.write(rng.integers(97, 123, k, dtype="<u4").tobytes())
            zeros = bytes(4 * MB)
            for i in range(9):              # "c0".."c8", each padded with NULs to the width
                f.write(f"c{i}".encode("utf-32-le"))
                left = 4 * (chars - 2)
                while left:
                    f.write(zeros[:min(left, len(zeros))])
                    left -= min(left, len(zeros))
    return "names.npz", buf.getvalue()


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def images_tar(mb: float, seed: int) -> tuple[str, bytes]:
    """A tar of PNGs: not an accepted kind (415), however big."""
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        i = 0
        while buf.tell() < mb * MB:
            data = _png(rng, 256)
            info = tarfile.TarInfo(f"c0/{i:05d}.png")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
            i += 1
    return "images.tar", buf.getvalue()


def one_image(mb: float, seed: int) -> tuple[str, bytes]:
    """One incompressible grayscale PNG of about ``mb`` MB, sent as a bare image (415)."""
    side = int((mb * MB) ** 0.5)
    return "big.png", _png(np.random.default_rng(seed), side)


def big_image_zip(mb: float, seed: int) -> tuple[str, bytes]:
    """A zip holding that one big PNG (decoded, then refused or stored small)."""
    name, data = one_image(mb, seed)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(f"c0/{name}", data)
    return "big-image.zip", buf.getvalue()


def flat_image_zip(mb: float, seed: int) -> tuple[str, bytes]:
    """A zip of one 4096 x 4096 RGB PNG of one colour: kilobytes that decode to 48 MB, the
    largest image the default limits let through (whatever ``mb``)."""
    buf = io.BytesIO()
    Image.new("RGB", (4096, 4096), (seed % 256, 90, 30)).save(buf, "PNG")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("c0/flat.png", buf.getvalue())
    return "flat.zip", out.getvalue()


KINDS: dict[str, Callable[[float, int], tuple[str, bytes]]] = {
    "npz": noise_npz, "zip": noise_zip, "npz, long class name": long_names_npz,
    "tar": images_tar, "png": one_image, "zip, one big image": big_image_zip,
    "zip, one flat 4096 px image": flat_image_zip}


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


@dataclass
class Row:
    kind: str
    upload_mb: float
    status: int
    code: str
    hwm_growth_mb: float        # peak resident (heap + mapped file pages) above the start
    anon_growth_mb: float       # sampled peak of the heap alone above the start
    seconds: float


def measure(url: str, pid: int, kind: str, filename: str, content: bytes) -> Row:
    """Upload ``content`` and read the server's peak memory around it."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")        # VmHWM := VmRSS now
    start_rss, start_anon = _status_kb(pid, "VmRSS") / 1024, rss_anon_mb(pid)
    sampler = PeakSampler(pid)
    sampler.start()
    t0 = time.perf_counter()
    r = httpx.post(f"{url}/v1/datasets", files={"file": (filename, content)}, timeout=600)
    seconds = time.perf_counter() - t0
    sampler.done.set()
    sampler.join()
    hwm = _status_kb(pid, "VmHWM") / 1024
    code = r.json().get("error", {}).get("code", "") if r.status_code >= 400 else ""
    if r.status_code == 201:             # leave room in the quota for the next row
        httpx.delete(f"{url}/v1/datasets/{r.json()['id']}", timeout=60)
    return Row(kind, len(content) / MB, r.status_code, code, hwm - start_rss,
               max(0.0, sampler.peak - start_anon), seconds)


def table(rows: list[Row]) -> str:
    out = ["| upload | size MB | status | peak RSS growth MB | heap growth MB | ratio to "
           "size | s |", "| --- | ---: | --- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        out.append(f"| {r.kind} | {r.upload_mb:.1f} | {r.status} {r.code} | "
                   f"{r.hwm_growth_mb:.0f} | {r.anon_growth_mb:.0f} | "
                   f"{r.hwm_growth_mb / r.upload_mb:.1f} | {r.seconds:.1f} |")
    return "\n".join(out)


def main() -> None:
    from tests.service.conftest import ServerProcess, copy_store

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1,5,20", help="upload sizes in MB")
    ap.add_argument("--store", default=str(REPO / "models"))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="upload-memory-"))
    server = ServerProcess(copy_store(Path(args.store), tmp / "models"))
    try:
        server.wait_ready()
        rows = [measure(server.url, server.proc.pid, kind, *make(float(mb), seed))
                for seed, mb in enumerate(args.sizes.split(","))
                for kind, make in KINDS.items()]
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"# {os.cpu_count()} CPUs; one API process")
    print(table(rows))


if __name__ == "__main__":
    main()
