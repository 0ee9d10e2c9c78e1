"""The evaluate job: ``ganserve evaluate``'s code on a version, the record stored beside it.

Namesakes, one concept at several layers (an evaluation): ``ganserve.evaluation.evaluate``:
the scoring; ``ganserve.worker.evaluate``: the job that runs it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ganserve.data import DataError
from ganserve.evaluation.evaluate import EvaluationError, evaluate
from ganserve.jobs.datasets import dataset_path
from ganserve.jobs.records import Job
from ganserve.jobs.specs import EXTRA_METRICS, EvaluateSpec
from ganserve.worker.lease import Lease, Stopped
from ganserve.worker.runner import JobError, WorkerContext

log = logging.getLogger(__name__)
# result keys that belong to a metric a request may leave out
METRIC_KEYS = {"kid": ("kid", "kid_std"), "precision": ("precision",), "recall": ("recall",),
               "classes": ("class_histogram", "class_entropy_bits", "class_share_min",
                           "class_share_max", "conditional_accuracy",
                           "conditional_accuracy_min"),
               **{m: (m,) for m in EXTRA_METRICS}}


def evaluate_job(job: Job, lease: Lease, ctx: WorkerContext) -> dict[str, Any]:
    spec = EvaluateSpec.model_validate(job.spec)
    vdir = ctx.settings.models_dir / spec.model / str(job.version)
    try:
        data = (dataset_path(spec.reference, ctx.settings.datasets_dir)
                if spec.reference is not None else None)
        lease.progress({"stage": "sampling", "n": spec.n}, force=True)
        extractor = None        # None: the store's classifier, as the CLI's default
        if spec.extractor == "inception":
            extractor = ctx.settings.inception_extractor
            if extractor is None:
                raise JobError("this worker has no Inception extractor: set "
                               "GANSERVE_INCEPTION_EXTRACTOR on the workers too")
        result = evaluate(vdir, n=spec.n, seed=spec.seed, data=data, extras=spec.extras,
                          extractor=extractor, write=True,
                          log_fn=lambda line: log.info("job %s: %s", job.id, line))
    except (EvaluationError, DataError) as e:
        raise JobError(str(e)) from e
    reason = lease.stop_reason()
    if reason in ("cancelled", "lost"):     # cancelled (or taken over) meanwhile: no record
        if result.get("record"):
            Path(result["record"]).unlink(missing_ok=True)
        raise Stopped(reason)
    # a shutdown that arrived after the work was done keeps it
    return only_requested(result, spec.metrics)


def only_requested(result: dict[str, Any], metrics: list[str] | None) -> dict[str, Any]:
    if metrics is None:
        return result
    dropped = {k for m, keys in METRIC_KEYS.items() if m not in metrics for k in keys}
    return {k: v for k, v in result.items() if k not in dropped}
