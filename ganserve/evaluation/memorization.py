"""Memorization check in pixel space.

A sample counts as memorized when it lies closer (L2) to its nearest training image than the
1st percentile of the test images' nearest-training-image distances: real unseen images are
almost never that close, so a generator that often is, is copying its data.
"""

from __future__ import annotations

import numpy as np


def nearest_distances(queries: np.ndarray, bank: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """L2 distance from each query (flattened) to its nearest row of ``bank``."""
    q = queries.reshape(len(queries), -1).astype(np.float32)
    b = bank.reshape(len(bank), -1).astype(np.float32)
    bb = (b * b).sum(1)
    out = np.empty(len(q), np.float32)
    for i in range(0, len(q), chunk):
        x = q[i:i + chunk]
        d = (x * x).sum(1)[:, None] + bb[None, :] - 2.0 * (x @ b.T)
        out[i:i + chunk] = np.sqrt(np.maximum(d.min(axis=1), 0.0))
    return out


def memorization(samples: np.ndarray, train: np.ndarray, test: np.ndarray,
                 percentile: float = 1.0) -> dict[str, float]:
    """All arrays NCHW float in [-1, 1] at the same resolution."""
    threshold = float(np.percentile(nearest_distances(test, train), percentile))
    d = nearest_distances(np.clip(samples, -1, 1), train)
    return {"memorized_share": round(float((d < threshold).mean()), 5),
            "threshold_l2": round(threshold, 4),
            "sample_nn_l2_median": round(float(np.median(d)), 4)}
