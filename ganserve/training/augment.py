"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) for small datasets.

D sees real and fake images through the same random translation and cutout, in both the D
and the G step, so it cannot memorise a few hundred images and G's gradients still flow
through the (differentiable) transforms. All randomness comes from the torch CPU RNG, whose
state the checkpoint keeps, so a resumed run stays bit-exact on the CPU. On a GPU the draws are
the same (made on the CPU, then moved to the images' device), but some CUDA kernels sum in a
varying order, so GPU runs match closely, not bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

Augment = Callable[[torch.Tensor], torch.Tensor]


def translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ``ratio`` of its size, padding with zeros."""
    B, _, H, W = x.shape
    sh, sw = int(H * ratio + 0.5), int(W * ratio + 0.5)
    tx = torch.randint(-sh, sh + 1, (B, 1, 1)).to(x.device)
    ty = torch.randint(-sw, sw + 1, (B, 1, 1)).to(x.device)
    gb, gx, gy = torch.meshgrid(*(torch.arange(n, device=x.device) for n in (B, H, W)),
                                indexing="ij")
    gx = torch.clamp(gx + tx + 1, 0, H + 1)
    gy = torch.clamp(gy + ty + 1, 0, W + 1)
    padded = F.pad(x, [1, 1, 1, 1])
    return padded.permute(0, 2, 3, 1)[gb, gx, gy].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero one square of ``ratio`` x the image size at a random place in each image."""
    B, _, H, W = x.shape
    ch, cw = int(H * ratio + 0.5), int(W * ratio + 0.5)
    ox = torch.randint(0, H + (1 - ch % 2), (B, 1, 1)).to(x.device)
    oy = torch.randint(0, W + (1 - cw % 2), (B, 1, 1)).to(x.device)
    gb, gx, gy = torch.meshgrid(*(torch.arange(n, device=x.device) for n in (B, ch, cw)),
                                indexing="ij")
    gx = torch.clamp(gx + ox - ch // 2, 0, H - 1)
    gy = torch.clamp(gy + oy - cw // 2, 0, W - 1)
    mask = torch.ones(B, H, W, dtype=x.dtype, device=x.device)
    mask[gb, gx, gy] = 0
    return x * mask.unsqueeze(1)


POLICIES: dict[str, Augment] = {"translation": translation, "cutout": cutout}


def parse_policy(text: str) -> list[str]:
    """"translation,cutout" -> its names, checked ("" = none)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in POLICIES]
    if unknown:
        raise ValueError(f"unknown augmentation {', '.join(unknown)}; choose from "
                         f"{', '.join(POLICIES)}")
    return names


def make_augment(text: str) -> Augment | None:
    names = parse_policy(text)
    if not names:
        return None
    fns = [POLICIES[n] for n in names]

    def augment(x: torch.Tensor) -> torch.Tensor:
        for fn in fns:
            x = fn(x)
        return x.contiguous()
    return augment
