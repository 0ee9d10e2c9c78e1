"""Make the README's figures from the model store (ONNX Runtime only) and the run folders.

    python scripts/make_figures.py [--models models] [--runs runs] [--out docs]

Writes, per shipped model: a sample grid (seeds 0..63) and an interpolation strip; for the
cGAN a class-by-class grid; for StyleGAN NVIDIA-style style-mixing grids (coarse and fine
layers) and a truncation strip; and one FID-over-training plot of every run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ganserve.generator import OnnxGenerator  # noqa: E402
from ganserve.images import make_grid, save_png, to_uint8, upscale  # noqa: E402
from ganserve.latent_space import interpolation_steps, mix_ws, parse_styles, slerp  # noqa: E402
from ganserve.manifest import list_versions, load_manifest  # noqa: E402

SCALE = 3


def grid_png(images: np.ndarray, cols: int, path: Path, scale: int = SCALE) -> None:
    save_png(upscale(make_grid(to_uint8(np.clip(images, -1, 1)), cols=cols, pad=1), scale),
             path)
    print("wrote", path)


def samples(gen: OnnxGenerator, out: Path) -> None:
    seeds = list(range(64))
    K = gen.manifest.num_classes
    grid_png(gen.generate(seeds, [s % K for s in seeds] if K else None), 8,
             out / f"{gen.manifest.name}-samples.png")


def class_grid(gen: OnnxGenerator, out: Path) -> None:
    K = gen.manifest.num_classes
    seeds = [r for r in range(8) for _ in range(K)]
    classes = [c for _ in range(8) for c in range(K)]
    grid_png(gen.generate(seeds, classes), K, out / f"{gen.manifest.name}-classes.png")


def interpolation(gen: OnnxGenerator, out: Path, steps: int = 10) -> None:
    m = gen.manifest
    t = interpolation_steps(steps)
    rows = []
    pairs = [(1, 2), (3, 4), (5, 6), (7, 8)]
    for i, (a, b) in enumerate(pairs):
        za, zb = gen.latents([a])[0], gen.latents([b])[0]
        if m.family_spec.w_space:       # lerp in w, as NVIDIA does
            wa, wb = gen.mapping(np.stack([za, zb]))
            ws = gen.broadcast(wa[None] + t[:, None] * (wb - wa)[None])
            rows.append(gen.synthesis(ws))
        elif m.conditional:             # Sneaker -> Sandal style morphs: z and class together
            ca, cb = [(7, 5), (0, 3), (9, 7), (2, 4)][i]
            w = np.zeros((steps, m.num_classes), np.float32)
            w[:, ca], w[:, cb] = 1 - t, t
            rows.append(gen.generate_z(slerp(za, zb, t), w))
        else:
            rows.append(gen.generate_z(slerp(za, zb, t)))
    grid_png(np.concatenate(rows), steps, out / f"{m.name}-interpolation.png")


def style_mixing(gen: OnnxGenerator, out: Path, styles: str, tag: str) -> None:
    """NVIDIA layout: first row the column sources, first column the row sources."""
    row_seeds, col_seeds = [85, 100, 75, 458, 1500], [55, 821, 1789, 293, 3]
    rw = gen.broadcast(gen.mapping(gen.latents(row_seeds)))
    cw = gen.broadcast(gen.mapping(gen.latents(col_seeds)))
    layers = parse_styles(styles, gen.manifest.num_ws)
    mixed = gen.synthesis(mix_ws(rw, cw, layers)).reshape(len(row_seeds), len(col_seeds),
                                                          *gen.manifest_shape())
    row_img, col_img = gen.synthesis(rw), gen.synthesis(cw)
    blank = np.full_like(row_img[:1], -1.0)
    cells = [blank, col_img]
    for r in range(len(row_seeds)):
        cells += [row_img[r:r + 1], mixed[r]]
    grid_png(np.concatenate(cells), len(col_seeds) + 1,
             out / f"{gen.manifest.name}-style-mixing-{tag}.png")


def truncation(gen: OnnxGenerator, out: Path) -> None:
    psis = [1.0, 0.8, 0.6, 0.4, 0.2, 0.0]
    seeds = list(range(8))
    imgs = np.stack([gen.generate(seeds, psi=p) for p in psis], axis=1)    # [seed, psi, ...]
    grid_png(imgs.reshape(-1, *imgs.shape[2:]), len(psis),
             out / f"{gen.manifest.name}-truncation.png")


def fid_curves(models: Path, runs: Path, out: Path) -> None:
    """FID over training of every shipped model: from its manifest's ``training.fid_curve``,
    or from its run folder's metrics.jsonl when the manifest predates that field."""
    from ganserve.evaluation.evaluate import DEFAULT_EXTRACTOR
    from ganserve.features import ExtractorSpec, find_spec
    from ganserve.training.plots import plot_fid_curves, read_jsonl

    series = {}
    for model_dir in sorted(models.iterdir()):
        if model_dir.name.startswith((".", "_")) or not list_versions(model_dir):
            continue
        m = load_manifest(model_dir / list_versions(model_dir)[-1])
        rows = m.training.fid_curve or [
            r for r in read_jsonl(runs / model_dir.name / "metrics.jsonl") if "fid" in r]
        if rows:
            series[model_dir.name] = ([r["step"] * m.training.batch / 1000 for r in rows],
                                      [r["fid"] for r in rows])
    if not series:
        print("no FID curves found (no manifest fid_curve, no run folders)")
        return
    # the floor lives with the evaluator that scored the in-training points
    spec = ExtractorSpec.model_validate_json(find_spec(models / DEFAULT_EXTRACTOR).read_text())
    floor = spec.floor.get("fid")
    path = plot_fid_curves(series, out / "fid-over-training.png", floor,
                           xlabel="thousands of real images shown to D",
                           ylabel="FID, classifier features (2k samples)")
    print("wrote", path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="models")
    ap.add_argument("--runs", default="runs")
    ap.add_argument("--out", default="docs")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for model_dir in sorted(Path(args.models).iterdir()):
        if model_dir.name.startswith((".", "_")) or not list_versions(model_dir):
            continue
        gen = OnnxGenerator(model_dir / list_versions(model_dir)[-1])
        samples(gen, out)
        interpolation(gen, out)
        if gen.manifest.conditional:
            class_grid(gen, out)
        if gen.manifest.family_spec.w_space:
            style_mixing(gen, out, "coarse", "coarse")
            style_mixing(gen, out, "4-7", "fine")
            truncation(gen, out)
    fid_curves(Path(args.models), Path(args.runs), out)


if __name__ == "__main__":
    main()
