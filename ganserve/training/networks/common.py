"""Pieces every family shares: weight init and the description of an ONNX graph to export."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn


def init_dcgan_weights(module: nn.Module) -> None:
    """Radford et al.: conv weights ~ N(0, 0.02); BatchNorm gain ~ N(1, 0.02), bias 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d) and m.affine:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 1.0)


@dataclass
class OnnxGraph:
    """One graph to export: a module, how to make example inputs, and its I/O description."""

    name: str                                   # graph role: generator | mapping | synthesis
    module: nn.Module
    make_inputs: Callable[[int], tuple[torch.Tensor, ...]]   # batch -> example inputs
    input_names: list[str]
    output_names: list[str]
    input_shapes: list[list[int | str]]
    output_shapes: list[list[int | str]]
    input_dtypes: list[str]
    input_ranges: list[list[float] | None]
    output_ranges: list[list[float] | None]
    descriptions: dict[str, str]
    # per output: "bounded" (always inside its range) or "nominal" (can leave it: clip)
    output_range_kinds: list[str | None] | None = None
