"""``ganserve evaluate``: sample a model version with ONNX Runtime and score it.

Metrics (in the extractor's feature space): FID against the test split with the real-vs-real
floor beside it, KID, precision/recall (k = 3), the predicted class histogram and its entropy,
and for conditional models the share of samples classified as the requested class.

Real images (``data``, default Fashion-MNIST) are read before any sampling, and a missing or
unreadable path is an error then: KID, precision/recall and the memorization check need them.
``data_free=True`` (``--no-data``) scores only what needs none: FID against the extractor's
stored reference statistics, class coverage and the StyleGAN checks; its record says so.

Results are stored as an evaluation record beside the version (``ganserve.evaluations``:
``MODELS_DIR/NAME/_evaluations/VERSION/<id>.json``); the published version folder, manifest
included, is never written.

Namesakes, one concept at several layers (an evaluation): ``ganserve.evaluation.evaluate``:
the scoring; ``ganserve.worker.evaluate``: the job that runs it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import ganserve
from ganserve.data import DEFAULT_FASHION_DIR, DataError, ImageData, load_images
from ganserve.evaluations import (
    PROVENANCE_KEYS,
    EvaluationRecord,
    ExtractorInfo,
    ReferenceInfo,
    evaluated_by,
    kind_for,
    new_record_id,
    write_record,
)
from ganserve.features import FeatureExtractor
from ganserve.generator import OnnxGenerator
from ganserve.manifest import (
    MANIFEST_NAME,
    Manifest,
    load_manifest,
    resolve_version_dir,
    sha256_file,
)
from ganserve.quality import (
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
NO_DATA = "no real images (--no-data)"
MIN_SAMPLES = 16



class EvaluationError(ValueError):
    """An evaluation that cannot run as asked (the message says why)."""

def default_extractor(version_dir: Path) -> Path:
    """The store's own evaluator: MODELS_DIR/_evaluators/fashion-mnist."""
    return version_dir.resolve().parent.parent / DEFAULT_EXTRACTOR


@dataclass
class RealData:
    """The real side of an evaluation: test images always, train images for memorization."""
    path: Path
    test: ImageData
    train: ImageData | None


def load_real_data(data: str | Path | None, m: Manifest, need_train: bool) -> RealData:
    """Read the real images up front; raise DataError naming the path if they cannot be read."""
    p = Path(data) if data is not None else DEFAULT_FASHION_DIR
    try:
        test = load_images(p, split="test", resolution=m.resolution, channels=m.channels)
        train = (load_images(p, split="train", resolution=m.resolution, channels=m.channels)
                 if need_train else None)
    except OSError as e:
        raise DataError(f"{p}: cannot read the evaluation data: {e}") from e
    except DataError as e:
        raise DataError(f"{e}; or pass --no-data to score only what needs no real "
                        "images") from e
    return RealData(p, test, train)


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
             device: str = "auto", extras: bool = True, seed: int = 0,
             data_free: bool = False,
             log_fn: Callable[[str], None] = log.info) -> dict[str, Any]:
    """Score a version; returns the flat result (metrics and provenance).

    ``data`` (default Fashion-MNIST) is read before any sampling; a missing path raises
    DataError unless ``data_free`` (then only the metrics needing no real images are scored).
    ``extras`` adds the memorization check and the StyleGAN behaviour checks. ``write``
    stores the result as an evaluation record beside the version (``result["record"]`` is
    its path); the version folder is never written either way. ``log_fn`` gets a line
    naming the metrics left out (``result["skipped"]``: metric -> why).
    """
    vdir = resolve_version_dir(version_dir)
    if n < MIN_SAMPLES:
        raise EvaluationError(f"--n must be at least {MIN_SAMPLES} (precision/recall compare "
                              "each sample with its 3 nearest neighbours; KID needs subsets)")
    if seed < 0:
        raise EvaluationError(f"--seed must be >= 0, got {seed}")
    m = load_manifest(vdir)
    real = None if data_free else load_real_data(data, m, need_train=extras)
    t0 = time.perf_counter()
    ext = FeatureExtractor(extractor or default_extractor(vdir), device=device)
    if real is None and not ext.spec.reference:
        raise DataError(f"{ext.spec_path}: the extractor ships no reference statistics, so "
                        "--no-data cannot score anything: pass --data")
    gen = OnnxGenerator(vdir, device=device)
    real_feats = ext.run(real.test.as_float())[0] if real is not None else None
    ref = (FeatureStats.load(ext.dir / ext.spec.reference) if ext.spec.reference
           else feature_stats(real_feats))

    feats, logits, requested = sample_features(gen, ext, n, psi=psi, seed_offset=seed)
    metrics = score(feats, logits, requested, ref, real_feats, ext.class_names or m.class_names)
    if extras:
        metrics.update(_extras(gen, ext, real, n, psi, seed, logits is not None))
    now = dt.datetime.now(dt.UTC)
    result = {"extractor": ext.spec.name, "kind": kind_for(ext.spec.name, psi), "n": n,
              "seed": seed, "psi": psi, "data_free": data_free, "reference_n": ref.n,
              **metrics, "floor": dict(ext.spec.floor),
              "skipped": _skipped(m, data_free, extras, logits is not None),
              "seconds": round(time.perf_counter() - t0, 1),
              "evaluated_at": now.isoformat(timespec="seconds"), "evaluated_by": evaluated_by(),
              "record": None}
    if result["skipped"]:
        log_fn("not computed: " + ", ".join(f"{k} ({why})" for k, why in result["skipped"].items()))
    if write:
        record = _record(vdir, m, ext, ref, real, result, new_record_id(now))
        result["record"] = str(write_record(vdir, record))
    return result


def _extras(gen: OnnxGenerator, ext: FeatureExtractor, real: RealData | None, n: int,
            psi: float, seed: int, has_logits: bool) -> dict[str, Any]:
    from ganserve.evaluation.memorization import memorization
    from ganserve.evaluation.stylegan_checks import style_mixing, truncation_entropy

    m = gen.manifest
    out: dict[str, Any] = {}
    if real is not None and real.train is not None:
        K = m.num_classes
        seeds = list(range(seed, seed + min(n, 10_000)))
        classes = [i % K for i in range(len(seeds))] if K else None
        samples = gen.generate(seeds, classes, psi=psi)
        out["memorization"] = memorization(samples, real.train.as_float(), real.test.as_float())
    if m.family_spec.w_space and has_logits:
        out["truncation"] = truncation_entropy(gen, ext, min(n, 10_000), seed=seed)
        out["style_mixing"] = style_mixing(gen, ext, pairs=min(n, 2000), seed=seed)
    return out


def _skipped(m: Manifest, data_free: bool, extras: bool, has_logits: bool) -> dict[str, str]:
    """Metric -> why this evaluation did not compute it."""
    out: dict[str, str] = {}
    if data_free:
        out.update(dict.fromkeys(("kid", "precision", "recall"), NO_DATA))
    if not extras:
        out["memorization"] = "--quick"
    elif data_free:
        out["memorization"] = NO_DATA
    if not has_logits:
        out["class_histogram"] = "the extractor has no class logits"
    if m.family_spec.w_space and not (extras and has_logits):
        why = "--quick" if not extras else "the extractor has no class logits"
        out.update(dict.fromkeys(("truncation", "style_mixing"), why))
    return out


def _array_sha256(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def _extractor_info(ext: FeatureExtractor) -> ExtractorInfo:
    onnx = ext.dir / ext.spec.file
    return ExtractorInfo(name=ext.spec.name, spec=str(ext.spec_path.resolve()),
                         spec_sha256=sha256_file(ext.spec_path), file=ext.spec.file,
                         file_sha256=ext.spec.files.get(ext.spec.file) or sha256_file(onnx),
                         floor=dict(ext.spec.floor))


def _reference_info(ext: FeatureExtractor, ref: FeatureStats,
                    real: RealData | None) -> ReferenceInfo:
    stored = ext.dir / ext.spec.reference if ext.spec.reference else None
    info = ReferenceInfo(fid_against="extractor stats" if stored else "test data",
                         stats=str(stored.resolve()) if stored else None,
                         stats_sha256=sha256_file(stored) if stored else None,
                         stats_n=ref.n if stored else None)
    if real is not None:
        info.data, info.data_source = str(real.path.resolve()), real.test.source
        info.test_images, info.test_sha256 = len(real.test), _array_sha256(real.test.images)
        if real.train is not None:
            info.train_images = len(real.train)
            info.train_sha256 = _array_sha256(real.train.images)
    return info


def _record(vdir: Path, m: Manifest, ext: FeatureExtractor, ref: FeatureStats,
            real: RealData | None, result: dict[str, Any], record_id: str) -> EvaluationRecord:
    return EvaluationRecord(
        id=record_id, kind=result["kind"], model=m.name, version=m.version,
        version_created_at=m.created_at, manifest_sha256=sha256_file(vdir / MANIFEST_NAME),
        evaluated_at=result["evaluated_at"], evaluated_by=result["evaluated_by"],
        ganserve_version=ganserve.__version__, n=result["n"], seed=result["seed"],
        psi=result["psi"], extractor=_extractor_info(ext),
        reference=_reference_info(ext, ref, real), data_free=result["data_free"],
        skipped=result["skipped"], seconds=result["seconds"],
        metrics={k: v for k, v in result.items() if k not in PROVENANCE_KEYS})


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
