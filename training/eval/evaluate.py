"""``ganserve evaluate``: sample a model version with ONNX Runtime and score it.

Metrics (in the extractor's feature space): FID against the test split with the real-vs-real
floor beside it, KID, precision/recall (k = 3), the predicted class histogram and its entropy,
and for conditional models the share of samples classified as the requested class. Results are
written into the version's manifest under ``metrics[<extractor name>]``.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ganserve.generator import OnnxGenerator
from ganserve.manifest import load_manifest, resolve_version_dir, write_manifest
from training.data import DataError, load_images
from training.eval.extractor import FeatureExtractor
from training.eval.metrics import (
    FeatureStats,
    class_histogram,
    entropy_bits,
    feature_stats,
    fid_from_stats,
    kid,
    precision_recall,
)

log = logging.getLogger(__name__)
DEFAULT_EXTRACTOR = Path("_evaluators") / "fashion-mnist"


def default_extractor(version_dir: Path) -> Path:
    """The store's own evaluator: MODELS_DIR/_evaluators/fashion-mnist."""
    return version_dir.resolve().parent.parent / DEFAULT_EXTRACTOR


def sample_features(gen: OnnxGenerator, ext: FeatureExtractor, n: int, psi: float = 1.0,
                    batch: int = 500, seed_offset: int = 0
                    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Features and logits of n samples (seeds offset..offset+n-1; classes round-robin)."""
    K = gen.manifest.num_classes
    feats, logits = [], []
    for i in range(0, n, batch):
        seeds = list(range(seed_offset + i, seed_offset + min(i + batch, n)))
        classes = [s % K for s in range(i, i + len(seeds))] if K else None
        f, lg = ext.run(gen.generate(seeds, classes, psi=psi, batch=batch))
        feats.append(f)
        if lg is not None:
            logits.append(lg)
    requested = np.arange(n) % K if K else None
    return np.concatenate(feats), (np.concatenate(logits) if logits else None), requested


def score(feats: np.ndarray, logits: np.ndarray | None, requested: np.ndarray | None,
          ref: FeatureStats, real_feats: np.ndarray | None, class_names: list[str],
          pr_k: int = 3) -> dict[str, Any]:
    out: dict[str, Any] = {"fid": round(fid_from_stats(feature_stats(feats), ref), 4)}
    if real_feats is not None:
        kid_mean, kid_std = kid(real_feats, feats)
        out["kid"], out["kid_std"] = round(kid_mean, 6), round(kid_std, 6)
        p, r = precision_recall(real_feats, feats, k=pr_k)
        out["precision"], out["recall"] = round(p, 4), round(r, 4)
    if logits is not None:
        pred = logits.argmax(1)
        hist = class_histogram(pred, logits.shape[1])
        names = class_names or [str(i) for i in range(len(hist))]
        out["class_histogram"] = {names[i]: round(float(h), 4) for i, h in enumerate(hist)}
        out["class_entropy_bits"] = round(entropy_bits(hist), 4)
        out["class_share_min"] = round(float(hist.min()), 4)
        out["class_share_max"] = round(float(hist.max()), 4)
        if requested is not None:
            hit = pred == requested
            per = [float(hit[requested == k].mean()) for k in range(int(requested.max()) + 1)]
            out["conditional_accuracy"] = round(float(np.mean(per)), 4)
            out["conditional_accuracy_min"] = round(min(per), 4)
            out["conditional_accuracy_per_class"] = {names[k]: round(a, 4)
                                                     for k, a in enumerate(per)}
    return out


def evaluate(version_dir: str | Path, n: int = 10_000, extractor: str | Path | None = None,
             data: str | Path | None = None, psi: float = 1.0, write: bool = True,
             device: str = "auto", extras: bool = True,
             log_fn: Callable[[str], None] = log.info) -> dict[str, Any]:
    """Score a version; ``extras`` adds the memorization check and StyleGAN behaviour."""
    vdir = resolve_version_dir(version_dir)
    t0 = time.perf_counter()
    gen = OnnxGenerator(vdir, device=device)
    ext = FeatureExtractor(extractor or default_extractor(vdir), device=device)
    m = gen.manifest
    if n < 2:
        raise ValueError("--n must be at least 2")

    # real side: shipped test-split statistics, test images for KID / PR when available
    real_feats = test = None
    try:
        test = load_images(data, split="test", resolution=m.resolution, channels=m.channels)
        real_feats, _ = ext.run(test.as_float())
    except DataError as e:
        log_fn(f"no real test images ({e}); KID and precision/recall skipped")
    if ext.spec.reference:
        ref = FeatureStats.load(ext.dir / ext.spec.reference)
    elif real_feats is not None:
        ref = feature_stats(real_feats)
    else:
        raise DataError("the extractor ships no reference statistics and no test data was "
                        "found: pass --data")

    feats, logits, requested = sample_features(gen, ext, n, psi=psi)
    result = score(feats, logits, requested, ref, real_feats, ext.class_names or m.class_names)
    if extras and test is not None:
        result.update(_extras(gen, ext, data, test, n, psi, logits is not None, log_fn))
    result = {"extractor": ext.spec.name, "n": n, "psi": psi, "reference_n": ref.n,
              **result, "floor": dict(ext.spec.floor),
              "seconds": round(time.perf_counter() - t0, 1),
              "evaluated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    if write:
        manifest = load_manifest(vdir)
        manifest.metrics[ext.spec.name] = result
        write_manifest(vdir, manifest)
    return result


def _extras(gen: OnnxGenerator, ext: FeatureExtractor, data, test, n: int, psi: float,
            has_logits: bool, log_fn: Callable[[str], None]) -> dict[str, Any]:
    from training.eval.memorization import memorization
    from training.eval.stylegan_checks import style_mixing, truncation_entropy

    m = gen.manifest
    out: dict[str, Any] = {}
    try:
        train = load_images(data, split="train", resolution=m.resolution, channels=m.channels)
        K = m.num_classes
        seeds = list(range(min(n, 10_000)))
        samples = gen.generate(seeds, [s % K for s in seeds] if K else None, psi=psi)
        out["memorization"] = memorization(samples, train.as_float(), test.as_float())
    except DataError as e:
        log_fn(f"no training images ({e}); memorization check skipped")
    if m.family == "stylegan" and has_logits:
        out["truncation"] = truncation_entropy(gen, ext, min(n, 10_000))
        out["style_mixing"] = style_mixing(gen, ext, pairs=min(n, 2000))
    return out


def format_table(name: str, r: dict[str, Any]) -> str:
    floor = r.get("floor", {})
    rows = [("metric", "value", "real-vs-real floor"),
            (f"FID ({r['extractor']}, n={r['n']})", f"{r['fid']:.3f}",
             f"{floor['fid']:.3f}" if "fid" in floor else "-")]
    if "kid" in r:
        rows.append(("KID", f"{r['kid']:.5f} ± {r['kid_std']:.5f}",
                     f"{floor['kid']:.5f}" if "kid" in floor else "-"))
        rows.append(("precision (k=3)", f"{r['precision']:.3f}",
                     f"{floor.get('precision', float('nan')):.3f}"))
        rows.append(("recall (k=3)", f"{r['recall']:.3f}",
                     f"{floor.get('recall', float('nan')):.3f}"))
    if "class_entropy_bits" in r:
        rows.append(("class entropy (bits, max 3.32)", f"{r['class_entropy_bits']:.3f}", ""))
        rows.append(("class share min / max", f"{r['class_share_min']:.3f} / "
                     f"{r['class_share_max']:.3f}", "0.100 / 0.100"))
    if "conditional_accuracy" in r:
        rows.append(("conditional accuracy (mean / worst class)",
                     f"{r['conditional_accuracy']:.3f} / {r['conditional_accuracy_min']:.3f}",
                     ""))
    if "memorization" in r:
        mem = r["memorization"]
        rows.append(("memorized share (pixel NN < test 1st pct)",
                     f"{mem['memorized_share']:.4f}", "0.0100 (test, by construction)"))
    if "truncation" in r:
        t = r["truncation"]
        rows.append(("class entropy psi=1 / psi=0.5", f"{t['class_entropy_psi_1']:.3f} / "
                     f"{t['class_entropy_psi_0.5']:.3f}", ""))
    if r.get("style_mixing", {}).get("pairs_with_different_classes"):
        s = r["style_mixing"]
        rows.append((f"style mix: coarse {s['coarse_layers']} moves class / "
                     f"fine {s['fine_layers']} keeps it",
                     f"{s['coarse_mix_follows_coarse_source']:.3f} / "
                     f"{s['fine_mix_keeps_base_class']:.3f}", ""))
    w = [max(len(str(row[i])) for row in rows) for i in range(3)]
    lines = [f"{name}"] + [" | ".join(str(c).ljust(w[i]) for i, c in enumerate(row))
                           for row in rows]
    lines.insert(2, "-+-".join("-" * x for x in w))
    if "class_histogram" in r:
        lines.append("class histogram: " + ", ".join(f"{k} {v:.3f}"
                                                     for k, v in r["class_histogram"].items()))
    return "\n".join(lines)
