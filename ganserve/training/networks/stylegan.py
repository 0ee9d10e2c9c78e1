"""StyleGAN2-style generator and residual discriminator (Karras et al. 2020), export-first.

Differences from NVIDIA's stylegan2-ada-pytorch, all for a portable ONNX graph:
- modulated convs scale the activations by the styles, run one shared-weight conv and scale
  the outputs by the demodulation coefficients (same maths as the grouped-conv form, but the
  batch stays dynamic);
- up/down-sampling uses bilinear interpolation / average pooling instead of upfirdn2d;
- random per-layer noise is drawn only while training. At inference (and in the ONNX
  graphs, which must stay deterministic and free of random ops) each layer's noise is either
  a stored constant map ("const", NVIDIA's noise_mode='const': every image gets the same
  noise) or, by default, a pseudo-random map computed from that layer's own w ("w"): the
  standardized w times a fixed Gaussian projection. Each image then gets its own noise, as in
  training, yet the same w always gives the same image, whatever the batch; the noise follows
  its layer's style when styles are mixed and varies smoothly along a w interpolation.
  Measured on Fashion-MNIST, const noise costs a lot of recall (see the README).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganserve.training.networks.common import OnnxGraph

SQRT2 = math.sqrt(2.0)


@dataclass
class Config:
    resolution: int = 32            # output height = width in pixels (power of two, >= 8)
    channels: int = 1               # image channels: 1 or 3
    z_dim: int = 128                # input latent size
    w_dim: int = 128                # intermediate latent (style) size
    mapping_layers: int = 4         # FC layers in the mapping network (4-8)
    mapping_lr_mult: float = 0.01   # learning-rate multiplier of the mapping network
    channel_base: int = 4096        # feature maps at resolution r: min(channel_base // r, max)
    channel_max: int = 128
    w_avg_beta: float = 0.995       # EMA decay of the tracked w average (for truncation)
    style_mixing_prob: float = 0.9  # share of training batches with two latents mixed
    mbstd_group: int = 4            # D's minibatch-std group size, in images (NVIDIA cifar: 32)
    d_architecture: str = "resnet"  # D blocks: "resnet" (1x1 skip, summed / sqrt 2) or "orig"
                                    # (plain conv stack, NVIDIA's cifar choice)
    inference_noise: str = "w"      # noise at inference / in ONNX: "w" (from each layer's w)
                                    # or "const" (one stored map per layer for every image)
    num_classes: int = 0            # unconditional
    class_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        r = self.resolution
        if r < 8 or r & (r - 1):
            raise ValueError(f"StyleGAN resolution must be a power of two >= 8, got {r}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        if not 1 <= self.mapping_layers <= 8:
            raise ValueError("mapping_layers must be in 1..8")
        if self.d_architecture not in ("resnet", "orig"):
            raise ValueError(f"d_architecture must be 'resnet' or 'orig', got "
                             f"{self.d_architecture!r}")
        if self.mbstd_group < 1:
            raise ValueError(f"mbstd_group must be >= 1, got {self.mbstd_group}")
        if self.inference_noise not in ("w", "const"):
            raise ValueError(f"inference_noise must be 'w' or 'const', got "
                             f"{self.inference_noise!r}")
        self.class_names = tuple(self.class_names)

    @property
    def block_resolutions(self) -> list[int]:
        return [2 ** i for i in range(2, int(math.log2(self.resolution)) + 1)]

    def width(self, res: int) -> int:
        return min(self.channel_base // res, self.channel_max)

    @property
    def num_ws(self) -> int:
        """One w per conv layer, plus one for the last toRGB (8 at 32x32)."""
        return 1 + 2 * (len(self.block_resolutions) - 1) + 1


# ---------------------------------------------------------------- layers

class FullyConnected(nn.Module):
    """Linear layer with equalized learning rate and an lr multiplier."""

    def __init__(self, cin: int, cout: int, lr_mult: float = 1.0, bias_init: float = 0.0,
                 activation: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin) / lr_mult)
        self.bias = nn.Parameter(torch.full((cout,), float(bias_init)))
        self.weight_gain = lr_mult / math.sqrt(cin)
        self.bias_gain = lr_mult
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.bias_gain)
        return F.leaky_relu(x, 0.2) * SQRT2 if self.activation else x


class Conv(nn.Module):
    """Conv with equalized learning rate, optional 2x average-pool downsampling first."""

    def __init__(self, cin: int, cout: int, kernel: int, activation: bool = True,
                 down: bool = False, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(cin * kernel * kernel)
        self.activation, self.down, self.padding = activation, down, kernel // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.down:
            x = F.avg_pool2d(x, 2)
        x = F.conv2d(x, self.weight * self.weight_gain, self.bias, padding=self.padding)
        return F.leaky_relu(x, 0.2) * SQRT2 if self.activation else x


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor,
                     demodulate: bool, padding: int) -> torch.Tensor:
    """Export-friendly modulated conv: modulate inputs, shared conv, demodulate outputs."""
    x = x * styles[:, :, None, None]
    x = F.conv2d(x, weight, padding=padding)
    if demodulate:
        w2 = weight.square().sum(dim=(2, 3))                       # [O, I]
        dcoefs = torch.rsqrt(styles.square() @ w2.t() + 1e-8)      # [B, O]
        x = x * dcoefs[:, :, None, None]
    return x


class SynthesisLayer(nn.Module):
    """[2x bilinear up] -> modulated 3x3 conv -> + noise -> + bias -> lrelu."""

    def __init__(self, cin: int, cout: int, w_dim: int, resolution: int, up: bool,
                 inference_noise: str = "w"):
        super().__init__()
        self.affine = FullyConnected(w_dim, cin, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(cout, cin, 3, 3))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        # "w" noise: a fixed projection, rebuilt from a per-layer seed (so not in checkpoints)
        gen = torch.Generator().manual_seed(1_000 * resolution + int(up))
        self.register_buffer("noise_proj", torch.randn(w_dim, resolution * resolution,
                                                        generator=gen) / math.sqrt(w_dim),
                             persistent=False)
        self.up, self.resolution, self.inference_noise = up, resolution, inference_noise

    def inference_noise_map(self, w: torch.Tensor) -> torch.Tensor:
        """Deterministic per-image noise [B, 1, R, R], about N(0, 1) per pixel."""
        if self.inference_noise == "const":
            return self.noise_const[None, None]
        u = w - w.mean(dim=1, keepdim=True)
        u = u * torch.rsqrt(u.square().mean(dim=1, keepdim=True) + 1e-8)
        return (u @ self.noise_proj).reshape(-1, 1, self.resolution, self.resolution)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.up:
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        x = modulated_conv2d(x, self.weight, self.affine(w), demodulate=True, padding=1)
        if self.training:
            # drawn on the CPU RNG (the one a checkpoint keeps), then to x's device
            noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution).to(x.device)
        else:
            noise = self.inference_noise_map(w)
        x = x + noise * self.noise_strength + self.bias[None, :, None, None]
        return F.leaky_relu(x, 0.2) * SQRT2


class ToRGB(nn.Module):
    """Modulated 1x1 conv without demodulation."""

    def __init__(self, cin: int, cout: int, w_dim: int):
        super().__init__()
        self.affine = FullyConnected(w_dim, cin, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(cout, cin, 1, 1))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.weight_gain = 1.0 / math.sqrt(cin)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, padding=0)
        return x + self.bias[None, :, None, None]


# ---------------------------------------------------------------- blocks

class SynthesisBlock(nn.Module):
    """One resolution: (const | 2 convs) + toRGB; the image skip is upsampled and summed."""

    def __init__(self, cin: int, cout: int, cfg: Config, resolution: int):
        super().__init__()
        self.first = resolution == 4
        if self.first:
            self.const = nn.Parameter(torch.randn(cout, 4, 4))
            self.conv0 = None
        else:
            self.conv0 = SynthesisLayer(cin, cout, cfg.w_dim, resolution, up=True,
                                        inference_noise=cfg.inference_noise)
        self.conv1 = SynthesisLayer(cout, cout, cfg.w_dim, resolution, up=False,
                                    inference_noise=cfg.inference_noise)
        self.torgb = ToRGB(cout, cfg.channels, cfg.w_dim)
        self.num_conv = 1 if self.first else 2

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None,
                ws: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.first:
            x = self.const[None].expand(ws.shape[0], -1, -1, -1)
            x = self.conv1(x, ws[:, 0])
        else:
            x = self.conv0(x, ws[:, 0])
            x = self.conv1(x, ws[:, 1])
        y = self.torgb(x, ws[:, self.num_conv])
        if img is not None:
            y = y + F.interpolate(img, scale_factor=2.0, mode="bilinear", align_corners=False)
        return x, y


class DiscriminatorBlock(nn.Module):
    """conv3x3 -> down + conv3x3; residual adds skip = down + conv1x1, summed / sqrt(2)."""

    def __init__(self, cin: int, cout: int, residual: bool = True):
        super().__init__()
        self.conv0 = Conv(cin, cin, 3)
        self.conv1 = Conv(cin, cout, 3, down=True)
        self.skip = Conv(cin, cout, 1, activation=False, down=True, bias=False) \
            if residual else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(self.conv0(x))
        return y if self.skip is None else (self.skip(x) + y) / SQRT2


class MinibatchStd(nn.Module):
    """Appends the mean std-dev over groups of samples as an extra feature map."""

    def __init__(self, group_size: int = 4):
        super().__init__()
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n)
        while n % g:
            g -= 1
        y = x.reshape(g, -1, c, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0).add(1e-8).sqrt()
        y = y.mean(dim=(1, 2, 3)).reshape(-1, 1, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)


# ---------------------------------------------------------------- networks

class MappingNetwork(nn.Module):
    """z -> w: normalize z (2nd moment), FC layers with an lr multiplier; tracks w_avg."""

    def __init__(self, cfg: Config):
        super().__init__()
        dims = [cfg.z_dim] + [cfg.w_dim] * cfg.mapping_layers
        self.layers = nn.Sequential(*[FullyConnected(a, b, lr_mult=cfg.mapping_lr_mult,
                                                     activation=True)
                                      for a, b in zip(dims, dims[1:])])
        self.register_buffer("w_avg", torch.zeros(cfg.w_dim))
        self.w_avg_beta = cfg.w_avg_beta

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = z * torch.rsqrt(z.square().mean(dim=1, keepdim=True) + 1e-8)
        w = self.layers(z)
        if self.training:
            with torch.no_grad():
                self.w_avg.copy_(w.detach().float().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        return w


class SynthesisNetwork(nn.Module):
    """ws [B, num_ws, w_dim] -> image [B, C, R, R] in about [-1, 1]."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.num_ws = cfg.num_ws
        blocks, cin = [], 0
        for res in cfg.block_resolutions:
            cout = cfg.width(res)
            blocks.append(SynthesisBlock(cin, cout, cfg, res))
            cin = cout
        self.blocks = nn.ModuleList(blocks)

    def forward(self, ws: torch.Tensor) -> torch.Tensor:
        x = img = None
        i = 0
        for block in self.blocks:
            x, img = block(x, img, ws[:, i:i + block.num_conv + 1])
            i += block.num_conv
        return img


class Generator(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.z_dim, self.w_dim, self.num_ws = cfg.z_dim, cfg.w_dim, cfg.num_ws
        self.num_classes = 0
        self.mapping = MappingNetwork(cfg)
        self.synthesis = SynthesisNetwork(cfg)

    def truncate(self, w: torch.Tensor, psi: float) -> torch.Tensor:
        # written out (not torch.lerp) so the exported graph is plain Sub/Mul/Add
        return self.mapping.w_avg + psi * (w - self.mapping.w_avg)

    def ws(self, z: torch.Tensor, psi: float = 1.0) -> torch.Tensor:
        """Mapping + truncation + broadcast, with style mixing while training."""
        w = self.mapping(z)
        if psi != 1.0:
            w = self.truncate(w, psi)
        ws = w[:, None].repeat(1, self.num_ws, 1)
        if self.training and self.cfg.style_mixing_prob > 0:
            n = z.shape[0]
            cutoff = torch.randint(1, self.num_ws, (n,))
            cutoff = torch.where(torch.rand(n) < self.cfg.style_mixing_prob, cutoff,
                                 torch.full_like(cutoff, self.num_ws)).to(z.device)
            w2 = self.mapping(torch.randn(z.shape).to(z.device))       # the CPU RNG's draw
            mix = torch.arange(self.num_ws, device=z.device)[None, :] >= cutoff[:, None]
            ws = torch.where(mix[:, :, None], w2[:, None].expand_as(ws), ws)
        return ws

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None,
                psi: float = 1.0) -> torch.Tensor:
        return self.synthesis(self.ws(z, psi))

    def onnx_graphs(self) -> list[OnnxGraph]:
        cfg = self.cfg
        return [
            OnnxGraph(
                name="mapping", module=self.mapping,
                make_inputs=lambda b: (torch.randn(b, cfg.z_dim),),
                input_names=["z"], output_names=["w"],
                input_shapes=[["batch", cfg.z_dim]], output_shapes=[["batch", cfg.w_dim]],
                input_dtypes=["float32"], input_ranges=[None], output_ranges=[None],
                descriptions={"z": "latent, standard normal (see ganserve.latents)",
                              "w": "intermediate latent, untruncated; truncate with w_avg"}),
            OnnxGraph(
                name="synthesis", module=self.synthesis,
                make_inputs=lambda b: (self.mapping(torch.randn(b, cfg.z_dim))[:, None]
                                       .repeat(1, cfg.num_ws, 1) +
                                       0.1 * torch.randn(b, cfg.num_ws, cfg.w_dim),),
                input_names=["ws"], output_names=["image"],
                input_shapes=[["batch", cfg.num_ws, cfg.w_dim]],
                output_shapes=[["batch", cfg.channels, cfg.resolution, cfg.resolution]],
                input_dtypes=["float32"], input_ranges=[None], output_ranges=[[-1.0, 1.0]],
                descriptions={"ws": "one w per layer (coarse first); mix styles by "
                                    "swapping rows",
                              "image": "NCHW image, nominally [-1, 1] (clip before display)"},
                output_range_kinds=["nominal"]),
        ]

    def w_avg(self) -> np.ndarray:
        return self.mapping.w_avg.detach().cpu().numpy().astype(np.float32)


class Discriminator(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        res = cfg.resolution
        self.from_rgb = Conv(cfg.channels, cfg.width(res), 1)
        blocks = []
        while res > 4:
            blocks.append(DiscriminatorBlock(cfg.width(res), cfg.width(res // 2),
                                             residual=cfg.d_architecture == "resnet"))
            res //= 2
        self.blocks = nn.Sequential(*blocks)
        c4 = cfg.width(4)
        self.mbstd = MinibatchStd(cfg.mbstd_group)
        self.conv = Conv(c4 + 1, c4, 3)
        self.fc = FullyConnected(c4 * 16, c4, activation=True)
        self.out = FullyConnected(c4, 1)

    def image_side_blocks(self) -> list[nn.Module]:
        """D's blocks from the image side inwards (what Freeze-D freezes first)."""
        return [self.from_rgb, *self.blocks]

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        x = self.blocks(self.from_rgb(x))
        x = self.conv(self.mbstd(x))
        return self.out(self.fc(x.flatten(1))).flatten()


# Model and training settings per preset: (model config fields, TrainConfig fields). `baby`
# trains a few steps in seconds (tests); `fashion32` is what the shipped model trained with.
PRESETS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "baby": (dict(z_dim=16, w_dim=16, mapping_layers=2, channel_base=128, channel_max=16),
             dict(steps=4, batch=8, lr_g=2.5e-3, lr_d=2.5e-3, betas=(0.0, 0.99),
                  r1_gamma=0.1, r1_interval=2, log_every=1, sample_every=2,
                  checkpoint_every=2, sample_seeds=16, eval_samples=64)),
    # NVIDIA's cifar settings, scaled to a 2-core CPU: Adam(0.0025, betas 0, 0.99),
    # lazy R1 every 16 steps, mapping lr x0.01, minibatch-std over the whole batch of 32,
    # G-EMA half-life 5% of the images seen (cifar's ema=500k, ramp 0.05). Feature maps
    # 128/128/64/32 at 4/8/16/32 px: 4.4x the images/s of 128 everywhere (measured);
    # bf16 autocast: 1.4x the images/s of fp32 at the same FID curve (measured).
    # Mapping network 2 layers and a plain ('orig') discriminator, as NVIDIA's cifar config.
    # fashion-stylegan/3 ran this (89 min, 1.17M images on a 2-core AMD EPYC): FID 1.90,
    # recall 0.594. /2 (4 mapping layers, residual D; 522k images on a slower 2-core
    # machine): FID 3.22, recall 0.411. v1 was
    # fp32, mbstd group 4, EMA half-life 10k: 421k images, FID 4.58, recall 0.407. Tried
    # and not shipped: maps 128/64/32/16 at batch 64, R1 gamma 0.01, bf16 -- 2.5x the
    # images (1.04M in 86 min) but FID 7.65 and recall 0.383 (README: Shipped models).
    "fashion32": (dict(z_dim=128, w_dim=128, mapping_layers=2, channel_base=1024,
                       channel_max=128, style_mixing_prob=0.5, mbstd_group=32,
                       d_architecture="orig"),
                  dict(steps=40_000, time_budget_minutes=89, batch=32, lr_g=2.5e-3,
                       lr_d=2.5e-3, betas=(0.0, 0.99), r1_gamma=0.05, r1_interval=16,
                       ema_half_life_images=500_000, ema_rampup=0.05, precision="bf16",
                       log_every=50, sample_every=1000, checkpoint_every=500,
                       eval_every=2000)),
}
