"""Projection (GAN inversion), the torch side: train a version's encoder and add it to the
version.

The encoder (``ganserve.training.encoder``) learns from two kinds of images per step:
- the version's own images G(z): their latent is known, so it is regressed directly (z, or
  w = mapping(z) for StyleGAN; a conditional model's class too);
- real images (the training data, never the test split): no latent is known, so the
  encoder's latent is rendered by the frozen generator and compared with the image, in
  pixels and in the evaluation classifier's features (the perceptual term; the classifier
  runs in torch through ``onnx_torch``).
A conditional generator is fed the softmax of the class logits, so the class head learns
from the reconstruction as well.

``add_encoder`` exports it as the graph ``encoder`` of a version (ONNX, parity-checked like
every graph) and records how it was trained in the manifest's ``inversion`` section. Adding
it never changes the version's generator graphs or weights: it is what export would have
written, had it trained the encoder then; a service picks it up the next time it loads the
version.

Namesakes, one concept at several layers (inversion): this module: the encoder's training;
``ganserve.service.inversion``: projecting and editing in the API;
``ganserve.service.api.routes.inversion``: their HTTP routes;
``ganserve.service.schemas.inversion``: the HTTP bodies.
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
from safetensors.torch import load_file

from ganserve.data import ImageData
from ganserve.manifest import (
    Manifest,
    fresh_name,
    hash_files,
    load_manifest,
    verify_files,
    write_manifest,
)
from ganserve.model_store import model_lock
from ganserve.training.encoder import Config as EncoderConfig
from ganserve.training.encoder import Encoder
from ganserve.training.export import check_parity, export_graph, graph_spec
from ganserve.training.networks import build, config_from_dict
from ganserve.training.onnx_torch import OnnxModule

log = logging.getLogger(__name__)
ENCODER_FILE = "encoder.onnx"
ENCODER_PARITY_TOL = 1e-4


class InversionError(Exception):
    """A version that cannot be inverted as asked (no weights, an unknown classifier...)."""


class FrozenGenerator:
    """A version's G-EMA in torch, frozen: latents -> images as the service computes them
    (z [, class weights] -> image; or w broadcast to every layer -> synthesis)."""

    def __init__(self, version_dir: str | Path):
        self.dir = Path(version_dir)
        self.manifest: Manifest = load_manifest(self.dir)
        verify_files(self.dir, self.manifest)
        m = self.manifest
        if "G_ema" not in m.weights:
            raise InversionError(f"{self.dir}: the manifest names no G_ema weights")
        G, _ = build(m.family, config_from_dict(m.family, m.model_args))
        G.load_state_dict(load_file(str(self.dir / m.weights["G_ema"])))
        self.G = G.eval().requires_grad_(False)
        self.spec = m.family_spec
        self.latent = "w" if self.spec.w_space else "z"
        self.latent_dim = m.w_dim if self.spec.w_space else m.z_dim
        self.num_classes = m.num_classes if self.spec.conditional else 0

    def sample(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(latents [n, D], class indices [n] or None) of random images."""
        z = torch.randn(n, self.manifest.z_dim, generator=gen)
        c = (torch.randint(0, self.num_classes, (n,), generator=gen) if self.num_classes
             else None)
        with torch.no_grad():
            return (self.G.mapping(z) if self.spec.w_space else z), c

    def image(self, latent: torch.Tensor, classes: torch.Tensor | None = None) -> torch.Tensor:
        """Images [n, C, R, R] of latents [n, D] (w: also [n, num_ws, D]); ``classes``:
        class weights [n, K] (or indices [n]) for a conditional generator."""
        if self.spec.w_space:
            ws = latent if latent.dim() == 3 else latent[:, None].repeat(1, self.G.num_ws, 1)
            return self.G.synthesis(ws)
        if self.num_classes:
            if classes is None:
                raise InversionError("a conditional generator needs classes")
            if classes.dim() == 1:
                classes = F.one_hot(classes, self.num_classes).float()
            return self.G(latent, classes)
        return self.G(latent)

    def latent_stats(self, n: int = 10_000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-dimension mean and std of the latent (z: 0 and 1 by construction)."""
        if not self.spec.w_space:
            return torch.zeros(self.latent_dim), torch.ones(self.latent_dim)
        w, _ = self.sample(n, torch.Generator().manual_seed(seed))
        return w.mean(0), w.std(0).clamp_min(1e-3)


class Perceptual:
    """The evaluation classifier's features as a distance between images: mean squared
    difference of the 128-d features, over their variance on real images (about 1 for
    unrelated images, 0 for the same one)."""

    def __init__(self, extractor_dir: str | Path):
        from ganserve.features import FeatureExtractor
        ext = FeatureExtractor(extractor_dir, device="cpu")
        self.spec = ext.spec
        self.net = OnnxModule(ext.dir / ext.spec.file)
        self.scale = 1.0

    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        """As ``FeatureExtractor.preprocess``, differentiable (no clipping: a nominal-range
        output beyond [-1, 1] still gets a gradient)."""
        s = self.spec
        x = (images + 1.0) * 0.5
        if x.shape[1] != s.channels:
            x = x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x.mean(1, keepdim=True)
        if x.shape[-1] != s.input_size:
            x = F.interpolate(x, size=(s.input_size,) * 2, mode="bilinear",
                              align_corners=False)
        lo, hi = s.value_range
        return x * (hi - lo) + lo

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(self._prepare(images))[self.spec.features]

    def calibrate(self, real: torch.Tensor) -> None:
        with torch.no_grad():
            self.scale = float(1.0 / self.features(real).var(0).mean().clamp_min(1e-6))

    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Per image [n]."""
        return (self.features(a) - self.features(b)).square().mean(1) * self.scale

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """The classifier's logits [n, K] (differentiable)."""
        return self.net(self._prepare(images))[self.spec.logits]

    def classes(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.logits(images).argmax(1)


@dataclass
class EncoderTraining:
    steps: int = 2000           # optimizer steps
    batch: int = 32             # images per step: half the generator's, half real
    lr: float = 1e-3            # Adam; cosine decay to 5% of it
    latent_weight: float = 1.0  # MSE to the known latent (generated half), in latent stds
    pixel_weight: float = 1.0   # MSE of the reconstruction in [-1, 1] units
    feature_weight: float = 0.1  # perceptual distance of the reconstruction (Perceptual)
    class_weight: float = 0.5   # cross-entropy of the class head (conditional models)
    width: int = 32             # the encoder's first feature maps (its Config.width)
    seed: int = 0


def _real_labels(data: ImageData, gen: FrozenGenerator) -> np.ndarray | None:
    """The data's labels as the generator's class indices, when its classes are the
    generator's (by name); else None (the class head learns from the reconstruction)."""
    names = gen.manifest.class_names
    if not gen.num_classes or data.labels is None or list(data.class_names) != list(names):
        return None
    return data.labels.astype(np.int64)


def _encoder_for(gen: FrozenGenerator, width: int) -> Encoder:
    m = gen.manifest
    enc = Encoder(EncoderConfig(resolution=m.resolution, channels=m.channels,
                                latent=gen.latent, latent_dim=gen.latent_dim,
                                num_classes=gen.num_classes, width=width))
    mean, std = gen.latent_stats()
    enc.latent_mean.copy_(mean)
    enc.latent_std.copy_(std)
    return enc


def _step_loss(enc: Encoder, gen: FrozenGenerator, perceptual: Perceptual,
               opts: EncoderTraining, x_gen: torch.Tensor, target: torch.Tensor,
               c_gen: torch.Tensor | None, x_real: torch.Tensor,
               y_real: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, float]]:
    """One batch's loss (see the module's docstring) and its parts."""
    x = torch.cat([x_gen, x_real])
    out = enc(x)
    latent, n = out[0], len(x_gen)
    parts = {"latent": ((latent[:n] - target) / enc.latent_std).square().mean()}
    classes = None
    if gen.num_classes:
        logits = out[1]
        ce = F.cross_entropy(logits[:n], c_gen)
        if y_real is not None:
            ce = (ce + F.cross_entropy(logits[n:], y_real)) / 2
        parts["class"] = ce
        classes = logits.softmax(1)
    recon = gen.image(latent, classes)
    parts["pixel"] = (recon - x).square().mean()
    parts["feature"] = perceptual.distance(recon, x).mean()
    weights = {"latent": opts.latent_weight, "class": opts.class_weight,
               "pixel": opts.pixel_weight, "feature": opts.feature_weight}
    total = sum(weights[k] * v for k, v in parts.items())
    return total, {k: float(v.detach()) for k, v in parts.items()}


def train_encoder(version_dir: str | Path, data: ImageData, extractor_dir: str | Path,
                  opts: EncoderTraining | None = None) -> tuple[Encoder, dict[str, Any]]:
    """Train the encoder of ``version_dir`` on ``data`` (real images, the generator's
    resolution and channels). Returns it (eval mode) and a record of the run."""
    opts = opts or EncoderTraining()
    torch.manual_seed(opts.seed)
    rng = torch.Generator().manual_seed(opts.seed)
    gen = FrozenGenerator(version_dir)
    perceptual = Perceptual(extractor_dir)
    real = torch.from_numpy(data.images)
    labels = _real_labels(data, gen)
    perceptual.calibrate(real[:1000].float() * (2 / 255) - 1)
    enc = _encoder_for(gen, opts.width)
    optim = torch.optim.Adam(enc.parameters(), lr=opts.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * s / opts.steps)))
    half = max(1, opts.batch // 2)
    t0, parts = time.perf_counter(), {}
    for step in range(opts.steps):
        target, c_gen = gen.sample(half, rng)
        with torch.no_grad():
            x_gen = gen.image(target, c_gen)
        idx = torch.randint(0, len(real), (half,), generator=rng)
        x_real = real[idx].float() * (2 / 255) - 1
        y_real = None if labels is None else torch.from_numpy(labels[idx.numpy()])
        loss, parts = _step_loss(enc, gen, perceptual, opts, x_gen, target, c_gen, x_real,
                                 y_real)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        sched.step()
        if step % 100 == 0 or step == opts.steps - 1:
            log.info("encoder step %d/%d: %s", step + 1, opts.steps,
                     ", ".join(f"{k} {v:.4f}" for k, v in parts.items()))
    record = {"latent": gen.latent, "steps": opts.steps, "batch": opts.batch,
              "seconds": round(time.perf_counter() - t0, 1), "real_images": len(data),
              "data": data.source, "options": asdict(opts),
              "final_loss": {k: round(v, 5) for k, v in parts.items()}}
    return enc.eval(), record


def add_encoder(version_dir: str | Path, encoder: Encoder, record: dict[str, Any]) -> float:
    """Export ``encoder`` into the version as the graph ``encoder`` (parity-checked), and
    its record into the manifest's ``inversion.encoder``; returns the parity. Under the
    model's lock, the manifest last (atomic): a reader sees the version with or without
    it, never half."""
    vdir = Path(version_dir)
    g = encoder.onnx_graph()
    with model_lock(vdir.parent):
        m = load_manifest(vdir)
        verify_files(vdir, m)
        file = fresh_name(vdir, ENCODER_FILE)       # beside an earlier encoder, if any
        tmp = vdir / f".{file}.tmp"
        try:
            export_graph(g, tmp)
            diff = check_parity(g, tmp)
            if not diff <= ENCODER_PARITY_TOL:
                raise InversionError(f"encoder: ONNX Runtime differs from torch by {diff:.3g}")
            tmp.chmod(0o644)
            tmp.replace(vdir / file)
        finally:
            tmp.unlink(missing_ok=True)
        old = m.graphs["encoder"].file if "encoder" in m.graphs else None
        m.graphs["encoder"] = graph_spec(g, file)
        m.parity["encoder"] = diff
        m.inversion["encoder"] = record
        m.files = hash_files(vdir, sorted((set(m.files) - {old}) | {file}))
        write_manifest(vdir, m)
        if old is not None and old != file:
            (vdir / old).unlink(missing_ok=True)
    log.info("%s: encoder added (parity %.3g)", vdir, diff)
    return diff
