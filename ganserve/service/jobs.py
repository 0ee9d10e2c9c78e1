"""The API's side of jobs: check a submission against the model and the data, record it,
put it on the queue; read, list and cancel records.

Submissions are checked here, at once, so a wrong class name or a channel mismatch is a 4xx
now and not a failed job an hour later. The record is written before the message is sent;
if the broker does not take the message the record is removed and the client gets 503, so a
job that exists is always on its way to a worker.

Namesakes, one concept at several layers (jobs (the records themselves are the package
ganserve.jobs)): ``ganserve.service.jobs``: the API's side;
``ganserve.service.api.routes.jobs``: their HTTP routes; ``ganserve.service.schemas.jobs``: the
HTTP bodies.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import threading
from pathlib import Path
from typing import Any

from prometheus_client import Counter

from ganserve.data import DataError
from ganserve.data.uploads import DatasetStore
from ganserve.evaluation.evaluate import DEFAULT_EXTRACTOR as EVALUATOR
from ganserve.extras import training_installed
from ganserve.images import png_base64
from ganserve.jobs import queue
from ganserve.jobs.datasets import DatasetFacts, dataset_facts, dataset_path
from ganserve.jobs.migrate import upgrade
from ganserve.jobs.records import QUEUE_OF, IdempotencyConflict, Job, JobType
from ganserve.jobs.specs import (
    DatasetRef,
    EvaluateSpec,
    FineTuneSpec,
    ProjectSpec,
    freeze_d_problem,
)
from ganserve.jobs.store import JobStore
from ganserve.manifest import MANIFEST_NAME, Manifest
from ganserve.model_store import model_lock
from ganserve.service.errors import (
    BrokerUnavailable,
    InvalidInput,
    JobConflict,
    JobNotFound,
    JobsUnavailable,
    NotAvailable,
    TooManyJobs,
    VersionNotFound,
)
from ganserve.service.generation import resolve_class
from ganserve.service.inversion import decode_base64, read_model_input
from ganserve.service.registry import LoadedVersion, Registry
from ganserve.service.settings import Settings
from ganserve.webhooks import WebhookRefused, WebhookSender, check_target

log = logging.getLogger(__name__)
SUBMITTED = Counter("ganserve_jobs_submitted_total", "jobs accepted, by type", ["type"])
CANCELLED_QUEUED = Counter("ganserve_jobs_cancelled_queued_total", "jobs cancelled before a "
                           "worker started them (the workers count the ones they end)",
                           ["type"])
Spec = FineTuneSpec | EvaluateSpec | ProjectSpec
TRAINING_EXTRAS = "pip install 'ganserve[train]' (torch) on this host"


def jobs_off_reason(settings: Settings) -> str | None:
    """Why this service cannot run jobs, or None. Embedded mode runs jobs in a local worker,
    which needs torch; with a broker configured, workers elsewhere run them."""
    if settings.embedded and not training_installed():
        return ("jobs wait for the training side: embedded mode runs them on this host, "
                f"which lacks torch and the training extras; {TRAINING_EXTRAS} (in a "
                "checkout `make run` does so in the background: .venv/install-train.log), "
                "and jobs are taken once they are in; or set GANSERVE_BROKER_URL to a broker "
                "that `ganserve worker` processes serve")
    return None


def request_hash(job_type: str, spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps([job_type, spec], sort_keys=True).encode()).hexdigest()


def _key_reused(job: Job) -> JobConflict:
    return JobConflict(f"Idempotency-Key already used for another request (job {job.id}); "
                       "use a new key for a new job", field="Idempotency-Key", job=job.id)


class DatasetChecks:
    """Submission-time dataset checks from metadata only (``dataset_facts``: an upload's
    stored record, or the labels and headers of a dataset on disk; never its pixels: the
    worker loads those), cached for the last few datasets by path and modification time."""

    def __init__(self, datasets_dir: Path, keep: int = 16):
        self.datasets_dir, self.keep = datasets_dir, keep
        self._cache: dict[tuple, DatasetFacts] = {}
        self._lock = threading.Lock()

    def load(self, ref: DatasetRef, split: str) -> DatasetFacts:
        """The facts of ``ref`` after its narrowing is checked: DataError says what is
        wrong (missing, unreadable, an unknown class, nothing left)."""
        path = dataset_path(ref, self.datasets_dir)
        key = (str(path), path.stat().st_mtime_ns, split)
        with self._lock:
            facts = self._cache.get(key)
        if facts is None:
            facts = dataset_facts(ref, self.datasets_dir, split)
            with self._lock:
                if len(self._cache) >= self.keep:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[key] = facts
        return facts.narrowed(ref.classes, ref.limit)


# D's image-side blocks of versions exported before manifests recorded them (``d_blocks``):
# the built-in families' rule at a resolution R, log2(R) - 2 (StyleGAN's D has one more)
_LEGACY_D_BLOCKS = {"dcgan": -2, "cgan": -2, "stylegan": -1}


def _d_blocks(m: Manifest) -> int | None:
    """What Freeze-D may count on ``m``'s discriminator: the manifest's record, or for an
    older built-in version the families' rule (None: unknown, the worker's plan judges)."""
    if m.d_blocks is not None:
        return m.d_blocks
    offset = _LEGACY_D_BLOCKS.get(m.family)
    return None if offset is None else int(math.log2(m.resolution)) + offset


class JobService:
    def __init__(self, settings: Settings, registry: Registry):
        self.settings, self.registry = settings, registry
        self.store = JobStore.from_url(settings.resolved_database_url())
        self.datasets = DatasetChecks(settings.datasets_dir)
        self.webhooks = WebhookSender(settings, self.store.get)
        self._celery = None

    @property
    def off_reason(self) -> str | None:
        """Why jobs are refused now (read each time: the training side may have been
        installed since the start)."""
        return jobs_off_reason(self.settings)

    def start(self) -> None:
        """Bring the job database's schema up to date (blocking; run in a thread)."""
        upgrade(self.store.engine)

    @property
    def celery(self) -> Any:
        if self._celery is None:
            self._celery = queue.make_celery(self.settings)
        return self._celery

    # -- submitting ----------------------------------------------------------------------
    def submit_fine_tune(self, spec: FineTuneSpec, key: str | None) -> tuple[Job, bool]:
        return self._submit_checked(JobType.FINE_TUNE, spec, key,
                                    lambda lv: self._check_fine_tune(spec, lv))

    def submit_evaluate(self, spec: EvaluateSpec, key: str | None) -> tuple[Job, bool]:
        return self._submit_checked(JobType.EVALUATE, spec, key,
                                    lambda lv: self._check_evaluate(spec, lv.manifest))

    def submit_project(self, spec: ProjectSpec, key: str | None) -> tuple[Job, bool]:
        return self._submit_checked(JobType.PROJECT, spec, key,
                                    lambda lv: self._check_project(spec, lv))

    def _submit_checked(self, job_type: JobType, spec: Spec, key: str | None,
                        check: Any) -> tuple[Job, bool]:
        """Jobs on? An idempotent replay? Then the type's checks (which may return fields
        to store in place of the submitted ones), the record, the message."""
        self._require_on()
        body = spec.model_dump(mode="json", by_alias=True)
        digest = request_hash(job_type.value, body)
        replay = self._replay(key, digest)
        if replay is not None:
            return replay, False
        lv = self.registry.get(spec.model, spec.version)    # 404 / 503 in the project's shape
        self._check_room()              # a full queue refuses before any other work
        self._check_webhook(spec)
        with self._dataset_guard(spec):
            body |= check(lv) or {}
            # the version must still be in the store when the record that reads it is
            # written: a DELETE (same lock) either ran before and is seen here, or runs
            # after and sees this job
            with model_lock(self.settings.models_dir / lv.name):
                if not (lv.dir / MANIFEST_NAME).is_file():
                    raise VersionNotFound(f"{lv.name} has no version {lv.version!r} (removed "
                                          "just now)", field="version")
                return self._submit(job_type, lv, body, key, digest)

    def _check_webhook(self, spec: Spec) -> None:
        if spec.webhook is None:
            return
        try:
            if self.settings.webhook_secret is None:
                raise WebhookRefused("webhooks are off here: no GANSERVE_WEBHOOK_SECRET to "
                                     "sign them with")
            check_target(spec.webhook.url, self.webhooks.allowed)
        except WebhookRefused as e:
            raise InvalidInput(str(e), field="webhook.url") from None

    def _dataset_guard(self, spec: Spec) -> contextlib.AbstractContextManager[None]:
        """An uploaded dataset cannot be removed between its check and the job's record
        (DELETE takes the same lock and then looks for jobs that use it)."""
        ref = (spec.dataset if isinstance(spec, FineTuneSpec)
               else getattr(spec, "reference", None))
        if ref is None or ref.id is None:
            return contextlib.nullcontext()
        return DatasetStore(self.settings.datasets_dir).locked()

    def _replay(self, key: str | None, digest: str) -> Job | None:
        """The job an Idempotency-Key already made (before any check: a replay answers
        the same job even if the model or data changed since); 409 for another request."""
        if key is None:
            return None
        job = self.store.by_idempotency_key(key)
        if job is not None and job.request_hash != digest:
            raise _key_reused(job)
        return job

    def _require_on(self) -> None:
        reason = self.off_reason           # often for a minute only: make run's install
        if reason is not None:
            raise JobsUnavailable(reason, headers={"Retry-After": "30"})

    def _submit(self, job_type: JobType, lv: LoadedVersion, spec: dict[str, Any],
                key: str | None, digest: str) -> tuple[Job, bool]:
        try:
            job, created = self.store.create(job_type.value, QUEUE_OF[job_type], lv.name,
                                             lv.version, spec, key, digest)
        except IdempotencyConflict as e:         # the same key raced in from elsewhere
            raise _key_reused(e.job) from None
        if not created:
            return job, False
        try:
            queue.publish(self.celery, job)
        except queue.QueueUnreachable as e:
            self.store.delete(job.id)
            raise BrokerUnavailable(f"{e}; the job was not created, try again shortly "
                                   "(inference is unaffected)",
                                   headers={"Retry-After": "5"}) from None
        SUBMITTED.labels(job_type.value).inc()
        log.info("job %s: %s of %s/%s queued", job.id, job_type.value, lv.name, lv.version)
        return job, True

    # -- checks --------------------------------------------------------------------------
    def _check_room(self) -> None:
        queued = sum(n for (_, state), n in self.store.counts().items() if state == "queued")
        if queued >= self.settings.max_queued_jobs:
            raise TooManyJobs(f"{queued} jobs are already queued (GANSERVE_MAX_QUEUED_JOBS="
                              f"{self.settings.max_queued_jobs}); try again when some have "
                              "run", headers={"Retry-After": "60"})

    def _check_fine_tune(self, spec: FineTuneSpec, lv: LoadedVersion) -> None:
        m, s = lv.manifest, self.settings
        if spec.steps > s.max_fine_tune_steps:
            raise InvalidInput(f"steps={spec.steps} is above GANSERVE_MAX_FINE_TUNE_STEPS "
                               f"({s.max_fine_tune_steps})", field="steps")
        missing = [r for r in ("G", "D", "G_ema")
                   if r not in m.weights or not (lv.dir / m.weights[r]).is_file()]
        if missing:
            raise InvalidInput(f"{lv.name}/{lv.version} has no training weights "
                               f"({', '.join(missing)}) to start from; pick a version "
                               "exported with them", field="version")
        problem = freeze_d_problem(spec.freeze_d, _d_blocks(m), m.family)
        if problem:
            raise InvalidInput(problem, field="freeze_d")
        self._check_new_name(spec, m)
        self._check_data(spec.dataset, m, "dataset")

    def _check_new_name(self, spec: FineTuneSpec, m: Manifest) -> None:
        if spec.name is None or spec.name == m.name:
            return
        other = self.registry.models.get(spec.name)
        loaded = [e for e in (other or {}).values() if isinstance(e, LoadedVersion)]
        if loaded and loaded[0].manifest.family != m.family:
            raise InvalidInput(f"name {spec.name!r} is a {loaded[0].manifest.family} model; a "
                               f"{m.family} fine-tune cannot add a version to it", field="name")

    def _check_data(self, ref: DatasetRef, m: Manifest, field: str) -> None:
        try:
            facts = self.datasets.load(ref, "train")
            if m.conditional:
                facts.check_classes(m.class_names, m.name)
        except (DataError, OSError) as e:
            raise InvalidInput(str(e), field=field) from None

    def _check_evaluate(self, spec: EvaluateSpec, m: Manifest) -> None:
        if spec.n > self.settings.max_eval_samples:
            raise InvalidInput(f"n={spec.n} is above GANSERVE_MAX_EVAL_SAMPLES "
                               f"({self.settings.max_eval_samples})", field="n")
        if spec.extractor == "inception" and self.settings.inception_extractor is None:
            raise InvalidInput("no Inception extractor here: set GANSERVE_INCEPTION_EXTRACTOR "
                               "to a folder with its extractor.json and ONNX file (see the "
                               "README), or use extractor 'classifier'", field="extractor")
        ref = spec.reference or DatasetRef(name="fashion-mnist")
        if ref.classes or ref.limit:
            raise InvalidInput("an evaluation compares against a whole dataset: give the "
                               "reference's name or path only", field="reference")
        try:
            self.datasets.load(ref, "test")
        except (DataError, OSError) as e:
            raise InvalidInput(str(e), field="reference") from None

    def _check_project(self, spec: ProjectSpec, lv: LoadedVersion) -> dict[str, Any]:
        """The image read as ``POST /v1/models/{name}/project`` reads it -> what to store:
        the image as the model sees it (a small PNG, whatever was sent) and the class's
        index."""
        m = lv.manifest
        if spec.steps > self.settings.max_project_steps:
            raise InvalidInput(f"steps={spec.steps} is above GANSERVE_MAX_PROJECT_STEPS "
                               f"({self.settings.max_project_steps})", field="steps")
        if "G_ema" not in m.weights or not (lv.dir / m.weights["G_ema"]).is_file():
            raise NotAvailable(f"{lv.name}/{lv.version} has no training weights (G_ema) to "
                               "refine with; POST /v1/models/NAME/project projects with "
                               "the encoder alone", field="version")
        evaluator = self.settings.models_dir / EVALUATOR / "extractor.json"
        if not evaluator.is_file():
            raise NotAvailable(f"no evaluation classifier in the store ({evaluator.parent}) "
                               "for the perceptual loss; build it with `ganserve "
                               "build-evaluator`", field="model")
        index = None if spec.class_ is None else resolve_class(lv, spec.class_)
        if index is None and m.conditional and "encoder" not in lv.batchers:
            raise InvalidInput(f"class: {lv.name}/{lv.version} has no encoder to tell the "
                               "image's class; give it", field="class")
        x = read_model_input(decode_base64(spec.image), lv)
        return {"image": png_base64(x), "class": index}

    # -- reading and cancelling ----------------------------------------------------------
    def get(self, job_id: str) -> Job:
        job = self.store.get(job_id) if len(job_id) <= 64 else None
        if job is None:
            raise JobNotFound(f"no job {job_id!r}; see GET /v1/jobs", field="id")
        return job

    def cancel(self, job_id: str) -> Job:
        job = self.get(job_id)
        if job.terminal:
            raise JobConflict(f"job {job_id} already {job.state}; nothing to cancel",
                              state=job.state)
        after, cancelled_now = self.store.request_cancel(job_id)
        if cancelled_now:
            CANCELLED_QUEUED.labels(job.type).inc()
            self.webhooks.notify(after or job, "completed")
        log.info("job %s: cancel requested (%s -> %s)", job_id, job.state,
                 after.state if after else "?")
        return after or job
