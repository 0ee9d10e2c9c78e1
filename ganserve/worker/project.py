"""The project job: an image's latent, refined by gradient descent from the encoder's.

Its progress names the step, the loss and its history (for a chart), and the current
reconstruction is the job's ``samples.png``. Nothing is checkpointed: a projection takes
seconds to a minute, so a worker asked to shut down finishes it first; one that dies
mid-way leaves it to the reaper, and the next worker starts over.

Namesakes, one concept at several layers (projection): ``ganserve.training.projection``: the
refinement; ``ganserve.worker.project``: the job that runs it; ``ganserve.service.inversion``:
the encoder's one-pass projection in the API.
"""

from __future__ import annotations

import base64
import io
import logging
import time
from typing import Any

import numpy as np
import torch
from PIL import Image

from ganserve.evaluation.evaluate import default_extractor
from ganserve.images import png_base64, save_png, to_uint8
from ganserve.jobs.records import Job
from ganserve.jobs.specs import ProjectSpec
from ganserve.manifest import ManifestError, load_manifest
from ganserve.training.inversion import InversionError
from ganserve.training.projection import Projection, Refinement, project_image
from ganserve.worker.lease import Lease
from ganserve.worker.runner import JobError, WorkerContext

log = logging.getLogger(__name__)
HISTORY_POINTS = 100        # the loss history in progress and result, evenly thinned


def target_image(png_b64: str, channels: int) -> np.ndarray:
    """The stored PNG (the image as the model sees it) -> float32 [1, C, R, R] in [-1, 1]."""
    with Image.open(io.BytesIO(base64.b64decode(png_b64))) as im:
        arr = np.asarray(im.convert("L" if channels == 1 else "RGB"))
    arr = arr[:, :, None] if arr.ndim == 2 else arr
    return (arr.transpose(2, 0, 1)[None].astype(np.float32) * (2.0 / 255.0) - 1.0)


def thinned(history: list[float], points: int = HISTORY_POINTS) -> list[float]:
    if len(history) <= points:
        return [round(v, 6) for v in history]
    idx = np.linspace(0, len(history) - 1, points).round().astype(int)
    return [round(history[i], 6) for i in idx]


def project_job(job: Job, lease: Lease, ctx: WorkerContext) -> dict[str, Any]:
    spec = ProjectSpec.model_validate(job.spec)
    vdir = ctx.settings.models_dir / spec.model / str(job.version)
    try:
        m = load_manifest(vdir)
    except (ManifestError, OSError) as e:
        raise JobError(f"{spec.model}/{job.version} cannot be read (removed?): {e}") from e
    target = target_image(spec.image, m.channels)
    class_index = spec.class_ if isinstance(spec.class_, int) or spec.class_ is None \
        else m.class_names.index(spec.class_)        # the API checked the name
    preview = ctx.job_folder(job.id) / "run" / "samples" / "latest.png"
    preview.parent.mkdir(parents=True, exist_ok=True)
    history: list[float] = []
    t0 = time.monotonic()
    started = [t0]                  # the first step's time (loading and calibration before)

    def progress(step: int, loss: float, images: torch.Tensor) -> None:
        # cancelled or taken over: stop here; a shutdown lets it finish (seconds, and
        # nothing is checkpointed to resume from)
        lease.check("shutdown")
        if step == 1:
            started[0] = time.monotonic()
        history.append(loss)
        if step != spec.steps and not lease.progress_due():
            return
        save_png(to_uint8(images.clamp(-1, 1).numpy())[0], preview)
        rate = max(step - 1, 1) / max(1e-9, time.monotonic() - started[0])
        lease.progress({"stage": "refining", "step": step, "total_steps": spec.steps,
                        "eta_s": round((spec.steps - step) / rate, 1),
                        "loss": round(loss, 6), "history": thinned(history)}, force=True)
        ctx.notify(job, "progress")

    lease.progress({"stage": "starting", "total_steps": spec.steps}, force=True)
    try:
        p = project_image(vdir, target, class_index, default_extractor(vdir),
                          Refinement(steps=spec.steps), progress)
    except (InversionError, ManifestError, FileNotFoundError) as e:
        raise JobError(f"{spec.model}/{job.version} cannot be refined: {e}") from e
    lease.check("shutdown")         # cancelled while the answer was rendered: no result
    log.info("job %s: projected in %.1f s: %s -> %s", job.id, time.monotonic() - t0,
             p.start_scores, p.scores)
    return result_of(p, m.class_names, target)


def result_of(p: Projection, class_names: list[str] | None,
              target: np.ndarray) -> dict[str, Any]:
    """The fields ``POST /v1/models/{name}/project`` answers, plus the start's scores and
    the loss history."""
    return {"latent": {p.latent_name: p.latent.tolist()}, "class_index": p.class_index,
            "class_name": (class_names[p.class_index]
                           if p.class_index is not None and class_names else None),
            "image": png_base64(p.image), "input": png_base64(target), "scores": p.scores,
            "method": "refined", "start": p.start, "start_scores": p.start_scores,
            "steps": len(p.loss), "loss": thinned(p.loss)}
