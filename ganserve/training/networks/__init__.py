"""GAN families, one file each: layers -> blocks -> Generator / Discriminator, and presets.

A family's training side is an object (its module) with
- ``Config``: a dataclass with at least ``resolution``, ``channels``, ``z_dim``,
  ``num_classes`` and ``class_names``;
- ``Generator(cfg)``: ``(z, c) -> images`` in [-1, 1] (``c`` ignored when unconditional), with
  ``z_dim``, ``num_classes`` and ``onnx_graphs()`` (the graphs its core description names);
- ``Discriminator(cfg)``: ``(x, c) -> one logit per image``;
- ``PRESETS``: ``{name: (model config fields, TrainConfig fields)}``.
``register_model_family`` adds one; its core description (``ganserve.families``) comes first.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

from ganserve.families import family as family_spec
from ganserve.training.networks import cgan, dcgan, stylegan

FAMILIES: dict[str, Any] = {"dcgan": dcgan, "cgan": cgan, "stylegan": stylegan}
REQUIRED = ("Config", "Generator", "Discriminator", "PRESETS")


def register_model_family(name: str, family: Any) -> None:
    """Make a family trainable and exportable (``train``, ``export_run``, the CLI)."""
    family_spec(name)                       # the core must know what its export holds
    missing = [a for a in REQUIRED if not hasattr(family, a)]
    if missing:
        raise ValueError(f"family {name!r} lacks {', '.join(missing)}")
    FAMILIES[name] = family


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
