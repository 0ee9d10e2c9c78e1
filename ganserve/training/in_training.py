"""FID during training: score the inference-mode EMA generator every ``eval_every`` steps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ganserve.features import FeatureExtractor
from ganserve.quality import FeatureStats, feature_stats, fid_from_stats
from ganserve.training.sampling import seed_inputs

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


def make_class_share_evaluator(extractor_path: str | Path, targets: list[str],
                               model_classes: list[str], n: int = 256):
    """A fine-tune's quick quality figure: the share of ``n`` samples (fixed seeds) the
    classifier puts in ``targets``. A conditional G is asked for the target classes it has."""
    ext = FeatureExtractor(extractor_path, device="cpu")
    wanted = [ext.class_names.index(t) for t in targets if t in ext.class_names]
    if not wanted:
        raise ValueError(f"the classifier knows none of {', '.join(targets)}")
    own = [model_classes.index(t) for t in targets if t in model_classes]

    @torch.no_grad()
    def evaluate(G_inf: torch.nn.Module) -> dict[str, float]:
        seeds = list(range(EVAL_SEED_OFFSET, EVAL_SEED_OFFSET + n))
        classes = [own[i % len(own)] for i in range(n)] if own and G_inf.num_classes else None
        z, c = seed_inputs(G_inf, seeds, classes)
        logits = ext.run(G_inf(z, c).clamp(-1, 1).numpy())[1]
        return {"target_share": round(float(np.isin(logits.argmax(1), wanted).mean()), 4),
                "target_share_n": n}

    return evaluate
