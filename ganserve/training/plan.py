"""The fully resolved plan of a training run, checked before any work starts.

``plan_training(TrainOptions(...))`` turns what a user asked for (a family and preset, flag
overrides, model-config overrides, data, or "resume this run folder") into a ``TrainPlan``:
the model and train configs, the loaded data and the run's bookkeeping. Every rule lives
here, not in the CLI, so the CLI, a fine-tune job and a test plan runs the same way:
- resuming keeps what makes a run that run (family, fixed train flags, model config);
- model-config overrides are type-checked and the networks built *before* the data loads
  (a bad ``g_width`` is one line naming the field, not a traceback after 60,000 images);
- conditional families need labeled data; the data must match the model's size.
Problems raise ``PlanError`` with what to do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from ganserve.data import ImageData, load_images
from ganserve.families import families
from ganserve.families import family as family_spec
from ganserve.jobs.specs import freeze_d_problem
from ganserve.manifest import Manifest, load_manifest
from ganserve.training.config import TrainConfig, preset, train_config_from_dict
from ganserve.training.loop import TrainResult, d_blocks, read_run_config, train
from ganserve.training.networks import build, config_fields, config_from_dict, family_module
from ganserve.training.run_folder import RunFolder

# TrainConfig fields a run keeps for life (resume refuses to change them), and those it may
FIXED_TRAIN_FIELDS = ("batch", "loss", "seed", "precision", "r1_gamma", "lr_g", "lr_d",
                      "aux_class_weight")
RESUMABLE_TRAIN_FIELDS = ("steps", "time_budget_minutes", "eval_every", "device")


class PlanError(ValueError):
    """A run that cannot be planned as asked; the message says what to do instead."""


@dataclass
class TrainOptions:
    """What a user asks for. ``train`` holds TrainConfig overrides (None = the preset's)."""
    family: str
    out: Path
    preset: str = "fashion32"
    train: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)      # model-config overrides
    data: str | None = None
    limit: int | None = None
    resume: bool = False
    command: str = ""
    # how the caller names a field in messages (the CLI: "lr_g" -> "--lr"; "model" is the
    # model-config overrides as a whole)
    names: dict[str, str] = field(default_factory=dict)
    # fine-tune: start from this published version's weights and model config
    init_from: Path | None = None
    # images already loaded (and narrowed) by the caller, used instead of reading ``data``,
    # which then only names them in the run's records
    images: ImageData | None = None

    def name(self, key: str) -> str:
        return self.names.get(key, key)


@dataclass
class TrainPlan:
    family: str
    out: Path
    model_cfg: Any
    train_cfg: TrainConfig
    data: ImageData
    resume: bool
    preset: str
    command: str
    data_path: str | None
    resumes: list[str] = field(default_factory=list)
    init_from: Path | None = None       # the version folder whose weights start the run
    parent: str | None = None           # its NAME/VERSION, recorded in the export


def _checked_model_config(family: str, args: dict[str, Any]) -> Any:
    """The family's config from ``args``, types checked by the dataclass's annotations and
    the networks built once, so a bad value fails here and names its field."""
    cls = family_module(family).Config
    unknown = set(args) - config_fields(family)
    if unknown:
        raise PlanError(f"{family} has no model field(s) {', '.join(sorted(unknown))}; "
                        f"fields: {', '.join(sorted(config_fields(family)))}")
    try:
        TypeAdapter(cls).validate_python(args)
    except ValidationError as e:
        err = e.errors()[0]
        msg = str(err["msg"]).removeprefix("Value error, ")
        if not err["loc"]:              # the config's own check (__post_init__)
            raise PlanError(f"{family} model config: {msg}") from None
        name = ".".join(str(p) for p in err["loc"])
        raise PlanError(f"model field {name}={err.get('input')!r}: {msg}") from None
    try:
        cfg = config_from_dict(family, args)
        build(family, cfg)
    except (ValueError, RuntimeError, TypeError) as e:
        raise PlanError(f"{family} model config is not buildable: {e}") from None
    return cfg


def _resumed(opts: TrainOptions) -> tuple[dict, dict, str, str | None, list[str], str]:
    rc = read_run_config(opts.out)
    if rc["family"] != opts.family:
        raise PlanError(f"{opts.out} is a {rc['family']} run, not {opts.family}")
    changed = [opts.name(k) for k in FIXED_TRAIN_FIELDS if opts.train.get(k) is not None]
    if changed or opts.model:
        what = ", ".join(dict.fromkeys(changed + ([opts.name("model")] if opts.model else [])))
        raise PlanError(f"cannot change {what} when resuming (it would not be the same "
                        "run); start a new run folder instead")
    train_args = dict(rc["train"])
    train_args.update({k: v for k, v in opts.train.items()
                       if k in RESUMABLE_TRAIN_FIELDS and v is not None})
    return (rc["model"], train_args, rc.get("preset", ""), opts.data or rc["data"].get("path"),
            [*rc.get("resumes", []), opts.command], rc.get("command", opts.command))


def _fine_tune_base(opts: TrainOptions) -> Manifest:
    """The manifest of the version a fine-tune starts from; its architecture cannot change."""
    m = load_manifest(opts.init_from)
    if m.family != opts.family:
        raise PlanError(f"{m.name}/{m.version} is a {m.family} model, not {opts.family}")
    if opts.model:
        raise PlanError(f"a fine-tune keeps {m.name}/{m.version}'s architecture; drop "
                        f"{opts.name('model')}")
    return m


def _fresh(opts: TrainOptions, base: Manifest | None) -> tuple[dict, dict]:
    model_args, train_args = preset(opts.family, opts.preset)
    if base is not None:
        model_args = dict(base.model_args)
    model_args.update(opts.model)
    train_args.update({k: v for k, v in opts.train.items() if v is not None})
    if train_args.get("aux_class_weight") and not family_spec(opts.family).conditional:
        raise PlanError("an auxiliary class loss applies to conditional families only "
                        f"({', '.join(f.name for f in families() if f.conditional)})")
    if "aux_class_weight" in opts.train and opts.train["aux_class_weight"] is not None:
        model_args["aux_classifier"] = opts.train["aux_class_weight"] > 0
    if train_args.get("loss") == "wgan-gp" and "d_batchnorm" in config_fields(opts.family):
        model_args["d_batchnorm"] = False      # the gradient penalty is per sample
    return model_args, train_args


def plan_training(opts: TrainOptions) -> TrainPlan:
    """Resolve and check everything, then load the data: the plan ``train`` runs."""
    try:
        return _plan(opts)
    except PlanError:
        raise
    except ValueError as e:     # a config's own validation (presets, TrainConfig fields)
        raise PlanError(str(e)) from e


def _plan(opts: TrainOptions) -> TrainPlan:
    if not opts.resume and RunFolder(opts.out).holds_run():
        raise PlanError(f"{opts.out} already holds a run; resume it ({opts.name('resume')}) "
                        "or choose another run folder")
    base = _fine_tune_base(opts) if opts.init_from is not None and not opts.resume else None
    if opts.resume:
        model_args, train_args, preset_name, data_path, resumes, command = _resumed(opts)
    else:
        model_args, train_args = _fresh(opts, base)
        preset_name, data_path, resumes, command = opts.preset, opts.data, [], opts.command
    train_cfg = train_config_from_dict(train_args)
    conditional = family_spec(opts.family).conditional
    probe = _checked_model_config(opts.family, {
        k: v for k, v in model_args.items() if k not in ("num_classes", "class_names")}
        | ({"num_classes": 2} if conditional and not opts.resume else {}))
    _check_freeze_d(opts.family, probe, train_cfg.freeze_d, opts.name("freeze_d"))
    data = opts.images if opts.images is not None else load_images(
        data_path, resolution=probe.resolution, channels=probe.channels, limit=opts.limit)
    parent = _check_fine_tune_data(base, data) if base is not None else None
    if not opts.resume and base is None:
        model_args["class_names"] = list(data.class_names)
        if conditional:
            if data.labels is None:
                raise PlanError(f"{opts.family} needs labeled data; {data.source} has no "
                                "labels (use an IDX folder with labels, an .npz with 'y', "
                                "or class subfolders)")
            model_args["num_classes"] = data.num_classes
    return TrainPlan(opts.family, opts.out, config_from_dict(opts.family, model_args),
                     train_cfg, data, opts.resume, preset_name, command, data_path, resumes,
                     opts.init_from if base is not None else None, parent)


def _check_freeze_d(family: str, model_cfg: Any, n: int, name: str) -> None:
    """Freeze-D needs fewer frozen blocks than D has (and a D that names its blocks)."""
    if n == 0:
        return
    _, D = build(family, model_cfg)
    problem = freeze_d_problem(n, d_blocks(D), family, name)
    if problem:
        raise PlanError(problem)


def _check_fine_tune_data(m: Manifest, data: ImageData) -> str:
    """A conditional model fine-tunes on data labelled with its own classes."""
    if m.conditional and (data.labels is None or data.class_names != m.class_names):
        raise PlanError(f"{data.source}'s classes ({', '.join(data.class_names) or 'none'}) "
                        f"are not {m.name}/{m.version}'s ({', '.join(m.class_names)})")
    return f"{m.name}/{m.version}"


def run_plan(plan: TrainPlan, **hooks: Any) -> TrainResult:
    """Train as planned; ``hooks``: ``progress``, ``should_cancel``, ``evaluator`` (see
    ``ganserve.training.loop.train``)."""
    return train(plan.out, plan.family, plan.model_cfg, plan.train_cfg, plan.data,
                 resume=plan.resume, preset=plan.preset, command=plan.command,
                 data_path=plan.data_path, resumes=plan.resumes, init_from=plan.init_from,
                 parent=plan.parent, **hooks)
