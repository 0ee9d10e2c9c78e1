"""GAN families, one file each: layers -> blocks -> Generator / Discriminator.

Every Generator takes ``(z, c)`` (``c`` is ignored by unconditional families) and returns
images in [-1, 1]; every Discriminator takes ``(x, c)`` and returns one logit per image.
``Generator.onnx_graphs()`` tells the exporter which graphs to write.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

from training.models import cgan, dcgan, stylegan

FAMILIES = {"dcgan": dcgan, "cgan": cgan, "stylegan": stylegan}


def family_module(family: str):
    try:
        return FAMILIES[family]
    except KeyError:
        choices = ", ".join(FAMILIES)
        raise ValueError(f"unknown family {family!r}; choose one of {choices}") from None


def config_fields(family: str) -> set[str]:
    """The fields of a family's model config (what --model-arg may set)."""
    return {f.name for f in fields(family_module(family).Config)}


def config_from_dict(family: str, args: dict[str, Any]):
    cls = family_module(family).Config
    known = {f.name for f in fields(cls)}
    unknown = set(args) - known
    if unknown:
        raise ValueError(f"{family} config has no field(s) {', '.join(sorted(unknown))}")
    return cls(**args)


def build(family: str, cfg) -> tuple[Any, Any]:
    mod = family_module(family)
    return mod.Generator(cfg), mod.Discriminator(cfg)


def config_to_dict(cfg) -> dict[str, Any]:
    return asdict(cfg)
