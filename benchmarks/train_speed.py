"""Training throughput of each family's fashion32 preset on this machine, plus export time.

    python benchmarks/train_speed.py [--steps 30] [--data /usr/share/datasets/fashion-mnist]

All families run in one process, one after another, on the same data, so the ratios in the
table compare like with like on a noisy machine. Export time covers the ONNX export and the
parity check (ONNX Runtime vs eager at batch 1 and 7).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from ganserve.data import load_images  # noqa: E402
from ganserve.families import family as family_spec  # noqa: E402
from ganserve.training.config import TrainConfig, preset  # noqa: E402
from ganserve.training.export import export_run  # noqa: E402
from ganserve.training.loop import train  # noqa: E402
from ganserve.training.networks import config_from_dict  # noqa: E402


def bench_family(family: str, data, steps: int, warmup: int, root: Path,
                 export: bool = True, **train_overrides) -> dict:
    """Images/s of ``steps`` timed steps after ``warmup``; ``train_overrides`` replace the
    preset's training settings (e.g. device="cuda", precision="bf16")."""
    m, t = preset(family, "fashion32")
    m["class_names"] = data.class_names
    if family_spec(family).conditional:
        m["num_classes"] = data.num_classes
    t.update(steps=warmup + steps, log_every=warmup + steps, sample_every=10**9,
             checkpoint_every=10**9, eval_every=0, **train_overrides)
    cfg = TrainConfig(**t)
    run = root / family
    times: list[float] = []

    def progress(p):
        times.append(time.perf_counter())

    # time the steps after `warmup` with a cancel check as the clock
    marks = {}

    def should_cancel() -> bool:
        n = marks.setdefault("n", 0)
        if n == warmup:
            marks["t0"] = time.perf_counter()
        marks["n"] = n + 1
        return False

    train(run, family, config_from_dict(family, m), cfg, data, progress=progress,
          should_cancel=should_cancel)
    elapsed = times[-1] - marks["t0"]
    ips = steps * cfg.batch / elapsed
    if not export:
        return {"family": family, "batch": cfg.batch, "images_per_s": ips,
                "s_per_step": elapsed / steps}
    t0 = time.perf_counter()
    vdir = export_run(run, root / "models", family, "1")
    export_s = time.perf_counter() - t0
    from ganserve.manifest import load_manifest
    parity = max(load_manifest(vdir).parity.values())
    return {"family": family, "batch": cfg.batch, "images_per_s": ips,
            "s_per_step": elapsed / steps, "export_s": export_s, "parity": parity}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=30, help="timed steps per family")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--data", default=None)
    ap.add_argument("--limit", type=int, default=10_000)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    data = load_images(args.data, limit=args.limit)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for fam in ("dcgan", "cgan", "stylegan"):
            rows.append(bench_family(fam, data, args.steps, args.warmup, Path(tmp)))
    base = rows[0]["images_per_s"]
    print(f"\ntraining speed, fashion32 presets, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {args.steps} timed steps each\n")
    print("| family | batch | images/s | s/step | vs dcgan | export + parity (s) | parity max |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['family']} | {r['batch']} | {r['images_per_s']:.0f} | "
              f"{r['s_per_step']:.3f} | {r['images_per_s'] / base:.2f}x | "
              f"{r['export_s']:.2f} | {r['parity']:.1e} |")


if __name__ == "__main__":
    main()
