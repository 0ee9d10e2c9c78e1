"""Cross-CPU differences of the served pixels: how far ONNX Runtime's CPU answers move
between instruction sets (AVX-512 vs AVX2-only), so the project can state a measured bound.

    python benchmarks/cross_cpu.py render /tmp/crosscpu/native.npz [--seeds 256]
    qemu-x86_64 -cpu EPYC-Milan .venv/bin/python benchmarks/cross_cpu.py \\
        render /tmp/crosscpu/milan.npz --label qemu-EPYC-Milan
    qemu-x86_64 -cpu Haswell .venv/bin/python benchmarks/cross_cpu.py \\
        render /tmp/crosscpu/haswell.npz --label qemu-Haswell
    python benchmarks/cross_cpu.py compare /tmp/crosscpu/native.npz /tmp/crosscpu/milan.npz
    python benchmarks/cross_cpu.py speed [--variants all,no-nchwc,disable] [--batch 64]

``render`` builds the in-process app on the shipped store (as tests/models/
test_golden_outputs.py does), answers a fixed request set and saves every answer as
decoded uint8 pixels (every frame of a GIF/WebP; every image of a JSON answer), one key
per request: the README pictures and the golden requests of that test, POST /sample with
seeds 0..N-1 (JSON, one image each) for every shipped model, and StyleGAN style-mix grids.
It also records the ONNX Runtime version and the CPU features the process sees (numpy's
runtime cpuid detection: under ``qemu-x86_64 -cpu EPYC-Milan`` or ``-cpu Haswell`` avx512f is
off, so MLAS dispatches its AVX2/FMA3 kernels), and logs how the README answers differ from
the committed docs/api pictures. ``--opt-level`` and ``--config KEY=VALUE`` change every
session the app opens (to test whether a setting makes the CPUs agree).

``compare`` prints a markdown table per request group: pixels compared, pixels that differ
(a pixel differs when any channel does; pixels are output pixels, after ``scale``), the
fraction in ppm and %, the largest |difference| in grey levels, the worst single request,
and a total line. ``speed`` times raw ONNX Runtime generation (images/s at one batch size)
per model under each session variant (optimisation level, NCHWc layout off), side by side
in one run.

Emulation is slow (tens of times): under qemu keep --seeds small or be patient; --threads
(default 1) fixes ONNX Runtime's intra-op threads so every run does the same work.

Measured (onnxruntime 1.32.0, Zen 4 AVX-512 vs qemu 7.2 EPYC-Milan and Haswell, 256 seeds):
DCGAN and cGAN answers are bitwise equal (their floats too); StyleGAN differs by one grey
level in at most 0.007% of one response's pixels (33 of 2.4 M output pixels overall),
EPYC-Milan and Haswell agree with each other, and the README style-mix.png reproduces the
real Zen 3 report (9 pixels, one grey level). The cause is the NCHWc layout transformer (an
ORT_ENABLE_ALL optimisation; its block is 16 floats with AVX-512, 8 without):
``--config optimization.disable_specified_optimizers=NchwcTransformer`` (or
``--opt-level disable``) makes every answer and every float bitwise equal across the two
families, at about -22% StyleGAN images/s (batch 64, one thread; ``speed``). MLAS picks its
kernels from cpuid alone: no setting or variable forces an instruction set.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import io
import json
import logging
import platform
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageSequence

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.models.test_golden_outputs import (  # noqa: E402
    CG,
    DC,
    README_PICTURES,
    REQUESTS,
    SG,
)

log = logging.getLogger("cross_cpu")

MODELS = (DC, CG, SG)
META = "__meta__"
MAX_SEEDS_PER_REQUEST = 256          # the service's default max_images
OPT_LEVELS = {
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
}

# speed's variants: (graph optimisation level, session config entries); no-nchwc keeps every
# optimisation but the NCHWc layout (whose block is 16 floats with AVX-512, 8 without)
NO_NCHWC = ("optimization.disable_specified_optimizers", "NchwcTransformer")
VARIANTS: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "all": ("all", []), "no-nchwc": ("all", [NO_NCHWC]), "extended": ("extended", []),
    "basic": ("basic", []), "disable": ("disable", []),
}

Request = tuple[str, str, dict[str, Any] | None]


# -- the request set

def request_set(seeds: int) -> dict[str, Request]:
    """Key -> (method, path, body); the key's first part is its group."""
    reqs: dict[str, Request] = {f"readme/{k}": v for k, v in README_PICTURES.items()}
    reqs |= {f"golden/{k}": v for k, v in REQUESTS.items()}
    for model in MODELS:
        for lo in range(0, seeds, MAX_SEEDS_PER_REQUEST):
            hi = min(seeds, lo + MAX_SEEDS_PER_REQUEST) - 1
            reqs[f"sample/{model}/seeds-{lo}-{hi}"] = (
                "POST", f"/v1/models/{model}/sample", {"seeds": f"{lo}-{hi}", "format": "json"})
    for styles in ("coarse", "middle", "fine", "0-3"):
        for psi in (1.0, 0.7):
            reqs[f"style-mix/{styles}-psi-{psi}"] = (
                "POST", f"/v1/models/{SG}/style-mix",
                {"row_seeds": "0-7", "col_seeds": "8-15", "styles": styles,
                 "truncation_psi": psi, "format": "json"})
    return reqs


def group_of(key: str) -> str:
    """readme, golden, sample/<model>, style-mix."""
    parts = key.split("/")
    return "/".join(parts[:2]) if parts[0] == "sample" else parts[0]


# -- decoding

def decode_image(data: bytes) -> np.ndarray:
    """Every frame of a PNG/GIF/WebP as uint8 [frames, H, W] or [frames, H, W, C]."""
    with Image.open(io.BytesIO(data)) as im:
        frames = []
        for frame in ImageSequence.Iterator(im):
            f = frame.convert("RGBA" if "transparency" in frame.info else "RGB") \
                if frame.mode == "P" else frame.copy()
            frames.append(np.asarray(f, dtype=np.uint8))
    return np.stack(frames)


def decode_answer(content: bytes, content_type: str) -> np.ndarray:
    """An answer's pixels; a JSON answer's ``images`` stacked (its grid_png is left out: it
    repeats them)."""
    if content_type.startswith("application/json"):
        images = json.loads(content)["images"]
        return np.concatenate([decode_image(base64.b64decode(i["png"])) for i in images])
    return decode_image(content)


# -- what the process sees

def cpu_features() -> dict[str, bool]:
    """The features cpuid reports to this process (numpy's runtime dispatch reads cpuid and
    xgetbv, as MLAS does; /proc/cpuinfo would show the host under qemu)."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as feats
    except ImportError:                         # numpy < 2
        from numpy.core._multiarray_umath import __cpu_features__ as feats
    return {name.lower(): bool(feats.get(key)) for name, key in
            (("avx512f", "AVX512F"), ("avx2", "AVX2"), ("fma", "FMA3"),
             ("avx512_skx", "AVX512_SKX"))}


@contextlib.contextmanager
def tuned_sessions(opt_level: str, config: list[tuple[str, str]]) -> Iterator[None]:
    """Every InferenceSession opened meanwhile gets this optimisation level and config."""
    if opt_level == "all" and not config:
        yield
        return
    original = ort.InferenceSession

    def factory(path: Any, sess_options: ort.SessionOptions | None = None,
                *args: Any, **kwargs: Any) -> ort.InferenceSession:
        opts = sess_options or ort.SessionOptions()
        opts.graph_optimization_level = OPT_LEVELS[opt_level]
        for k, v in config:
            opts.add_session_config_entry(k, v)
        return original(path, opts, *args, **kwargs)

    ort.InferenceSession = factory            # type: ignore[misc,assignment]
    try:
        yield
    finally:
        ort.InferenceSession = original       # type: ignore[misc]


def parse_config(items: list[str]) -> list[tuple[str, str]]:
    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--config wants KEY=VALUE, got {item!r}")
        out.append((key, value))
    return out


# -- render

def pixel_diff(a: np.ndarray, b: np.ndarray) -> tuple[int, int, int]:
    """(pixels, differing pixels, max |diff|) of two uint8 arrays of one shape; the channels
    of a pixel count once."""
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    if d.ndim == 4:                            # frames, H, W, C
        d = d.max(axis=-1)
    return int(d.size), int(np.count_nonzero(d)), int(d.max(initial=0))


def render(out: Path, seeds: int, label: str, threads: int, opt_level: str,
           config: list[tuple[str, str]]) -> None:
    from tests.service.conftest import make_client, wait_ready

    reqs = request_set(seeds)
    arrays: dict[str, np.ndarray] = {}
    sums: dict[str, str] = {}
    readme: dict[str, dict[str, Any]] = {}
    t0 = time.monotonic()
    with tuned_sessions(opt_level, config), \
            make_client(REPO / "models", intra_op_threads=threads,
                        request_deadline_s=3600) as client:   # emulation is slow
        wait_ready(client, timeout=3600)
        log.info("app ready in %.1f s", time.monotonic() - t0)
        versions = {m["name"]: [{k: v.get(k) for k in ("version", "provider", "deterministic")}
                                for v in m.get("versions", [])]
                    for m in client.get("/v1/models").json().get("models", [])}
        for i, (key, (method, path, body)) in enumerate(reqs.items()):
            t = time.monotonic()
            r = client.get(path) if method == "GET" else client.post(path, json=body)
            if r.status_code != 200:
                raise RuntimeError(f"{key}: {r.status_code} {r.text[:300]}")
            arrays[key] = decode_answer(r.content, r.headers["content-type"])
            sums[key] = hashlib.sha256(r.content).hexdigest()
            log.info("[%d/%d] %s: %s in %.1f s", i + 1, len(reqs), key, arrays[key].shape,
                     time.monotonic() - t)
            if key.startswith("readme/"):
                committed = (REPO / "docs/api" / key.removeprefix("readme/")).read_bytes()
                ref = decode_image(committed)
                same_shape = ref.shape == arrays[key].shape
                n, nd, mx = pixel_diff(ref, arrays[key]) if same_shape else (0, -1, -1)
                readme[key] = {"identical_bytes": r.content == committed, "pixels": n,
                               "differing": nd, "max_abs_diff": mx}
                log.info("  vs committed docs/api picture: bytes identical %s, %d of %d "
                         "pixels differ, max |diff| %d", r.content == committed, nd, n, mx)
    meta = {"label": label, "onnxruntime": ort.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "cpu_features": cpu_features(),
            "intra_op_threads": threads, "opt_level": opt_level, "config": dict(config),
            "seeds": seeds, "models": versions, "sha256": sums,
            "readme_vs_committed": readme, "seconds": round(time.monotonic() - t0, 1)}
    log.info("cpu features seen: %s; onnxruntime %s", meta["cpu_features"], ort.__version__)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays, **{META: np.array(json.dumps(meta))})
    log.info("wrote %d answers to %s in %.0f s", len(arrays), out, meta["seconds"])


# -- compare

def load(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files if k != META}
        meta = json.loads(str(z[META])) if META in z.files else {}
    return arrays, meta


def describe(meta: dict[str, Any]) -> str:
    feats = meta.get("cpu_features", {})
    on = ",".join(k for k in ("avx512f", "avx2", "fma") if feats.get(k)) or "?"
    extra = f", opt {meta['opt_level']}" if meta.get("opt_level", "all") != "all" else ""
    extra += f", config {meta['config']}" if meta.get("config") else ""
    return (f"{meta.get('label', '?')} (onnxruntime {meta.get('onnxruntime', '?')}, "
            f"cpu {on}{extra})")


def compare(a_path: Path, b_path: Path) -> None:
    a, ma = load(a_path)
    b, mb = load(b_path)
    if ma.get("onnxruntime") != mb.get("onnxruntime"):
        log.warning("different onnxruntime versions: %s vs %s", ma.get("onnxruntime"),
                    mb.get("onnxruntime"))
    only = sorted(set(a) ^ set(b))
    if only:
        log.warning("%d requests in one file only (skipped): %s", len(only), only[:5])
    groups: dict[str, dict[str, Any]] = {}
    hist: dict[int, int] = {}
    for key in sorted(set(a) & set(b)):
        if a[key].shape != b[key].shape:
            log.error("%s: shapes differ %s vs %s (skipped)", key, a[key].shape, b[key].shape)
            continue
        n, nd, mx = pixel_diff(a[key], b[key])
        d = np.abs(a[key].astype(np.int16) - b[key].astype(np.int16))
        for v, c in zip(*np.unique(d[d > 0], return_counts=True)):
            hist[int(v)] = hist.get(int(v), 0) + int(c)
        g = groups.setdefault(group_of(key), {"requests": 0, "pixels": 0, "differing": 0,
                                              "max": 0, "worst": None})
        g["requests"] += 1
        g["pixels"] += n
        g["differing"] += nd
        g["max"] = max(g["max"], mx)
        frac = nd / n if n else 0.0
        if nd and (g["worst"] is None or frac > g["worst"][1]):
            g["worst"] = (key, frac, nd, n, mx)
    print(f"A: {describe(ma)}  \nB: {describe(mb)}\n")
    print("| group | requests | pixels | differing | ppm | % | max abs diff | worst request "
          "(differing / pixels, max) |")
    print("|---|--:|--:|--:|--:|--:|--:|---|")
    total = {"requests": 0, "pixels": 0, "differing": 0, "max": 0, "worst": None}
    for name, g in groups.items():
        print(row(name, g))
        for k in ("requests", "pixels", "differing"):
            total[k] += g[k]
        total["max"] = max(total["max"], g["max"])
        if g["worst"] and (total["worst"] is None or g["worst"][1] > total["worst"][1]):
            total["worst"] = g["worst"]
    print(row("**total**", total))
    print(f"\n|diff| histogram (pixel channels): "
          f"{', '.join(f'{v}: {c}' for v, c in sorted(hist.items())) or 'none'}")
    for key, info in ma.get("readme_vs_committed", {}).items():
        log.info("A %s vs committed: %s", key, info)
    for key, info in mb.get("readme_vs_committed", {}).items():
        log.info("B %s vs committed: %s", key, info)


def row(name: str, g: dict[str, Any]) -> str:
    frac = g["differing"] / g["pixels"] if g["pixels"] else 0.0
    w = g["worst"]
    worst = f"{w[0]} ({w[2]} / {w[3]} = {w[1] * 100:.3f}%, max {w[4]})" if w else "-"
    return (f"| {name} | {g['requests']} | {g['pixels']} | {g['differing']} | "
            f"{frac * 1e6:.1f} | {frac * 100:.4f} | {g['max']} | {worst} |")


# -- speed

def speed(variants: list[str], batch: int, seconds: float, threads: int, rounds: int) -> None:
    """images/s of raw generation per model and session variant (see VARIANTS), the variants
    interleaved round by round so that they share the machine's state; best round counts."""
    from ganserve.generator import OnnxGenerator
    from ganserve.manifest import list_versions

    print(f"onnxruntime {ort.__version__}, cpu {cpu_features()}, batch {batch}, "
          f"intra-op threads {threads}, best of {rounds} rounds of {seconds} s\n")
    print("| model | " + " | ".join(f"{v} img/s" for v in variants) + " | "
          + " | ".join(f"{v} vs {variants[0]}" for v in variants[1:]) + " |")
    print("|---|" + "--:|" * (2 * len(variants) - 1))
    for model in MODELS:
        vdir = REPO / "models" / model / list_versions(REPO / "models" / model)[-1]
        gens = {}
        for v in variants:
            with tuned_sessions(*VARIANTS[v]):
                gens[v] = OnnxGenerator(vdir, device="cpu", intra_op_threads=threads)
        g0 = gens[variants[0]]
        z = g0.latents(list(range(batch)))
        cls = np.arange(batch) % g0.manifest.num_classes if g0.manifest.conditional else None
        best = dict.fromkeys(variants, 0.0)
        for v in variants:                      # warm-up
            gens[v].generate_z(z, cls)
        for _ in range(rounds):
            for v in variants:
                n, t0 = 0, time.perf_counter()
                while time.perf_counter() - t0 < seconds:
                    gens[v].generate_z(z, cls)
                    n += batch
                best[v] = max(best[v], n / (time.perf_counter() - t0))
        print(f"| {model} | " + " | ".join(f"{best[v]:.0f}" for v in variants) + " | "
              + " | ".join(f"{best[v] / best[variants[0]] - 1:+.1%}" for v in variants[1:])
              + " |", flush=True)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    for noisy in ("httpx", "service", "ganserve"):      # one line per request otherwise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("render", help="answer the request set, save decoded pixels")
    r.add_argument("out", type=Path)
    r.add_argument("--seeds", type=int, default=256, help="POST /sample seeds 0..N-1 per model")
    r.add_argument("--label", default=platform.node(), help="what ran it (e.g. qemu -cpu ...)")
    r.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    r.add_argument("--opt-level", choices=OPT_LEVELS, default="all")
    r.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                   help="session config entry for every session (repeatable)")
    c = sub.add_parser("compare", help="markdown table of pixel differences")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    s = sub.add_parser("speed", help="images/s per session variant")
    s.add_argument("--variants", default="all,no-nchwc,disable",
                   help=f"comma-separated, of {', '.join(VARIANTS)}")
    s.add_argument("--batch", type=int, default=64)
    s.add_argument("--seconds", type=float, default=2.0)
    s.add_argument("--rounds", type=int, default=3)
    s.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    if args.cmd == "render":
        render(args.out, args.seeds, args.label, args.threads, args.opt_level,
               parse_config(args.config))
    elif args.cmd == "compare":
        compare(args.a, args.b)
    else:
        variants = args.variants.split(",")
        unknown = [v for v in variants if v not in VARIANTS]
        if unknown:
            raise SystemExit(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
        speed(variants, args.batch, args.seconds, args.threads, args.rounds)

if __name__ == "__main__":
    main()
