"""Compute a version's latent directions from its ONNX graphs and the evaluation classifier
(no torch), and store them with the version (``directions.json``; the reader and the edit
are ``ganserve.latent_directions``).

Principal directions (GANSpace, Härkönen et al. 2020):
- a w-space family: PCA of sampled w (after the mapping, where the latent is disentangled);
  ``pcK``'s vector is sigma_K u_K (amount 1 = one standard deviation along u_K);
- a z-space family: z is isotropic, so PCA of z finds nothing. As GANSpace does for BigGAN,
  PCA runs on what the generator makes of z (here the images, less their class's mean image
  for a conditional model: the axes of style within a class), and each axis is carried back
  to z by linear regression of z on the standardized PCA coordinates; its vector is the unit
  direction (z has one standard deviation along any unit vector).

Class directions, from sampled latents labelled by the evaluation classifier's call on
their images: learned through the generator where the caller passes ``learn`` (the torch
side's ``ganserve.training.class_directions``: one vector per class, ``vectors``), else
InterFaceGAN-style linear boundaries fitted by LDA (per class the mean, and the pooled
within-class covariance shrunk towards its mean variance; the boundary between a and b is
normal to inv(cov) (mu_b - mu_a); stored per class: mu_k and inv(cov) mu_k). Pairs are
formed when read. A conditional generator's class is an input: its class directions move
the class weights. Each pair is then measured on other samples than those it was fitted
to: the share of images classified as a that the classifier calls b after an edit of
amount 1 (``flip``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ganserve.features import FeatureExtractor
from ganserve.generator import OnnxGenerator, class_weights
from ganserve.latent_directions import SCHEMA, Directions
from ganserve.manifest import (
    atomic_write_text,
    fresh_name,
    hash_files,
    load_manifest,
    write_manifest,
)
from ganserve.model_store import model_lock

log = logging.getLogger(__name__)
DIRECTIONS_FILE = "directions.json"
FIRST_SEED = 1_000_000          # away from the seeds people try first
BATCH = 500


class Sampled:
    """N samples of a version: z, the edited latent (z or w), classes fed, images."""

    def __init__(self, gen: OnnxGenerator, n: int, seed: int = FIRST_SEED):
        m = gen.manifest
        self.gen = gen
        self.z = gen.latents(list(range(seed, seed + n)))
        self.w_space = m.family_spec.w_space
        self.fed = (np.arange(n) % m.num_classes) if m.conditional else None
        self.latent = (np.concatenate([gen.mapping(self.z[i:i + BATCH])
                                       for i in range(0, n, BATCH)])
                       if self.w_space else self.z)
        self.images = self.render(self.latent, None if self.fed is None else
                                  class_weights(self.fed, m.num_classes))

    @property
    def space(self) -> str:
        return "w" if self.w_space else "z"

    def render(self, latent: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
        out = []
        for i in range(0, len(latent), BATCH):
            part = latent[i:i + BATCH]
            if self.w_space:
                out.append(self.gen.synthesis(self.gen.broadcast(part)))
            else:
                feeds = {"z": part.astype(np.float32)}
                if weights is not None:
                    feeds["class"] = weights[i:i + BATCH]
                out.append(self.gen.sessions["generator"].run(None, feeds)[0])
        return np.concatenate(out)


def principal(s: Sampled, k: int) -> list[dict[str, Any]]:
    """The first ``k`` principal directions (see the module's docstring)."""
    if s.w_space:
        centred = s.latent - s.latent.mean(0)
        _, sv, vt = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
        var = sv ** 2 / (len(centred) - 1)
        return [{"name": f"pc{i}", "vector": (vt[i] * np.sqrt(var[i])).tolist(),
                 "explained_variance_ratio": float(var[i] / var.sum())} for i in range(k)]
    x = s.images.reshape(len(s.images), -1).astype(np.float64)
    if s.fed is not None:           # within-class variation: less each class's mean image
        for c in np.unique(s.fed):
            x[s.fed == c] -= x[s.fed == c].mean(0)
    x -= x.mean(0)
    u, sv, _ = np.linalg.svd(x, full_matrices=False)
    var = sv ** 2 / (len(x) - 1)
    coords = u[:, :k] * np.sqrt(len(x) - 1)                 # standardized: unit variance
    beta, *_ = np.linalg.lstsq(coords, s.z.astype(np.float64), rcond=None)   # [k, D]
    out = []
    for i in range(k):
        unit = beta[i] / max(np.linalg.norm(beta[i]), 1e-12)
        out.append({"name": f"pc{i}", "vector": unit.tolist(),
                    "explained_variance_ratio": float(var[i] / var.sum())})
    return out


def class_boundaries(s: Sampled, labels: np.ndarray, names: list[str],
                     shrink: float = 0.1) -> dict[str, Any]:
    """Per class: mean latent and inv(cov) mean (see the module's docstring)."""
    if s.fed is not None:
        return {"space": "class", "names": names}
    x = s.latent.astype(np.float64)
    present = [c for c in range(len(names)) if (labels == c).sum() >= 2]
    means = np.zeros((len(names), x.shape[1]))
    within = np.zeros((x.shape[1], x.shape[1]))
    for c in present:
        xc = x[labels == c]
        means[c] = xc.mean(0)
        within += (xc - means[c]).T @ (xc - means[c])
    within /= max(len(x) - len(present), 1)
    cov = (1 - shrink) * within + shrink * np.trace(within) / len(within) * np.eye(len(within))
    whitened = np.linalg.solve(cov, means.T).T
    return {"space": s.space, "names": names, "means": means.tolist(),
            "whitened_means": whitened.tolist(),
            "samples": [int((labels == c).sum()) for c in range(len(names))]}


def measure_flips(s: Sampled, labels: np.ndarray, names: list[str], directions: Directions,
                  classify, per_pair: int) -> dict[str, float]:
    """For each class pair a->b: the share of images labelled a that are labelled b after
    an edit of amount 1 (classes with no samples: not measured)."""
    flips = {}
    weights = (None if s.fed is None
               else class_weights(s.fed, s.gen.manifest.num_classes))
    for d in directions.all():
        if d.kind != "class":
            continue
        a = names.index(d.info["from"])
        rows = np.flatnonzero(labels == a)[:per_pair]
        if len(rows) == 0:
            continue
        latent, w = directions.apply(s.latent[rows], None if weights is None
                                     else weights[rows], {d.name: 1.0})
        got = classify(s.render(latent, w))
        flips[d.name] = round(float((got == names.index(d.info["to"])).mean()), 4)
    return flips


# (sampled latents [N, D], their classifier labels [N], class names) -> the file's classes
ClassLearner = Callable[[np.ndarray, np.ndarray, list[str]], dict[str, Any]]


def compute(version_dir: str | Path, extractor: str | Path, n: int = 10_000, k: int = 10,
            per_pair: int = 100, learn: ClassLearner | None = None) -> dict[str, Any]:
    """The directions file's content for the version in ``version_dir``. ``learn``: fits
    the class directions of a latent-space model in place of the LDA boundaries (the
    torch side's ``learn_class_vectors``, which this module cannot import)."""
    t0 = time.perf_counter()
    gen = OnnxGenerator(version_dir, device="cpu")
    ext = FeatureExtractor(extractor, device="cpu")
    m = gen.manifest
    names = list(m.class_names) or list(ext.class_names)
    if not ext.class_names or names != list(ext.class_names):
        log.warning("%s: classes %s are not the classifier's %s: principal directions only",
                    m.name, names[:12], ext.class_names[:12])
        names = []

    def classify(images: np.ndarray) -> np.ndarray:
        return ext.run(np.clip(images, -1, 1))[1].argmax(1)

    s = Sampled(gen, n)
    data: dict[str, Any] = {"schema": SCHEMA, "space": s.space, "dim": int(s.latent.shape[1]),
                            "principal": principal(s, k), "classes": None}
    if names:
        labels = s.fed if s.fed is not None else classify(s.images)
        data["classes"] = (learn(s.latent, labels, names) if learn is not None and s.fed is None
                           else class_boundaries(s, labels, names))
        # flips on other samples than the directions were fitted to
        held = Sampled(gen, per_pair * len(names) * 4, seed=FIRST_SEED + n)
        held_labels = held.fed if held.fed is not None else classify(held.images)
        data["classes"]["flip"] = measure_flips(held, held_labels, names, Directions(data),
                                                classify, per_pair)
    data["made"] = {"samples": n, "seconds": round(time.perf_counter() - t0, 1),
                    "extractor": ext.spec.name, "first_seed": FIRST_SEED,
                    "flips_first_seed": FIRST_SEED + n}
    return data


def add_directions(version_dir: str | Path, data: dict[str, Any]) -> Path:
    """Store ``data`` as the version's directions (file, sha256 and manifest under the
    model's lock; the manifest last, atomically)."""
    vdir = Path(version_dir)
    Directions(data)                        # what the service will read must load
    with model_lock(vdir.parent):
        m = load_manifest(vdir)
        file, old = fresh_name(vdir, DIRECTIONS_FILE), m.directions
        atomic_write_text(vdir / file, json.dumps(data) + "\n")
        m.directions = file
        m.inversion["directions"] = {**data["made"], "principal": len(data["principal"]),
                                     "class_space": (data["classes"] or {}).get("space")}
        m.files = hash_files(vdir, sorted((set(m.files) - {old}) | {file}))
        write_manifest(vdir, m)
        if old is not None and old != file:
            (vdir / old).unlink(missing_ok=True)
    log.info("%s: directions added", vdir)
    return vdir / file
