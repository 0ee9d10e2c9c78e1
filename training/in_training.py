"""FID during training: score the inference-mode EMA generator every ``eval_every`` steps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ganserve.features import FeatureExtractor
from ganserve.metrics import FeatureStats, feature_stats, fid_from_stats
from training.sampling import seed_inputs

EVAL_SEED_OFFSET = 2_000_000   # disjoint from the progress-grid and calibration seeds


def make_fid_evaluator(extractor_path: str | Path, n: int, batch: int = 250):
    ext = FeatureExtractor(extractor_path, device="cpu")
    if not ext.spec.reference:
        raise ValueError(f"{extractor_path}: extractor has no reference statistics")
    ref = FeatureStats.load(ext.dir / ext.spec.reference)
    floor = ext.spec.floor.get("fid")

    @torch.no_grad()
    def evaluate(G_inf: torch.nn.Module) -> dict[str, float]:
        feats = []
        for i in range(0, n, batch):
            seeds = list(range(EVAL_SEED_OFFSET + i, EVAL_SEED_OFFSET + min(i + batch, n)))
            z, c = seed_inputs(G_inf, seeds)
            images = G_inf(z, c).clamp(-1, 1).numpy()
            feats.append(ext.run(images)[0])
        out = {"fid": round(fid_from_stats(feature_stats(np.concatenate(feats)), ref), 4),
               "fid_n": n}
        if floor is not None:
            out["fid_floor"] = floor
        return out

    return evaluate
