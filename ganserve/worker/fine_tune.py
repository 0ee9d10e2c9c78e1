"""The fine-tune job: base version's weights -> training on the dataset -> a new version.

Checkpoints land in the job's folder every ``checkpoint_every`` steps, so a redelivered job
(its worker died, or shut down) resumes where it stopped. The export runs the parity check
and the quality scoring in a staging folder; the version appears in the store with one
rename, under a per-model lock that also picks its number.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from celery.exceptions import SoftTimeLimitExceeded

from ganserve.data import DataError, ImageData
from ganserve.data.idx import looks_like_idx_folder
from ganserve.jobs.datasets import dataset_path, load_dataset, narrow
from ganserve.jobs.records import Job
from ganserve.jobs.specs import FineTuneSpec
from ganserve.locks import file_lock
from ganserve.manifest import (
    Manifest,
    list_versions,
    load_manifest,
    next_version,
)
from ganserve.model_store import model_lock, place_version
from ganserve.training.export import export_run
from ganserve.training.fp16 import Fp16Error, add_fp16_graphs
from ganserve.training.loop import Progress
from ganserve.training.networks import family_module
from ganserve.training.plan import PlanError, TrainOptions, plan_training, run_plan
from ganserve.training.run_folder import RunFolder
from ganserve.worker import metrics
from ganserve.worker.lease import Lease, Stopped
from ganserve.worker.runner import JobError, WorkerContext

log = logging.getLogger(__name__)
AUGMENT_POLICY = "translation,cutout"
STAGING = "_staging"            # MODELS_DIR/_staging/JOB: skipped by the registry's scan
QUALITY_FILE = "fine_tune_quality.json"
EVALUATOR = Path("_evaluators") / "fashion-mnist"


def train_overrides(spec: FineTuneSpec, family: str) -> dict[str, Any]:
    """TrainConfig fields of a fine-tune: the family's fine-tune defaults (``FINE_TUNE`` in
    its model file), then what the request set."""
    out: dict[str, Any] = dict(getattr(family_module(family), "FINE_TUNE", {}))
    out |= {"steps": spec.steps, "seed": spec.seed, "sample_every": spec.sample_every,
            "checkpoint_every": spec.checkpoint_every, "freeze_d": spec.freeze_d,
            "augment": AUGMENT_POLICY if spec.augment else "", "eval_every": 0,
            "time_budget_minutes": 0.0, "log_every": min(10, spec.sample_every)}
    out |= {k: v for k, v in (("batch", spec.batch), ("lr_g", spec.lr_g),
                              ("lr_d", spec.lr_d)) if v is not None}
    return out


def base_preset(m: Manifest) -> str:
    presets = family_module(m.family).PRESETS
    return m.training.preset if m.training.preset in presets else next(iter(presets))


def progress_record(p: Progress, batch: int, stage: str = "training") -> dict[str, Any]:
    steps_per_s = p.images_per_s / batch if batch else 0.0
    eta = (p.total_steps - p.step) / steps_per_s if steps_per_s > 0 else None
    return {"stage": stage, "step": p.step, "total_steps": p.total_steps,
            "images_per_s": round(p.images_per_s, 2), "elapsed_s": round(p.elapsed_s, 1),
            "eta_s": round(eta, 1) if eta is not None else None,
            "losses": {k: round(v, 5) for k, v in p.losses.items()},
            "samples": p.samples is not None}


def starting(lease: Lease, total_steps: int, activity: str, resume: bool = False) -> None:
    """A progress event before the first step: what the job is doing meanwhile (a resumed
    job's step is its checkpoint's, known once training continues: no step 0 then)."""
    counts = {} if resume else {"step": 0, "eta_s": None, "losses": {}}
    lease.progress({"stage": "starting", "activity": activity, "total_steps": total_steps,
                    **counts}, force=True)


def fine_tune(job: Job, lease: Lease, ctx: WorkerContext) -> dict[str, Any]:
    spec = FineTuneSpec.model_validate(job.spec)
    base = ctx.settings.models_dir / spec.model / str(job.version)
    run = ctx.job_folder(job.id) / "run"
    resume = RunFolder(run).holds_run()
    starting(lease, spec.steps, "loading the base model and the dataset", resume)
    try:
        m = load_manifest(base)
        data = load_dataset(spec.dataset, ctx.settings.datasets_dir,
                            resolution=m.resolution, channels=m.channels,
                            model_classes=m.class_names if m.conditional else None)
    except (DataError, OSError, ValueError) as e:
        raise JobError(f"cannot read the base model or the dataset: {e}") from e
    opts = TrainOptions(family=m.family, out=run, preset=base_preset(m),
                        # the device is this worker's (a resumed job may move to another)
                        train=({} if resume else train_overrides(spec, m.family))
                        | {"device": ctx.settings.train_device},
                        resume=resume, init_from=None if resume else base, images=data,
                        data=spec.dataset.describe(), command=f"fine-tune job {job.id}")
    starting(lease, spec.steps, "resuming from the job's checkpoint" if resume
             else "building the training plan", resume)
    try:
        plan = plan_training(opts)
    except PlanError as e:
        raise JobError(str(e)) from e
    batch = plan.train_cfg.batch
    quick: dict[str, Any] = {}
    evaluator = quick_quality(ctx, target_classes(spec, data), m, quick)
    if evaluator is not None and not plan.train_cfg.eval_every:
        plan.train_cfg.eval_every = spec.sample_every

    def progress(p: Progress) -> None:
        metrics.IMAGES_PER_S.set(p.images_per_s)
        lease.progress(progress_record(p, batch) | ({"quality": dict(quick)} if quick else {}))
        ctx.notify(job, "progress")

    starting(lease, spec.steps, "waiting for the training device", resume)
    with device_lock(ctx, lease):
        starting(lease, spec.steps, "building the networks and loading the weights", resume)
        result = run_plan(plan, progress=progress, should_cancel=lease.should_stop,
                          evaluator=evaluator)
    if result.cancelled:
        raise Stopped(lease.stop_reason() or "cancelled")
    done = {"step": result.step, "total_steps": plan.train_cfg.steps, "eta_s": 0,
            "images_per_s": round(result.images_per_s, 2),
            "losses": {k: round(v, 5) for k, v in result.last.items()},
            **({"quality": dict(quick)} if quick else {})}
    lease.progress({"stage": "exporting", "activity": "exporting ONNX, checking parity and "
                    "scoring the new version", **done}, force=True)
    version_dir, quality = publish(ctx, job, lease, spec, m, run, data)
    lease.progress({"stage": "published", **done}, force=True)
    return {"model": version_dir.parent.name, "version": version_dir.name,
            "parent": f"{m.name}/{m.version}", "steps": result.step,
            "batch": plan.train_cfg.batch,
            "images_per_s": round(result.images_per_s, 2),
            "train_seconds": round(result.train_seconds, 1),
            "wall_seconds": round(result.wall_seconds, 1), "losses": result.last,
            "quality": quality}


def target_classes(spec: FineTuneSpec, data: ImageData) -> list[str]:
    """The classes a fine-tune aims at: those asked for, else those its data holds when it
    holds only some (a Bag-only upload), else none (the whole distribution)."""
    if spec.dataset.classes or data.labels is None:
        return list(spec.dataset.classes or [])
    counts = np.bincount(data.labels, minlength=len(data.class_names))
    present = [c for c, k in zip(data.class_names, counts) if k]
    return present if len(present) < len(data.class_names) else []


def quick_quality(ctx: WorkerContext, targets: list[str], m: Manifest,
                  into: dict[str, Any]) -> Any:
    """The in-training figure shown in progress: the share of the target classes among 256
    samples, every ``sample_every`` steps (None when there is no classifier or no classes)."""
    from ganserve.training.in_training import make_class_share_evaluator

    extractor = ctx.settings.models_dir / EVALUATOR
    if not targets or not extractor.is_dir():
        return None
    try:
        score_now = make_class_share_evaluator(extractor, targets, m.class_names)
    except ValueError:
        return None

    def evaluate(G_inf: Any) -> dict[str, float]:
        out = score_now(G_inf)
        into.update(out)
        return out
    return evaluate


DEVICE_LOCK = Path(tempfile.gettempdir()) / "ganserve-locks" / "train-device.lock"


def device_lock(ctx: WorkerContext, lease: Lease) -> contextlib.AbstractContextManager[None]:
    """One fine-tune trains on this host's device at a time, whatever the concurrency (an
    evaluation beside it is fine); a second one waits, its lease kept alive. The lock is the
    host's (its temp dir), not the shared data dir's: workers on other hosts or pods train in
    parallel."""
    def waiting() -> None:
        lease.progress({"stage": "waiting for the device (another fine-tune trains on it)"})
        lease.check()
    return file_lock(DEVICE_LOCK, waiting)


def published_by(models: Path, name: str, job_id: str) -> Path | None:
    """The version an earlier attempt of this job already published, if any (a worker that
    died between the rename and recording success must not publish a second one)."""
    for v in list_versions(models / name):
        try:
            extra = load_manifest(models / name / v).training.model_extra or {}
        except SoftTimeLimitExceeded:       # the job's time is up: not a manifest problem
            raise
        except Exception:                   # an unreadable manifest is no earlier attempt's
            continue
        if (extra.get("job") or {}).get("id") == job_id:
            return models / name / v
    return None


def publish(ctx: WorkerContext, job: Job, lease: Lease, spec: FineTuneSpec, m: Manifest,
            run: Path, data: ImageData) -> tuple[Path, dict[str, Any]]:
    """Export (parity-checked) and score in a staging folder inside the store (one
    filesystem, so the final move is one rename), then publish under the model's lock:
    the slow part runs outside it, so removing a version or choosing the default never
    waits for an export."""
    name, models = spec.name or m.name, ctx.settings.models_dir
    staging = models / STAGING / job.id
    again = published_by(models, name, job.id)
    if again is not None:               # a worker died after its rename: no second export
        log.info("job %s: %s was published by an earlier attempt", job.id, again)
        return again, _recorded_quality(again)
    try:
        shutil.rmtree(staging, ignore_errors=True)
        staged = export_run(run, staging, name, next_version(models / name),
                            parent=f"{m.name}/{m.version}",
                            training_extra={"job": _job_record(job, spec)})
        if m.has_fp16:                  # a child has what its parent had...
            _add_fp16(job, staged)
        quality = score(ctx, spec, staged, data)
        (staged / QUALITY_FILE).write_text(json.dumps(quality, indent=2) + "\n")
        lease.check()                   # cancelled or taken over meanwhile: no version
        with model_lock(models / name, lease.check):
            final = _publish_staged(job, lease, models / name, staged, m)
        return final, _recorded_quality(final)     # ours, or an earlier attempt's
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _add_fp16(job: Job, staged: Path) -> None:
    """...unless its float16 graphs miss their parity: then the version is published
    float32 only (it serves everywhere), and the job's log says why."""
    try:
        add_fp16_graphs(staged)
    except Fp16Error as e:
        log.warning("job %s: published without float16 graphs: %s", job.id, e)


def _publish_staged(job: Job, lease: Lease, model_dir: Path, staged: Path,
                    m: Manifest) -> Path:
    """Under the model's lock: the version an earlier attempt published, or ``staged``
    under the next free number. The lease is confirmed (the fencing check) right before
    the rename: a worker that lost the job, or whose job was cancelled, publishes nothing."""
    again = published_by(model_dir.parent, model_dir.name, job.id)
    if again is not None:
        log.info("job %s: %s was published by an earlier attempt", job.id, again)
        return again
    final = place_version(model_dir, staged, fence=lease.confirm)
    log.info("job %s: published %s/%s (from %s/%s)", job.id, model_dir.name, final.name,
             m.name, m.version)
    return final


def _job_record(job: Job, spec: FineTuneSpec) -> dict[str, Any]:
    return {"id": job.id, "type": job.type,
            "dataset": spec.dataset.model_dump(exclude_none=True),
            "settings": spec.model_dump(exclude={"dataset"}, exclude_none=True)}


def _recorded_quality(version_dir: Path) -> dict[str, Any]:
    path = version_dir / QUALITY_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def score(ctx: WorkerContext, spec: FineTuneSpec, version_dir: Path,
          data: ImageData) -> dict[str, Any]:
    """The quality figures of the new version against its tuning images."""
    from ganserve.evaluation.evaluate import EvaluationError
    from ganserve.evaluation.fine_tune_quality import fine_tune_quality

    extractor = ctx.settings.models_dir / EVALUATOR
    if not extractor.is_dir():
        return {"skipped": f"no classifier at {extractor}"}
    m = load_manifest(version_dir)
    unseen = unseen_images(ctx, spec, m)
    try:
        out = fine_tune_quality(version_dir, data, unseen, target_classes(spec, data),
                                extractor=extractor)
    except (EvaluationError, ValueError) as e:    # e.g. classes the classifier does not know
        return {"skipped": str(e)}
    if unseen is None:
        out["near_copy_skipped"] = "the dataset has no held-out images of these classes"
    return out


def unseen_images(ctx: WorkerContext, spec: FineTuneSpec, m: Manifest) -> ImageData | None:
    """Real images of the same classes that the job did not train on: the test split of an
    IDX dataset (Fashion-MNIST), else None."""
    path = dataset_path(spec.dataset, ctx.settings.datasets_dir)
    if not (path.is_dir() and looks_like_idx_folder(path)):
        return None
    try:
        test = load_dataset(spec.dataset.model_copy(update={"limit": None}),
                            ctx.settings.datasets_dir, resolution=m.resolution,
                            channels=m.channels, split="test")
    except DataError:
        return None
    return narrow(test, None, 5000)
