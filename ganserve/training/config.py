"""Training settings (separate from model architecture) and the named presets."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from ganserve.training.augment import parse_policy
from ganserve.training.losses import LOSSES

PRECISIONS = ("fp32", "bf16")
DEVICES = ("cpu", "cuda", "auto")


@dataclass
class TrainConfig:
    steps: int = 10_000                 # optimizer steps (one D step + one G step each)
    time_budget_minutes: float = 0.0    # end the run (as finished: final samples, FID point,
                                        # checkpoint) once its wall time, resumes included,
                                        # reaches this many minutes, even before `steps`;
                                        # 0 = no limit
    batch: int = 64                     # images per step, real and fake each
    lr_g: float = 2e-4                  # Adam learning rate of G
    lr_d: float = 2e-4                  # Adam learning rate of D
    betas: tuple[float, float] = (0.5, 0.999)   # Adam (beta1, beta2)
    adam_eps: float = 1e-8
    loss: str = "logistic"              # logistic (non-saturating, from logits) | wgan-gp
    gp_weight: float = 10.0             # WGAN-GP lambda
    r1_gamma: float = 0.0               # R1 penalty weight on real images (0 = off)
    r1_interval: int = 16               # lazy R1: every N steps, scaled by N
    aux_class_weight: float = 0.0       # cGAN: weight of the AC-GAN class loss (D on real
                                        # images, G on fakes); needs aux_classifier in D
    ema_half_life_images: float = 10_000.0  # G-EMA half-life, in images seen
    ema_rampup: float | None = 0.05     # half-life <= rampup x images seen (None = no ramp)
    precision: str = "fp32"             # fp32 | bf16: bf16 runs the G/D forward and backward
                                        # passes under autocast (fp32 weights, optimizer and
                                        # R1); 1.3-1.5x the images/s on CPUs with AVX512-BF16
    seed: int = 0                       # seeds the torch RNG (data order, z, noise, mixing)
    device: str = "cpu"                 # cpu | cuda | auto (cuda when torch sees a GPU): where
                                        # G and D train; every random draw stays on the CPU
                                        # RNG, samples and exports run on the CPU
    log_every: int = 50                 # steps between metrics.jsonl lines
    sample_every: int = 500             # steps between sample grids + loss-curve PNGs
    checkpoint_every: int = 500         # steps between checkpoints
    sample_seeds: int = 64              # fixed seeds 0..N-1 for the progress grids
    eval_every: int = 0                 # steps between in-training FID points (0 = off)
    eval_samples: int = 2000            # samples per in-training FID point
    augment: str = ""                   # DiffAugment policy for D's inputs, e.g.
                                        # "translation,cutout" ("" = none)
    freeze_d: int = 0                   # Freeze-D: D's first N blocks (image side) keep
                                        # their starting weights (fine-tuning)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; choose one of {', '.join(LOSSES)}")
        for name in ("steps", "batch", "log_every", "sample_every", "checkpoint_every",
                     "r1_interval"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.r1_gamma < 0:
            raise ValueError(f"r1_gamma must be >= 0 (0 = off), got {self.r1_gamma}")
        if self.time_budget_minutes < 0:
            raise ValueError("time_budget_minutes must be >= 0 (0 = no limit)")
        if self.device not in DEVICES:
            raise ValueError(f"unknown device {self.device!r}; choose one of "
                             f"{', '.join(DEVICES)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; choose one of "
                             f"{', '.join(PRECISIONS)}")
        if self.freeze_d < 0:
            raise ValueError(f"freeze_d must be >= 0, got {self.freeze_d}")
        parse_policy(self.augment)
        if self.lr_g <= 0 or self.lr_d <= 0:
            raise ValueError("learning rates must be > 0")
        self.betas = tuple(self.betas)


def train_config_from_dict(d: dict[str, Any]) -> TrainConfig:
    known = {f.name for f in fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in d.items() if k in known})


def train_config_to_dict(cfg: TrainConfig) -> dict[str, Any]:
    return asdict(cfg)


def preset(family: str, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(model config fields, TrainConfig fields) of one of the family's presets, which live
    in its model file (``training/networks/<family>.py``, ``PRESETS``)."""
    from ganserve.training.networks import family_module

    presets = family_module(family).PRESETS
    if name not in presets:
        raise ValueError(f"unknown preset {name!r} for {family}; "
                         f"choose one of {', '.join(presets)}")
    m, t = presets[name]
    return dict(m), dict(t)


def override(cfg: TrainConfig, **changes: Any) -> TrainConfig:
    return replace(cfg, **{k: v for k, v in changes.items() if v is not None})
