"""Class directions, judged: how many Sneakers a Sneaker->Sandal move turns into Sandals, and
how much of the rest of the image it keeps, against a random direction of the same length.

    python benchmarks/direction_quality.py [--models models] [--n 200] [--pair Sneaker->Sandal]

For every version in the store with latent directions: generate images until ``n`` of them
are the pair's source class by the evaluation classifier's call (a conditional model is
asked for that class), move each along the pair's direction by each amount (1 = the stored
move from one class to the other), and report
  flip: the share the classifier then calls the target class;
  SSIM to start: how much of the image stayed (1 = unchanged);
  the same two for a random direction of the same length (per image: a Gaussian direction
  in the same space, z, w or the class weights, scaled to the edit's displacement).
A good class direction flips many and keeps more than the random one; a random direction
that flips as many is no direction at all.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ganserve.features import FeatureExtractor  # noqa: E402
from ganserve.generator import OnnxGenerator, class_weights  # noqa: E402
from ganserve.latent_directions import Directions  # noqa: E402
from ganserve.latents import z_from_seeds  # noqa: E402
from ganserve.manifest import list_models, list_versions, load_manifest  # noqa: E402
from ganserve.quality import ssim  # noqa: E402

AMOUNTS = (0.5, 1.0, 1.5, 2.0, 3.0)


class Subject:
    """A version's generator as latents -> images, in the space its directions move."""

    def __init__(self, vdir: Path):
        self.gen = OnnxGenerator(vdir, device="cpu")
        self.m = self.gen.manifest
        self.directions = Directions.load(vdir, self.m)

    def start(self, seeds: list[int], cls: int | None) -> tuple[np.ndarray, np.ndarray | None]:
        z = z_from_seeds(seeds, self.m.z_dim)
        if self.m.family_spec.w_space:
            return self.gen.mapping(z), None
        return z, (class_weights([cls] * len(seeds), self.m.num_classes)
                   if self.m.conditional else None)

    def images(self, latent: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
        if self.m.family_spec.w_space:
            out = self.gen.synthesis(self.gen.broadcast(latent))
        else:
            feeds = {"z": latent.astype(np.float32)}
            if weights is not None:
                feeds["class"] = weights.astype(np.float32)
            out = self.gen.sessions["generator"].run(None, feeds)[0]
        return np.clip(out, -1, 1)


def sources(s: Subject, ext: FeatureExtractor, src: int, n: int, cls: int | None
            ) -> tuple[np.ndarray, np.ndarray | None]:
    """``n`` starts whose images the classifier calls ``src``."""
    lat, wts, seed = [], [], 0
    while sum(len(x) for x in lat) < n and seed < 200 * n:
        seeds = list(range(seed, seed + 500))
        seed += 500
        latent, weights = s.start(seeds, cls)
        keep = ext.run(s.images(latent, weights))[1].argmax(1) == src
        lat.append(latent[keep])
        wts.append(None if weights is None else weights[keep])
    latent = np.concatenate(lat)[:n]
    return latent, (None if wts[0] is None else np.concatenate(wts)[:n])


def random_like(delta: np.ndarray, rng: np.random.Generator, zero_sum: bool) -> np.ndarray:
    """Per row: a Gaussian direction with the row's length (summing to 0 for class
    weights, as every class move does)."""
    r = rng.standard_normal(delta.shape).astype(np.float32)
    if zero_sum:
        r -= r.mean(1, keepdims=True)
    r /= np.linalg.norm(r, axis=1, keepdims=True)
    return r * np.linalg.norm(delta, axis=1, keepdims=True)


def measure(s: Subject, ext: FeatureExtractor, pair: str, n: int, seed: int) -> list[dict]:
    names = s.m.class_names
    a, b = pair.split("->")
    src, dst = ext.class_names.index(a), ext.class_names.index(b)
    latent, weights = sources(s, ext, src, n, names.index(a) if s.m.conditional else None)
    start = s.images(latent, weights)
    d = s.directions.get(pair)
    rng = np.random.default_rng(seed)
    rows = []
    for amount in AMOUNTS:
        moved, mw = s.directions.apply(latent, weights, {pair: amount})
        if d.space == "class":
            rnd_w = np.clip(weights + random_like(mw - weights, rng, True), 0, None)
            rnd_w /= np.maximum(rnd_w.sum(1, keepdims=True), 1e-12)
            rnd = s.images(latent, rnd_w)
        else:
            rnd = s.images(latent + random_like(moved - latent, rng, False), weights)
        edited = s.images(moved, mw)
        rows.append({"amount": amount, "n": len(latent),
                     "flip": float((ext.run(edited)[1].argmax(1) == dst).mean()),
                     "ssim": float(ssim(start, edited).mean()),
                     "random_flip": float((ext.run(rnd)[1].argmax(1) == dst).mean()),
                     "random_ssim": float(ssim(start, rnd).mean())})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=str(REPO / "models"))
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--pair", default="Sneaker->Sandal")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    models = Path(args.models)
    ext = FeatureExtractor(models / "_evaluators" / "fashion-mnist", device="cpu")
    print(f"{args.pair}: flip = share called the target class after the move; SSIM to the "
          "start; random = a random direction of the same length\n")
    print("| model | space | amount | images | flip | SSIM to start | random: flip | "
          "random: SSIM to start |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name in list_models(models):
        for version in list_versions(models / name):
            vdir = models / name / version
            if load_manifest(vdir).directions is None:
                continue
            s = Subject(vdir)
            space = s.directions.get(args.pair).space
            for r in measure(s, ext, args.pair, args.n, args.seed):
                print(f"| {name}/{version} | {space} | {r['amount']:g} | {r['n']} | "
                      f"{r['flip']:.1%} | {r['ssim']:.3f} | {r['random_flip']:.1%} | "
                      f"{r['random_ssim']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
