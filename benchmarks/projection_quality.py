"""Projection quality on Fashion-MNIST test images the models never saw, one run.

    python benchmarks/projection_quality.py [--models models] [--n 500] [--api]

For every version in the store with a projection encoder: each test image is encoded (one
ONNX Runtime pass) and rendered back by the generator; the reconstruction is compared with
the image as the model sees it (28 -> 32 padded):
  PSNR (dB), SSIM (ganserve.quality, scikit-image's definition), and class agreement: the
  evaluation classifier's call on the reconstruction equals its call on the original.
Time per image: the encoder pass at batch 1 in process, and with --api through
``POST /v1/models/NAME/project`` on an in-process app (JSON, one image per request,
sequential: the latency a user sees, PNG decoding and the reconstruction included).
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
from ganserve.images import encode_png  # noqa: E402
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=str(REPO / "models"))
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--api", action="store_true")
    args = ap.parse_args()
    models = Path(args.models)
    ext = FeatureExtractor(models / "_evaluators" / "fashion-mnist", device="cpu")
    print("| model | latent | method | images | PSNR dB | SSIM | class agreement | "
          "ms / image (encoder) | ms / image (API) |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for name in list_models(models):
        for version in list_versions(models / name):
            vdir = models / name / version
            if "encoder" not in load_manifest(vdir).graphs:
                continue
            gen = OnnxGenerator(vdir, device="cpu")
            m = gen.manifest
            x, u8, _ = test_images(args.n, m.resolution, m.channels)
            rec = reconstruct(gen, x)
            agree = (ext.run(rec)[1].argmax(1) == ext.run(x)[1].argmax(1)).mean()
            api = f"{api_ms(models, name, u8):.1f}" if args.api else "-"
            latent = "w" if m.family_spec.w_space else "z"
            print(f"| {name}/{version} | {latent} | encoder | {len(x)} | "
                  f"{psnr(x, rec).mean():.2f} | {ssim(x, rec).mean():.3f} | {agree:.1%} | "
                  f"{encoder_ms(gen, x):.2f} | {api} |", flush=True)


if __name__ == "__main__":
    main()
