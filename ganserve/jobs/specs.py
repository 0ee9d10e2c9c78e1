"""What a job asks for: the bodies of ``POST /v1/jobs/fine-tune``, ``/v1/jobs/evaluate`` and
``/v1/jobs/project``, stored as the job row's ``spec`` and read back by the worker."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from ganserve.images import SNEAKER_PNG
from ganserve.strict import Int, Strict

Name = Annotated[str, StringConstraints(min_length=1, max_length=128)]
VersionStr = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{0,8}$")]
LearningRate = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
BUILTIN_DATASETS = ("fashion-mnist",)
EVAL_METRICS = ("fid", "kid", "precision", "recall", "classes", "memorization", "truncation",
                "style_mixing")
# metrics only the full evaluation computes (`ganserve evaluate` without --quick)
EXTRA_METRICS = ("memorization", "truncation", "style_mixing")


class DatasetRef(Strict):
    """A built-in dataset by ``name``, an uploaded one by ``id`` (``POST /v1/datasets``), or
    one in the data dir's ``datasets/`` folder by ``path`` (an IDX folder, an .npz, or an
    image folder with class subfolders); narrowed to ``classes`` (by name) and then to its
    first ``limit`` images."""
    name: Literal["fashion-mnist"] | None = Field(None, description="a built-in dataset")
    id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")] | None = Field(
        None, description="an uploaded dataset (POST /v1/datasets)")
    path: Annotated[str, StringConstraints(min_length=1, max_length=512,
                                           pattern=r"^[^\x00-\x1f\x7f]+$")] | None = Field(
        None, description="relative to GANSERVE_DATA_DIR/datasets")
    classes: Annotated[list[Name], Field(min_length=1, max_length=1000)] | None = Field(
        None, description="keep only these classes (by name)")
    limit: Int(1, 10_000_000, description="keep the first N images (after classes)") | None \
        = None

    @field_validator("classes")
    @classmethod
    def _distinct(cls, v: list[str] | None) -> list[str] | None:
        return list(dict.fromkeys(v)) if v is not None else None

    @model_validator(mode="after")
    def _one_source(self) -> DatasetRef:
        if sum(v is not None for v in (self.name, self.id, self.path)) != 1:
            raise ValueError("give exactly one of name (a built-in dataset: "
                             f"{', '.join(BUILTIN_DATASETS)}), id (an uploaded dataset) or "
                             "path")
        return self

    def describe(self) -> str:
        what = self.name or (f"dataset {self.id}" if self.id else self.path) or ""
        if self.classes:
            what += f" [{', '.join(self.classes)}]"
        return what + (f" (first {self.limit})" if self.limit else "")


WEBHOOK_EVENTS = ("start", "progress", "completed")


class Webhook(Strict):
    """Where to POST the job's record as it moves (signed with HMAC-SHA256, see README)."""
    url: Annotated[str, StringConstraints(min_length=8, max_length=2048,
                                          pattern=r"^https?://[^\s]+$")] = Field(
        description="http(s) URL; its host must be in GANSERVE_WEBHOOK_ALLOWED_HOSTS")
    events: Annotated[list[Literal[WEBHOOK_EVENTS]], Field(min_length=1, max_length=3)] = \
        Field(list(WEBHOOK_EVENTS), description="start: a worker began it (again after a "
              "worker died); progress: a fine-tune's training progress, at most every "
              "GANSERVE_WEBHOOK_PROGRESS_INTERVAL_S; completed: succeeded, failed or "
              "cancelled")

    @field_validator("events")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        return list(dict.fromkeys(v))


class FineTuneSpec(Strict):
    model_config = Strict.model_config | {"json_schema_extra": {"examples": [
        {"model": "fashion-dcgan", "dataset": {"name": "fashion-mnist", "classes": ["Bag"],
                                               "limit": 1000}, "steps": 20}]}}

    model: Name
    version: VersionStr | None = Field(None, description="the base version (default: latest)")
    dataset: DatasetRef
    steps: Int(1, 10_000_000, description="optimizer steps (capped by "
               "GANSERVE_MAX_FINE_TUNE_STEPS)") = 1500
    batch: Int(1, 1024, description="images per step (default: the base model's)") | None = None
    lr_g: LearningRate | None = Field(None, description="G's Adam rate (default: the base "
                                      "model's preset)")
    lr_d: LearningRate | None = Field(None, description="D's Adam rate (default: the base "
                                      "model's preset)")
    seed: Int(0, 2**31 - 1) = 0
    name: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,127}$")] | None = \
        Field(None, description="publish as this model name (default: the base model's, "
              "next version)")
    freeze_d: Int(0, 64, description="Freeze-D: keep D's first N blocks (from the image "
                  "side) at the base model's weights") = 0
    augment: bool = Field(True, description="differentiable augmentation (translation, "
                          "cutout) of real and fake images for D: fewer images overfit less")
    sample_every: Int(1, 1_000_000, description="steps between progress grids") = 100
    checkpoint_every: Int(1, 1_000_000, description="steps between checkpoints") = 100
    webhook: Webhook | None = None


class EvaluateSpec(Strict):
    model_config = Strict.model_config | {"json_schema_extra": {"examples": [
        {"model": "fashion-dcgan", "n": 2000, "seed": 0}]}}

    model: Name
    version: VersionStr | None = Field(None, description="default: latest")
    n: Int(16, 10_000_000, description="samples (capped by GANSERVE_MAX_EVAL_SAMPLES)") = 10_000
    seed: Int(0, 2**31 - 1, description="first seed") = 0
    metrics: Annotated[list[Literal[EVAL_METRICS]], Field(min_length=1)] | None = Field(
        None, description="what the result shows (default: all that apply); asking for none "
        "of memorization, truncation and style_mixing also skips computing them (the quick "
        "evaluation)")
    reference: DatasetRef | None = Field(None, description="the real images (default: "
                                         "Fashion-MNIST's test split)")
    extractor: Literal["classifier", "inception"] = Field(
        "classifier", description="feature space: the store's Fashion-MNIST classifier, or "
        "Inception-v3 where GANSERVE_INCEPTION_EXTRACTOR names its local files")
    webhook: Webhook | None = None

    @property
    def extras(self) -> bool:
        return self.metrics is None or any(m in EXTRA_METRICS for m in self.metrics)


ClassRef = Annotated[Int(0, 1_000_000) | Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"\S")],
    Field(description="class index, or name such as 'Sneaker'")]
PROJECT_IMAGE_MAX = 1 << 21         # base64 characters (the API's body limit is lower)


class ProjectSpec(Strict):
    """An image to project precisely. The API checks the image as ``POST
    /v1/models/{name}/project`` does and stores it as the model sees it (a PNG of the
    model's size and channels), so ``request.image`` of the record is that PNG."""
    model_config = Strict.model_config | {"json_schema_extra": {"examples": [
        {"model": "fashion-stylegan", "image": SNEAKER_PNG, "steps": 300}]}}

    model: Name
    version: VersionStr | None = Field(None, description="default: latest")
    image: Annotated[str, StringConstraints(min_length=1, max_length=PROJECT_IMAGE_MAX)] = \
        Field(description="base64 PNG, JPEG or WebP (a data: URL prefix is allowed)")
    class_: ClassRef | None = Field(None, alias="class", description="conditional models: "
                                    "the image's class, if known (default: the encoder's "
                                    "call; required for a version without an encoder)")
    steps: Int(1, 100_000, description="Adam steps from the encoder's latent (the mean "
               "latent for a version without an encoder; capped by "
               "GANSERVE_MAX_PROJECT_STEPS)") = 300
    webhook: Webhook | None = None


def freeze_d_problem(n: int, d_blocks: int | None, family: str,
                     name: str = "freeze_d") -> str | None:
    """Why Freeze-D of ``n`` blocks cannot run on a discriminator with ``d_blocks``
    image-side blocks (0: it names none, so it cannot be partly frozen), or None. The one
    rule the API's submission check (from the manifest's ``d_blocks``), the training plan
    and the training loop (from D itself) all apply; ``name`` is the option as the caller's
    user wrote it (``freeze_d``, ``--freeze-d``)."""
    if n == 0:
        return None
    if not d_blocks:
        return f"{family}'s discriminator cannot be partly frozen: drop {name}"
    if n >= d_blocks:
        return (f"{name}={n}: D has {d_blocks} blocks at this size; freeze at most "
                f"{d_blocks - 1}")
    return None
