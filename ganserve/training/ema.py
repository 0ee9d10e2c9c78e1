"""Generator EMA and BatchNorm recalibration for inference."""

from __future__ import annotations

import copy

import torch
from torch import nn


def ema_beta(batch: int, images_seen: int, half_life_images: float, rampup: float | None
             ) -> float:
    """NVIDIA's schedule: half-life in images, ramped up to ``rampup`` x images seen."""
    half_life = half_life_images
    if rampup is not None:
        half_life = min(half_life, images_seen * rampup)
    return 0.5 ** (batch / max(half_life, 1e-8))


@torch.no_grad()
def update_ema(G_ema: nn.Module, G: nn.Module, beta: float) -> None:
    for p_ema, p in zip(G_ema.parameters(), G.parameters()):
        p_ema.copy_(p.detach().lerp(p_ema, beta))
    for b_ema, b in zip(G_ema.buffers(), G.buffers()):   # BN stats, w_avg, const noise
        b_ema.copy_(b)


def has_batchnorm(module: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


@torch.no_grad()
def recalibrated(G: nn.Module, inputs: list[tuple[torch.Tensor, ...]]) -> nn.Module:
    """A copy of G in eval mode whose BatchNorm statistics are re-estimated for its weights.

    The EMA generator's weights never ran through BatchNorm in training mode, so the running
    statistics it copied from G do not match it. Re-estimating them (cumulative average over
    ``inputs``, deterministic) makes eval-mode outputs match what training-mode G looked like.
    Without BatchNorm, returns an eval-mode copy unchanged.
    """
    G = copy.deepcopy(G)
    if has_batchnorm(G):
        bns = [m for m in G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        for m in bns:
            m.reset_running_stats()
            m.momentum = None
        G.train()
        for args in inputs:
            G(*args)
        for m in bns:
            m.momentum = 0.1
    return G.eval().requires_grad_(False)
