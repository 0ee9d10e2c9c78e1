"""Deterministic sampling from a torch generator: fixed-seed inputs and progress grids."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ganserve.images import make_grid, to_uint8
from ganserve.latents import z_from_seeds
from ganserve.training.ema import recalibrated


def seed_inputs(G: nn.Module, seeds: list[int], classes: list[int] | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """z from the documented seed mapping; classes default to seed-index % num_classes."""
    z = torch.from_numpy(z_from_seeds(seeds, G.z_dim))
    if classes is None:
        classes = [i % max(G.num_classes, 1) for i in range(len(seeds))]
    return z, torch.as_tensor(classes, dtype=torch.int64)


def calibration_inputs(G: nn.Module, batches: int = 8, batch: int = 64
                       ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Fixed inputs (seeds 10^6 + i) to re-estimate BatchNorm statistics deterministically."""
    out = []
    for b in range(batches):
        seeds = list(range(1_000_000 + b * batch, 1_000_000 + (b + 1) * batch))
        out.append(seed_inputs(G, seeds))
    return out


def inference_copy(G: nn.Module) -> nn.Module:
    """Eval-mode copy of G with BatchNorm statistics matching its weights."""
    return recalibrated(G, calibration_inputs(G))


@torch.no_grad()
def progress_grid(G_inf: nn.Module, n_seeds: int) -> np.ndarray:
    """HWC uint8 grid: seeds 0..n-1; conditional models get one column per class."""
    if G_inf.num_classes:
        k = G_inf.num_classes
        rows = max(1, n_seeds // k)
        seeds = [r for r in range(rows) for _ in range(k)]
        classes = [c for _ in range(rows) for c in range(k)]
        z, c = seed_inputs(G_inf, seeds, classes)
        cols = k
    else:
        z, c = seed_inputs(G_inf, list(range(n_seeds)))
        cols = int(np.ceil(np.sqrt(n_seeds)))
    images = G_inf(z, c).clamp(-1, 1).numpy()
    return make_grid(to_uint8(images), cols=cols, pad=1)
