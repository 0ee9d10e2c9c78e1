"""Projection quality on Fashion-MNIST test images the models never saw, one run.

    python benchmarks/projection_quality.py [--models models] [--n 500] [--api]
        [--refine 300] [--refine-n 200] [--figure docs/projection.png]

For every version in the store with a projection encoder: each test image is encoded (one
ONNX Runtime pass) and rendered back by the generator; the reconstruction is compared with
the image as the model sees it (28 -> 32 padded):
  PSNR (dB), SSIM (ganserve.quality, scikit-image's definition), and class agreement: the
  evaluation classifier's call on the reconstruction equals its call on the original.
Time per image: the encoder pass at batch 1 in process, and with --api through
``POST /v1/models/NAME/project`` on an in-process app (JSON, one image per request,
sequential: the latency a user sees, PNG decoding and the reconstruction included).
With --refine STEPS, the refined projection (``POST /v1/jobs/project``'s code,
``ganserve.training.projection``) on the first --refine-n of those images, as many of every
class, starting from the encoder's latents: the same scores for the start (encoder) and the
end (refined), and two times: per image when the images are refined 100 at a time (the CPU's
throughput), and one image alone through ``project_image`` as the job runs it (its latency).
With --figure, a picture of ten of them (one per class): original | encoder | refined.
The test images are the t10k split's first N, as many of every class.
"""

from __future__ import annotations

import argparse
import base64
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ganserve.data import load_images  # noqa: E402
from ganserve.features import FeatureExtractor  # noqa: E402
from ganserve.generator import OnnxGenerator, class_weights  # noqa: E402
from ganserve.images import encode_png, make_grid, save_png, to_uint8, upscale  # noqa: E402
from ganserve.manifest import list_models, list_versions, load_manifest  # noqa: E402
from ganserve.quality import psnr, ssim  # noqa: E402


def test_images(n: int, resolution: int, channels: int):
    data = load_images(split="t10k", resolution=resolution, channels=channels)
    per_class = max(1, n // data.num_classes)
    rows = np.concatenate([np.flatnonzero(data.labels == c)[:per_class]
                           for c in range(data.num_classes)])
    return data.as_float()[rows], data.images[rows], data.labels[rows]


def reconstruct(gen: OnnxGenerator, x: np.ndarray) -> np.ndarray:
    m = gen.manifest
    dim = m.w_dim if m.family_spec.w_space else m.z_dim
    out = []
    for i in range(0, len(x), 100):
        enc = np.concatenate(gen.sessions["encoder"].run(None, {"image": x[i:i + 100]}), 1)
        latent = enc[:, :dim]
        if m.family_spec.w_space:
            out.append(gen.synthesis(gen.broadcast(latent)))
        else:
            feeds = {"z": latent}
            if m.conditional:
                feeds["class"] = class_weights(enc[:, dim:].argmax(1), m.num_classes)
            out.append(gen.sessions["generator"].run(None, feeds)[0])
    return np.clip(np.concatenate(out), -1, 1)


def encoder_ms(gen: OnnxGenerator, x: np.ndarray, reps: int = 200) -> float:
    one = x[:1]
    gen.sessions["encoder"].run(None, {"image": one})
    t0 = time.perf_counter()
    for i in range(reps):
        gen.sessions["encoder"].run(None, {"image": x[i % len(x):i % len(x) + 1]})
    return (time.perf_counter() - t0) / reps * 1e3


def api_ms(models: Path, name: str, u8: np.ndarray, reps: int = 50) -> float:
    from tests.service.conftest import make_client, wait_ready
    bodies = [{"image": base64.b64encode(encode_png(img.transpose(1, 2, 0))).decode()}
              for img in u8[:reps]]
    with make_client(models) as c:
        wait_ready(c)
        c.post(f"/v1/models/{name}/project", json=bodies[0])
        t0 = time.perf_counter()
        for body in bodies:
            r = c.post(f"/v1/models/{name}/project", json=body)
            assert r.status_code == 200, r.text
        return (time.perf_counter() - t0) / len(bodies) * 1e3


def refined(vdir: Path, gen: OnnxGenerator, x: np.ndarray, steps: int,
            ext_dir: Path) -> tuple[np.ndarray, float, float]:
    """(refined reconstructions, ms per image refined 100 at a time, s for one image as
    the job runs it)."""
    import torch

    from ganserve.training.inversion import FrozenGenerator, Perceptual
    from ganserve.training.projection import (
        CALIBRATION_SAMPLES,
        Refinement,
        project_image,
        refine,
        render,
    )
    m = gen.manifest
    dim = m.w_dim if m.family_spec.w_space else m.z_dim
    frozen, perceptual = FrozenGenerator(vdir), Perceptual(ext_dir)
    with torch.no_grad():
        latent, c = frozen.sample(CALIBRATION_SAMPLES, torch.Generator().manual_seed(0))
        perceptual.calibrate(frozen.image(latent, c))
    out, t0 = [], time.perf_counter()
    for i in range(0, len(x), 100):
        enc = np.concatenate(gen.sessions["encoder"].run(None, {"image": x[i:i + 100]}), 1)
        cls = enc[:, dim:].argmax(1) if m.conditional else None
        weights = None if cls is None else torch.from_numpy(class_weights(cls, m.num_classes))
        done = refine(frozen, perceptual, torch.from_numpy(x[i:i + 100]),
                      torch.from_numpy(enc[:, :dim]), weights, Refinement(steps=steps))
        lat = done.latent.numpy()
        out += [render(gen, lat[j:j + 1], None if cls is None else int(cls[j]))
                for j in range(len(lat))]
    batched = (time.perf_counter() - t0) / len(x) * 1e3
    t0 = time.perf_counter()
    project_image(vdir, x[:1], None, ext_dir, Refinement(steps=steps))
    return np.clip(np.concatenate(out), -1, 1), batched, time.perf_counter() - t0


def figure(rows: list[tuple[str, np.ndarray]], labels: np.ndarray, path: Path) -> None:
    """One image per class: a row each of the originals, then each model's reconstructions."""
    first = [int(np.flatnonzero(labels == c)[0]) for c in np.unique(labels)]
    grid = np.concatenate([images[first] for _, images in rows])
    save_png(upscale(make_grid(to_uint8(grid), cols=len(first), pad=2), 3), path)
    print(f"\n{path}: rows top to bottom: " + ", ".join(name for name, _ in rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=str(REPO / "models"))
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--api", action="store_true")
    ap.add_argument("--refine", type=int, default=0, metavar="STEPS")
    ap.add_argument("--refine-n", type=int, default=200)
    ap.add_argument("--figure", type=Path)
    args = ap.parse_args()
    models = Path(args.models)
    ext = FeatureExtractor(models / "_evaluators" / "fashion-mnist", device="cpu")
    print("| model | latent | method | images | PSNR dB | SSIM | class agreement | "
          "ms / image (encoder; refined: 100 at a time) | API ms (refined: one job, s) |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    pictures: list[tuple[str, np.ndarray]] = []
    for name in list_models(models):
        for version in list_versions(models / name):
            vdir = models / name / version
            if "encoder" not in load_manifest(vdir).graphs:
                continue
            gen = OnnxGenerator(vdir, device="cpu")
            m = gen.manifest
            x, u8, labels = test_images(args.n, m.resolution, m.channels)
            rec = reconstruct(gen, x)
            api = f"{api_ms(models, name, u8):.1f}" if args.api else "-"
            latent = "w" if m.family_spec.w_space else "z"
            row(ext, f"{name}/{version}", latent, "encoder", x, rec,
                f"{encoder_ms(gen, x):.2f}", api)
            if args.refine:
                xr, _, lr = test_images(args.refine_n, m.resolution, m.channels)
                enc = reconstruct(gen, xr)
                row(ext, f"{name}/{version}", latent, "encoder (same images)", xr, enc, "", "")
                ref, batched, job_s = refined(vdir, gen, xr, args.refine, ext.dir)
                row(ext, f"{name}/{version}", latent, f"refined, {args.refine} steps", xr, ref,
                    f"{batched:.0f}", f"{job_s:.1f} s")
                if args.figure and not pictures:
                    pictures.append(("original", xr))
                if args.figure:
                    pictures += [(f"{name} encoder", enc), (f"{name} refined", ref)]
                    labels_shown = lr
    if pictures:
        figure(pictures, labels_shown, args.figure)


def row(ext: FeatureExtractor, version: str, latent: str, method: str, x: np.ndarray,
        rec: np.ndarray, ms: str, api: str) -> None:
    agree = (ext.run(rec)[1].argmax(1) == ext.run(x)[1].argmax(1)).mean()
    print(f"| {version} | {latent} | {method} | {len(x)} | {psnr(x, rec).mean():.2f} | "
          f"{ssim(x, rec).mean():.3f} | {agree:.1%} | {ms} | {api} |", flush=True)


if __name__ == "__main__":
    main()
