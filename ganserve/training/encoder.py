"""The encoder: image -> latent in one pass, the fast half of projection (GAN inversion).

One per model version, trained on its own frozen generator (``ganserve.training.inversion``)
and exported next to it as the graph ``encoder``. It predicts the latent the generator is
fed: z for DCGAN and cGAN, w for StyleGAN (one w, broadcast to every layer), plus class
logits for a conditional generator. w is predicted relative to the mapping's statistics
(``w_mean + w_std * out``, both buffers), so the head learns a unit-scale target.

layers (strided 3x3 convolutions) -> blocks (32 -> 16 -> 8 -> 4) -> network (flatten ->
linear heads), as the families' files are laid out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ganserve.training.networks.common import OnnxGraph


@dataclass
class Config:
    resolution: int = 32        # input height = width in pixels (the generator's output)
    channels: int = 1           # image channels: 1 (grey) or 3 (RGB)
    latent: str = "z"           # the latent predicted: "z" (generator input) or "w" (StyleGAN)
    latent_dim: int = 128       # its length: z_dim or w_dim
    num_classes: int = 0        # > 0: class logits too (conditional generators)
    width: int = 32             # feature maps after the stem; doubles per halving...
    width_max: int = 128        # ...up to this many (the 4x4 map flattened feeds the heads)

    def __post_init__(self) -> None:
        if self.latent not in ("z", "w"):
            raise ValueError(f"latent must be 'z' or 'w', got {self.latent!r}")
        if self.resolution < 8 or self.resolution & (self.resolution - 1):
            raise ValueError(f"resolution must be a power of two >= 8, got {self.resolution}")

    @property
    def num_down(self) -> int:
        """Stride-2 blocks from the input resolution down to 4x4."""
        return int(math.log2(self.resolution)) - 2


# ---------------------------------------------------------------- blocks

class DownBlock(nn.Sequential):
    """3x3 conv -> LeakyReLU(0.2) -> 3x3 conv with stride 2 -> LeakyReLU(0.2): halves."""

    def __init__(self, cin: int, cout: int):
        super().__init__(nn.Conv2d(cin, cin, 3, 1, 1), nn.LeakyReLU(0.2),
                         nn.Conv2d(cin, cout, 3, 2, 1), nn.LeakyReLU(0.2))


# ---------------------------------------------------------------- network

class Encoder(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        c = cfg.width
        layers: list[nn.Module] = [nn.Conv2d(cfg.channels, c, 3, 1, 1), nn.LeakyReLU(0.2)]
        for _ in range(cfg.num_down):
            layers.append(DownBlock(c, min(2 * c, cfg.width_max)))
            c = min(2 * c, cfg.width_max)
        self.body = nn.Sequential(*layers, nn.Flatten())
        self.latent_head = nn.Linear(c * 16, cfg.latent_dim)
        self.class_head = nn.Linear(c * 16, cfg.num_classes) if cfg.num_classes else None
        # the latent's per-dimension mean and spread (w: the mapping's; z: 0 and 1)
        self.register_buffer("latent_mean", torch.zeros(cfg.latent_dim))
        self.register_buffer("latent_std", torch.ones(cfg.latent_dim))

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        h = self.body(image)
        latent = self.latent_mean + self.latent_std * self.latent_head(h)
        if self.class_head is None:
            return (latent,)
        return latent, self.class_head(h)

    def output_names(self) -> list[str]:
        return [self.cfg.latent] + (["class"] if self.cfg.num_classes else [])

    def onnx_graph(self) -> OnnxGraph:
        cfg = self.cfg
        res, ch = cfg.resolution, cfg.channels
        outs = self.output_names()
        shapes = [["batch", cfg.latent_dim]] + [["batch", cfg.num_classes]] * (len(outs) - 1)
        return OnnxGraph(
            name="encoder", module=self,
            make_inputs=lambda b: (torch.rand(b, ch, res, res) * 2 - 1,),
            input_names=["image"], output_names=outs,
            input_shapes=[["batch", ch, res, res]], output_shapes=shapes,
            input_dtypes=["float32"], input_ranges=[[-1.0, 1.0]],
            output_ranges=[None] * len(outs),
            descriptions={"image": "NCHW image in [-1, 1], the generator's resolution",
                          cfg.latent: f"the {cfg.latent} that reproduces the image (feed it to "
                                      "the generator)",
                          "class": "class logits (the argmax is the class to generate with)"})
