"""Checkpoints: state dicts and plain values only (no pickled code), written atomically.

A checkpoint holds G, D, G-EMA, both optimizer states, the step, images seen, the torch RNG
state and the run's config as JSON. It is loaded with ``torch.load(weights_only=True)``, which
refuses anything but tensors and plain containers.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

CHECKPOINT_NAME = "checkpoint.pt"


class CheckpointError(Exception):
    pass


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(state, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)        # a reader sees the old or the new file, never half
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint (nothing to resume from)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for corrupt files
        raise CheckpointError(f"{path}: unreadable checkpoint ({e})") from e
    missing = {"G", "D", "G_ema", "opt_G", "opt_D", "step", "rng", "config"} - set(state)
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {', '.join(sorted(missing))}")
    return state


def checkpoint_config(state: dict[str, Any]) -> dict[str, Any]:
    return json.loads(state["config"])
