"""The run folder's layout, in one place: what a training run writes and where.

    RUN/config.json           the resolved model and train configs, data, command, hosts
    RUN/checkpoint.pt         G, D, G-EMA, optimizers, step, RNG (tensors only)
    RUN/metrics.jsonl         one line per log row and per FID point
    RUN/samples/step-NNNNNNN.png, RUN/samples/latest.png    progress grids from fixed seeds
    RUN/loss.png, RUN/fid.png  curves
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganserve.training.checkpoint import CHECKPOINT_NAME


@dataclass(frozen=True)
class RunFolder:
    path: Path

    @property
    def config(self) -> Path:
        return self.path / "config.json"

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT_NAME

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def samples(self) -> Path:
        return self.path / "samples"

    @property
    def latest_samples(self) -> Path:
        return self.samples / "latest.png"

    def samples_at(self, step: int) -> Path:
        return self.samples / f"step-{step:07d}.png"

    @property
    def loss_plot(self) -> Path:
        return self.path / "loss.png"

    @property
    def fid_plot(self) -> Path:
        return self.path / "fid.png"

    def holds_run(self) -> bool:
        """A run has been trained here (a checkpoint exists)."""
        return self.checkpoint.exists()

    def create(self) -> None:
        self.samples.mkdir(parents=True, exist_ok=True)

    def read_config(self) -> dict[str, Any] | None:
        return json.loads(self.config.read_text()) if self.config.is_file() else None

    def write_config(self, cfg: dict[str, Any]) -> None:
        self.config.write_text(json.dumps(cfg, indent=2) + "\n")
