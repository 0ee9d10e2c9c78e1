"""Class directions learned through the generator: one vector per class, so that adding
``u_b - u_a`` to the latent of an image of class a makes an image of class b, by the
evaluation classifier's call (``ganserve directions --learn-steps N``; not the default).

Each step takes sampled latents of known class a, picks a target class b for each, renders
``latent + u_b - u_a`` with the frozen generator and lowers the classifier's cross-entropy
for b until it calls the image b with 80% confidence (a weight decay shortens the vectors
meanwhile); the image is shifted by a random pixel offset before it is judged, so a
direction must make the class, not one pixel pattern the classifier reads as it.

What it buys, measured on the shipped models (README, *Measured*): 95-100% of Sneakers
become Sandals at amount 1, against about 40% for the LDA boundaries, but the moves are
long (|u_b - u_a| near |z|) and land on much the same Sandal whatever the start: SSIM to
the start 0.09-0.11, lower than a random direction of the same length keeps. A vector
shared by every start cannot both cross and keep the start here, so the shipped versions
keep the LDA directions, which change less and flip less; this is the option for users
who want the class change above all.

A conditional model's class is an input: its class directions move the class weights, and
nothing is learned.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ganserve.latent_directions import MIN_CLASS_SAMPLES
from ganserve.training.inversion import FrozenGenerator, Perceptual

log = logging.getLogger(__name__)


@dataclass
class ClassDirectionTraining:
    steps: int = 1000           # Adam steps
    batch: int = 64             # (latent, target class) pairs per step
    lr: float = 0.05            # on the vectors in units of the latent's std
    confidence: float = 0.8     # no push beyond this probability of the target class
    weight_decay: float = 0.05  # mean square of the vectors (std units) in the loss
    shift: int = 2              # the judged image moves by up to this many pixels
    seed: int = 0


def _shifted(images: torch.Tensor, shift: int, rng: np.random.Generator) -> torch.Tensor:
    if shift <= 0:
        return images
    dy, dx = (int(v) for v in rng.integers(-shift, shift + 1, 2))
    return torch.roll(images, (dy, dx), (2, 3))


def learn_class_vectors(version_dir: str | Path, extractor_dir: str | Path,
                        latent: np.ndarray, labels: np.ndarray, names: list[str],
                        opts: ClassDirectionTraining | None = None) -> dict[str, Any]:
    """The ``classes`` section of a directions file: per class a vector (latent units), from
    sampled ``latent`` [N, D] (z, or w for a w-space family) labelled ``labels`` [N] by the
    classifier whose classes are ``names``."""
    opts = opts or ClassDirectionTraining()
    torch.manual_seed(opts.seed)
    rng = np.random.default_rng(opts.seed)
    gen = FrozenGenerator(version_dir)
    if gen.num_classes:
        raise ValueError("a conditional model's class directions move its class input")
    judge = Perceptual(extractor_dir)
    counts = np.bincount(labels, minlength=len(names))
    known = np.flatnonzero(counts >= MIN_CLASS_SAMPLES)
    record = {"space": gen.latent, "names": list(names), "method": "learned",
              "samples": [int(c) for c in counts]}
    if len(known) < 2:          # no pair to learn (the reader forms pairs of known ones)
        log.warning("%s: %d classes have %d+ samples: no class directions", version_dir,
                    len(known), MIN_CLASS_SAMPLES)
        return record | {"vectors": np.zeros((len(names), latent.shape[1])).tolist(),
                         "learned": {**asdict(opts), "steps": 0}}
    rows = np.flatnonzero(np.isin(labels, known))
    lat = torch.from_numpy(latent.astype(np.float32))
    std = gen.latent_stats()[1]
    u = torch.zeros(len(names), lat.shape[1], requires_grad=True)
    optim = torch.optim.Adam([u], lr=opts.lr)
    t0, recent = time.perf_counter(), []
    for step in range(opts.steps):
        pick = rng.choice(rows, opts.batch)
        a = torch.from_numpy(labels[pick].astype(np.int64))
        # a target other than the source, uniformly among the known classes
        b = torch.from_numpy(known[(np.searchsorted(known, labels[pick])
                                    + rng.integers(1, len(known), opts.batch)) % len(known)])
        images = gen.image(lat[pick] + (u[b] - u[a]) * std)
        ce = F.cross_entropy(judge.logits(_shifted(images, opts.shift, rng)), b,
                             reduction="none")
        # an image the classifier already calls b with ``confidence`` pulls no further: the
        # vectors stay as short as crossing takes, and keep the rest of the image
        enough = -math.log(opts.confidence)
        loss = (ce - enough).clamp_min(0).mean() + opts.weight_decay * u.square().mean()
        ce = ce.mean()
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        recent = (recent + [float(ce.detach())])[-50:]
        if step % 100 == 0 or step == opts.steps - 1:
            log.info("class directions step %d/%d: cross-entropy %.4f", step + 1, opts.steps,
                     recent[-1])
    vectors = (u.detach() * std).numpy()
    return record | {"vectors": vectors.astype(np.float64).round(7).tolist(),
                     "learned": {**asdict(opts), "seconds": round(time.perf_counter() - t0, 1),
                                 # the last 50 steps' mean
                                 "final_cross_entropy": round(float(np.mean(recent)), 5)}}
