"""Training settings (separate from model architecture) and the named presets."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from training.losses import LOSSES

PRECISIONS = ("fp32", "bf16")


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
    log_every: int = 50                 # steps between metrics.jsonl lines
    sample_every: int = 500             # steps between sample grids + loss-curve PNGs
    checkpoint_every: int = 500         # steps between checkpoints
    sample_seeds: int = 64              # fixed seeds 0..N-1 for the progress grids
    eval_every: int = 0                 # steps between in-training FID points (0 = off)
    eval_samples: int = 2000            # samples per in-training FID point
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
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; choose one of "
                             f"{', '.join(PRECISIONS)}")
        if self.lr_g <= 0 or self.lr_d <= 0:
            raise ValueError("learning rates must be > 0")
        self.betas = tuple(self.betas)


def train_config_from_dict(d: dict[str, Any]) -> TrainConfig:
    known = {f.name for f in fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in d.items() if k in known})


def train_config_to_dict(cfg: TrainConfig) -> dict[str, Any]:
    return asdict(cfg)


# Model and training settings per family and preset. `baby` trains a few steps in seconds
# (tests); `fashion32` is what the shipped Fashion-MNIST models were trained with.
PRESETS: dict[str, dict[str, tuple[dict[str, Any], dict[str, Any]]]] = {
    "dcgan": {
        "baby": (dict(z_dim=16, g_width=8, d_width=8),
                 dict(steps=4, batch=8, log_every=1, sample_every=2, checkpoint_every=2,
                      sample_seeds=16, eval_samples=64)),
        "fashion32": (dict(z_dim=100, g_width=64, d_width=64),
                      dict(steps=10_000, batch=64, lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999),
                           log_every=50, sample_every=1000, checkpoint_every=500,
                           eval_every=2000)),
    },
    "cgan": {
        "baby": (dict(z_dim=16, g_width=8, d_width=8, embed_dim=4),
                 dict(steps=4, batch=8, log_every=1, sample_every=2, checkpoint_every=2,
                      sample_seeds=16, eval_samples=64)),
        "fashion32": (dict(z_dim=100, g_width=64, d_width=64, embed_dim=32),
                      dict(steps=12_000, batch=64, lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999),
                           log_every=50, sample_every=1000, checkpoint_every=500,
                           eval_every=2000)),
    },
    "stylegan": {
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
    },
}


def preset(family: str, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    if family not in PRESETS:
        raise ValueError(f"unknown family {family!r}; choose one of {', '.join(PRESETS)}")
    if name not in PRESETS[family]:
        raise ValueError(f"unknown preset {name!r} for {family}; "
                         f"choose one of {', '.join(PRESETS[family])}")
    m, t = PRESETS[family][name]
    return dict(m), dict(t)


def override(cfg: TrainConfig, **changes: Any) -> TrainConfig:
    return replace(cfg, **{k: v for k, v in changes.items() if v is not None})
