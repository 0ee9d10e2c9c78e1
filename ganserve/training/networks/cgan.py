"""Class-conditional GAN on the DCGAN backbone.

G: the class enters twice — a label embedding concatenated to z at the input, and
class-conditional BatchNorm gains/biases in every up block (as in BigGAN/SNGAN).
D: the DCGAN discriminator body with a projection head (Miyato & Koyama 2018):
logit = linear(phi(x)) + <embed(y), phi(x)>.

G accepts the class as indices [B] (training) or as class weights [B, K] (one-hot for a
class, a mixture to morph between classes). The exported graph takes the weights, so a
Sneaker can be morphed into a Sandal; embedding lookups and one-hot products give the same
numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganserve.training.networks import dcgan
from ganserve.training.networks.common import OnnxGraph, init_dcgan_weights


@dataclass
class Config(dcgan.Config):
    num_classes: int = 10       # number of classes the model is conditioned on
    embed_dim: int = 32         # size of the label embedding concatenated to z in G
    class_names: tuple[str, ...] = ()   # human names of the classes, index order
    aux_classifier: bool = False  # D also predicts the class (AC-GAN head; see TrainConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_classes < 2:
            raise ValueError("a conditional GAN needs num_classes >= 2")
        if self.class_names and len(self.class_names) != self.num_classes:
            raise ValueError(f"{len(self.class_names)} class_names for "
                             f"{self.num_classes} classes")


def class_embed(table: nn.Embedding, c: torch.Tensor) -> torch.Tensor:
    """Rows of ``table`` for indices [B], or their weighted sums for class weights [B, K]."""
    if c.is_floating_point():
        return c @ table.weight
    return table(c)


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm without its own affine; per-class gain (around 1) and bias instead."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Embedding(num_classes, channels)
        self.bias = nn.Embedding(num_classes, channels)
        nn.init.zeros_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        g = 1.0 + class_embed(self.gain, c)[:, :, None, None]
        return self.bn(x) * g + class_embed(self.bias, c)[:, :, None, None]


class CondUpBlock(nn.Module):
    def __init__(self, cin: int, cout: int, num_classes: int, stride: int = 2):
        super().__init__()
        k, p = (4, 1) if stride == 2 else (4, 0)
        self.conv = nn.ConvTranspose2d(cin, cout, k, stride, p, bias=False)
        self.norm = ConditionalBatchNorm2d(cout, num_classes)
        self.act = nn.ReLU(True)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x), c))


class Generator(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.z_dim = cfg.z_dim
        self.num_classes = cfg.num_classes
        widths = dcgan.g_widths(cfg)
        self.embed = nn.Embedding(cfg.num_classes, cfg.embed_dim)
        self.stem = CondUpBlock(cfg.z_dim + cfg.embed_dim, widths[0], cfg.num_classes, stride=1)
        self.blocks = nn.ModuleList(CondUpBlock(a, b, cfg.num_classes)
                                    for a, b in zip(widths, widths[1:]))
        self.to_img = nn.Sequential(nn.ConvTranspose2d(widths[-1], cfg.channels, 4, 2, 1),
                                    nn.Tanh())
        init_dcgan_weights(self)
        for m in self.modules():   # conditional BN starts as plain BN
            if isinstance(m, ConditionalBatchNorm2d):
                nn.init.zeros_(m.gain.weight)
                nn.init.zeros_(m.bias.weight)

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = torch.cat([z, class_embed(self.embed, c)], dim=1)[:, :, None, None]
        h = self.stem(h, c)
        for block in self.blocks:
            h = block(h, c)
        return self.to_img(h)

    def onnx_graphs(self) -> list[OnnxGraph]:
        cfg = self.cfg
        return [OnnxGraph(
            name="generator", module=self,
            make_inputs=lambda b: (torch.randn(b, cfg.z_dim), example_class_weights(b, cfg)),
            input_names=["z", "class"], output_names=["image"],
            input_shapes=[["batch", cfg.z_dim], ["batch", cfg.num_classes]],
            output_shapes=[["batch", cfg.channels, cfg.resolution, cfg.resolution]],
            input_dtypes=["float32", "float32"],
            input_ranges=[None, [0.0, 1.0]], output_ranges=[[-1.0, 1.0]],
            descriptions={"z": "latent, standard normal (see ganserve.latents)",
                          "class": "class weights per row: one-hot for a class; a convex "
                                   "mixture (rows summing to 1) morphs between classes",
                          "image": "NCHW image in [-1, 1]"})]


def example_class_weights(b: int, cfg: Config) -> torch.Tensor:
    """One-hot rows, and a two-class mixture in every third row (parity covers both)."""
    w = F.one_hot(torch.arange(b) % cfg.num_classes, cfg.num_classes).float()
    for i in range(2, b, 3):
        w[i] = 0.0
        w[i, i % cfg.num_classes] = 0.7
        w[i, (i + 1) % cfg.num_classes] = 0.3
    return w


class Discriminator(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.body = dcgan.DiscriminatorBody(cfg)
        feat = self.body.out_channels
        self.fc = nn.Linear(feat, 1)
        self.embed = nn.Embedding(cfg.num_classes, feat)
        self.aux = nn.Linear(feat, cfg.num_classes) if cfg.aux_classifier else None
        init_dcgan_weights(self)
        nn.init.normal_(self.embed.weight, 0.0, 0.02)

    def forward(self, x: torch.Tensor, c: torch.Tensor, return_aux: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        phi = torch.relu(self.body(x)).sum(dim=(2, 3))        # global sum pooling [B, C]
        logit = self.fc(phi).flatten() + (self.embed(c) * phi).sum(dim=1)
        if not return_aux:
            return logit
        if self.aux is None:
            raise ValueError("this discriminator has no auxiliary classifier "
                             "(set aux_classifier=True in the cgan config)")
        return logit, self.aux(phi)

    def image_side_blocks(self) -> list[nn.Module]:
        """D's blocks from the image side inwards (what Freeze-D freezes first)."""
        return list(self.body.blocks)


# Model and training settings per preset: (model config fields, TrainConfig fields). `baby`
# trains a few steps in seconds (tests); `fashion32` is what the shipped model trained with.
PRESETS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "baby": (dict(z_dim=16, g_width=8, d_width=8, embed_dim=4),
             dict(steps=4, batch=8, log_every=1, sample_every=2, checkpoint_every=2,
                  sample_seeds=16, eval_samples=64)),
    "fashion32": (dict(z_dim=100, g_width=64, d_width=64, embed_dim=32),
                  dict(steps=12_000, batch=64, lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999),
                       log_every=50, sample_every=1000, checkpoint_every=500,
                       eval_every=2000)),
}
