"""DCGAN (Radford, Metz & Chintala 2016).

G: z -> transposed convs (stride 2) with BatchNorm + ReLU -> Tanh.
D: strided convs with LeakyReLU(0.2), BatchNorm after the first layer -> one logit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ganserve.training.networks.common import OnnxGraph, init_dcgan_weights


@dataclass
class Config:
    resolution: int = 32        # output height = width in pixels: 32 or 64
    channels: int = 1           # image channels: 1 (grey) or 3 (RGB)
    z_dim: int = 100            # latent size
    g_width: int = 64           # G feature maps at the last hidden layer (doubles per layer up)
    d_width: int = 64           # D feature maps at the first layer (doubles per layer down)
    d_batchnorm: bool = True    # BatchNorm in D; turn off for WGAN-GP (the penalty is per-sample)
    num_classes: int = 0        # unconditional: always 0
    class_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.resolution not in (32, 64):
            raise ValueError(f"DCGAN resolution must be 32 or 64, got {self.resolution}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        self.class_names = tuple(self.class_names)

    @property
    def num_up(self) -> int:
        """Stride-2 layers between the 4x4 start and the output."""
        return int(math.log2(self.resolution)) - 2


# ---------------------------------------------------------------- blocks

class UpBlock(nn.Sequential):
    """ConvTranspose(4, stride 2) -> BatchNorm -> ReLU: doubles the resolution."""

    def __init__(self, cin: int, cout: int):
        super().__init__(nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(True))


class DownBlock(nn.Sequential):
    """Conv(4, stride 2) -> [BatchNorm] -> LeakyReLU(0.2): halves the resolution."""

    def __init__(self, cin: int, cout: int, batchnorm: bool):
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, 4, 2, 1, bias=not batchnorm)]
        if batchnorm:
            layers.append(nn.BatchNorm2d(cout))
        layers.append(nn.LeakyReLU(0.2, True))
        super().__init__(*layers)


def g_widths(cfg: Config) -> list[int]:
    """Feature maps from 4x4 up to the last hidden layer, e.g. [256, 128, 64] at 32x32."""
    return [cfg.g_width * 2 ** i for i in reversed(range(cfg.num_up))]


def d_widths(cfg: Config) -> list[int]:
    return [cfg.d_width * 2 ** i for i in range(cfg.num_up)]


class GeneratorBody(nn.Module):
    """z (as a 1x1 map) -> image; shared with the cGAN, which feeds it z + label embedding."""

    def __init__(self, cfg: Config, in_dim: int):
        super().__init__()
        widths = g_widths(cfg)
        self.stem = nn.Sequential(nn.ConvTranspose2d(in_dim, widths[0], 4, 1, 0, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU(True))
        self.blocks = nn.Sequential(*[UpBlock(a, b) for a, b in zip(widths, widths[1:])])
        self.to_img = nn.Sequential(nn.ConvTranspose2d(widths[-1], cfg.channels, 4, 2, 1),
                                    nn.Tanh())

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.to_img(self.blocks(self.stem(h[:, :, None, None])))


class DiscriminatorBody(nn.Module):
    """image -> features [B, C, 4, 4]."""

    def __init__(self, cfg: Config):
        super().__init__()
        widths = d_widths(cfg)
        first = nn.Sequential(nn.Conv2d(cfg.channels, widths[0], 4, 2, 1),
                              nn.LeakyReLU(0.2, True))
        self.blocks = nn.Sequential(first, *[DownBlock(a, b, cfg.d_batchnorm)
                                             for a, b in zip(widths, widths[1:])])
        self.out_channels = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


# ---------------------------------------------------------------- networks

class Generator(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.z_dim = cfg.z_dim
        self.num_classes = 0
        self.body = GeneratorBody(cfg, cfg.z_dim)
        init_dcgan_weights(self)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.body(z)

    def onnx_graphs(self) -> list[OnnxGraph]:
        cfg = self.cfg
        return [OnnxGraph(
            name="generator", module=self,
            make_inputs=lambda b: (torch.randn(b, cfg.z_dim),),
            input_names=["z"], output_names=["image"],
            input_shapes=[["batch", cfg.z_dim]],
            output_shapes=[["batch", cfg.channels, cfg.resolution, cfg.resolution]],
            input_dtypes=["float32"], input_ranges=[None], output_ranges=[[-1.0, 1.0]],
            descriptions={"z": "latent, standard normal (see ganserve.latents)",
                          "image": "NCHW image in [-1, 1]"})]


class Discriminator(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.body = DiscriminatorBody(cfg)
        self.head = nn.Conv2d(self.body.out_channels, 1, 4, 1, 0)
        init_dcgan_weights(self)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.body(x)).flatten()

    def image_side_blocks(self) -> list[nn.Module]:
        """D's blocks from the image side inwards (what Freeze-D freezes first)."""
        return list(self.body.blocks)


# Model and training settings per preset: (model config fields, TrainConfig fields). `baby`
# trains a few steps in seconds (tests); `fashion32` is what the shipped model trained with.
PRESETS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "baby": (dict(z_dim=16, g_width=8, d_width=8),
             dict(steps=4, batch=8, log_every=1, sample_every=2, checkpoint_every=2,
                  sample_seeds=16, eval_samples=64)),
    "fashion32": (dict(z_dim=100, g_width=64, d_width=64),
                  dict(steps=10_000, batch=64, lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999),
                       log_every=50, sample_every=1000, checkpoint_every=500,
                       eval_every=2000)),
}
