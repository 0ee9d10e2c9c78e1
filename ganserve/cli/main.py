"""The ``ganserve`` command line: train, export, evaluate, build-evaluator.

Subcommands import their heavy modules lazily: ``ganserve evaluate`` and (later) ``serve``
run without torch installed.

Namesakes, one concept at several layers (entry points): ``ganserve.cli.main``: the command
line; ``ganserve.service.main``: the web application.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import os
import shlex
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ganserve
from ganserve.families import families
from ganserve.logs import quiet_libraries
from ganserve.names import closest, did_you_mean

if TYPE_CHECKING:
    from ganserve.cli.embedded_worker import EmbeddedWorker
    from ganserve.service.settings import Settings

log = logging.getLogger("ganserve")

EPILOG_TRAIN = """examples:
  ganserve train dcgan --preset baby --out runs/try --steps 20
  ganserve train stylegan --data /usr/share/datasets/fashion-mnist --out runs/sg --preset fashion32
  ganserve train cgan --data my_images/ --out runs/cg --steps 5000 --batch 32 --lr 1e-4
  ganserve train stylegan --out runs/sg --resume            # continue a killed run
"""
EPILOG_EXPORT = """examples:
  ganserve export runs/sg --name fashion-stylegan --version 1 --to /srv/models
  ganserve export runs/try --name try                      # next free version in the store
"""
EPILOG_GENERATE = """examples:
  ganserve generate fashion-stylegan --seeds 0-35 --psi 0.7 --outdir out/   # seed0000.png ...
  ganserve generate fashion-cgan --class Sneaker --seeds 0-7 --grid --cols 8 --scale 3
  ganserve generate fashion-dcgan/1 --interpolate 1 2 --steps 16 --format gif
  ganserve generate fashion-stylegan --style-mix --row-seeds 85,100,75 \\
                    --col-seeds 55,821,1789,293 --styles 0-3 --scale 3

Each file has the bytes the API returns for the same request (seed0042.png = POST /sample
{"seeds": [42]}; grid.png = all the seeds with --cols).
"""

EPILOG_EVAL = """examples:
  ganserve evaluate fashion-stylegan/3                     # a version in the store
  ganserve evaluate fashion-cgan --n 2000                  # latest version, fewer samples
  ganserve evaluate m/1 --extractor inception/             # any ONNX feature extractor
  ganserve evaluate m/1 --no-data --quick                  # FID vs stored stats, no dataset

The version folder (its manifest included) is never written. Each evaluation is stored as
a record beside it, MODELS_DIR/NAME/_evaluations/VERSION/<UTC time>-<id>.json (who, when,
n, seed, psi, extractor and reference with their sha256, metrics). The model card shows
the shipped metrics overlaid, metric by metric, by the newest record of the same kind.
Real images (--data) are read before any sampling: a missing path is an error (exit 1).
"""


LOG_LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR"]
STORE_HELP = "model store (default $GANSERVE_MODELS_DIR or ./var/models)"


class CliError(Exception):
    """A usage or input problem: printed as one line, exit code 1."""


class _Help(argparse.RawDescriptionHelpFormatter):
    """Examples kept as written; every option with a real default shows it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (action.option_strings and "default" not in text
                and action.default not in (None, False, [], argparse.SUPPRESS)):
            text += " (default: %(default)s)"
        return text


def _number(parse: Any, ok: Any, what: str, rule: str, noun: str = "") -> Any:
    """An argparse type: ``parse`` the text, check ``ok``; both failures are usage errors
    (exit 2) that say what was expected."""
    def convert(text: str) -> Any:
        try:
            v = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not ok(v):
            raise argparse.ArgumentTypeError(f"{noun}must be {rule}, got {text}")
        return v
    return convert


_positive = _number(int, lambda v: v >= 1, "a whole number >= 1", ">= 1")


def _version_arg(p: argparse.ArgumentParser) -> None:
    """The positional ``model`` of the commands that read one version."""
    p.add_argument("model", help="NAME/VERSION in the store (or NAME for its latest), or a "
                   "version folder")
_positive_float = _number(float, lambda v: v > 0, "a number > 0", "> 0")
_psi = _number(float, lambda v: 0.0 <= v <= 2.0, "a number in [0, 2]", "in [0, 2]",
               "truncation psi ")


def _model_arg(text: str) -> tuple[str, object]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


# Long on purpose: one add_argument per flag, the whole command-line surface in one place.
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ganserve", description="Train, export, evaluate, "
                                "generate from and serve GANs (DCGAN, cGAN, StyleGAN2) with "
                                "ONNX Runtime.", formatter_class=_Help)
    p.add_argument("--version", action="version", version=f"ganserve {ganserve.__version__}")
    p.add_argument("--log-level", default="INFO", choices=LOG_LEVELS)
    p.add_argument("--verbose", action="store_true",
                   help="the libraries' banners and INFO lines too (Alembic, Celery, Uvicorn)")
    # --log-level also after the command (ganserve train ... --log-level DEBUG)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--log-level", default=argparse.SUPPRESS, choices=LOG_LEVELS,
                        help="log verbosity (default: INFO)")
    common.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="the libraries' banners and INFO lines too (Alembic, Celery, "
                             "Uvicorn); GANSERVE_VERBOSE=true does the same")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    add = functools.partial(sub.add_parser, parents=[common], formatter_class=_Help)

    t = add("train", help="train a GAN into a run folder",
                       epilog=EPILOG_TRAIN)
    t.add_argument("family", choices=[f.name for f in families()])
    t.add_argument("--data", help="IDX folder, .npz or image folder "
                   "(default /usr/share/datasets/fashion-mnist)")
    t.add_argument("--out", required=True, help="run folder, e.g. runs/NAME")
    t.add_argument("--preset", default="fashion32", help="baby | fashion32 (default)")
    t.add_argument("--steps", type=_positive, help="total optimizer steps")
    t.add_argument("--batch", type=_positive, help="images per step")
    t.add_argument("--lr", type=_positive_float, help="learning rate of G and D")
    t.add_argument("--lr-d", type=_positive_float, help="learning rate of D (default: --lr)")
    t.add_argument("--loss", choices=["logistic", "wgan-gp"],
                   help="non-saturating logistic, or WGAN with gradient penalty")
    t.add_argument("--seed", type=int, help="seed of the weight init and the batches")
    t.add_argument("--aux-class-weight", type=float,
                   help="cgan: add an AC-GAN class loss with this weight (e.g. 1.0)")
    t.add_argument("--time-budget", type=_positive_float, metavar="MINUTES",
                   help="finish the run (final samples, FID point, checkpoint) once its wall "
                        "time, resumes included, reaches MINUTES, even before --steps")
    t.add_argument("--r1-gamma", type=float, help="R1 penalty weight on real images (0 = off)")
    t.add_argument("--precision", choices=["fp32", "bf16"],
                   help="bf16: autocast the G/D passes (faster on CPUs with AVX512-BF16)")
    t.add_argument("--device", choices=["cpu", "cuda", "auto"],
                   help="where G and D train (default cpu; cuda needs torch's CUDA build and "
                   "a GPU; samples and the export run on the CPU)")
    t.add_argument("--model-arg", action="append", default=[], type=_model_arg,
                   metavar="KEY=VALUE", help="override one field of the preset's model "
                   "config, e.g. d_architecture=orig or mapping_lr_mult=0.1 (repeatable; "
                   "VALUE is read as JSON, else as a string)")
    t.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    t.add_argument("--init-from", metavar="VERSION",
                   help="fine-tune: start from a published version's weights and model "
                        "config (models/NAME/V, or models/NAME for its latest)")
    t.add_argument("--limit", type=_positive, help="use only the first N images")
    t.add_argument("--eval-every", type=int, help="steps between FID points (0 = off)")
    t.add_argument("--extractor", help="feature extractor for in-training FID (default "
                   "MODELS_DIR/_evaluators/fashion-mnist)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")

    e = add("export", help="export a run to the model store (ONNX + manifest)",
                       epilog=EPILOG_EXPORT)
    e.add_argument("run", help="run folder")
    e.add_argument("--name", required=True, help="model name in the store")
    e.add_argument("--version", help="integer version (default: next free)")
    e.add_argument("--to", help="model store folder (default GANSERVE_MODELS_DIR, else "
                   "./var/models)")
    e.add_argument("--parity-tol", type=_positive_float, default=1e-4,
                   help="largest |ONNX Runtime - PyTorch| allowed before publishing")
    e.add_argument("--fp16", action="store_true",
                   help="also write each graph's float16 twin (GPUs serve it under "
                   "GANSERVE_FP16=auto), checked against the float32 graph")

    n = add("train-encoder", help="train a version's projection encoder (image -> latent) "
            "and add it to the version")
    _version_arg(n)
    n.add_argument("--steps", type=_positive, default=2000, help="optimizer steps (2000)")
    n.add_argument("--batch", type=_positive, default=32,
                   help="images per step, half generated, half real (32)")
    n.add_argument("--data", help="real images, the training split (default "
                   "/usr/share/datasets/fashion-mnist)")
    n.add_argument("--limit", type=_positive, help="use the first N real images")
    n.add_argument("--extractor", help="the evaluation classifier for the perceptual loss "
                   "(default MODELS_DIR/_evaluators/fashion-mnist)")
    n.add_argument("--seed", type=int, default=0)

    r = add("directions", help="compute a version's latent directions (principal axes, "
            "class to class) and add them to the version")
    _version_arg(r)
    r.add_argument("--n", type=_positive, default=10_000, help="samples (default 10000)")
    r.add_argument("--principal", type=_positive, default=10,
                   help="principal directions to keep (default 10)")
    r.add_argument("--extractor", help="the classifier that labels samples (default "
                   "MODELS_DIR/_evaluators/fashion-mnist)")
    r.add_argument("--learn-steps", type=int, default=0, metavar="N",
                   help="class directions of a z/w model: learn them through the generator "
                   "for N steps (torch; 1000 is about 6 min), which changes the class far "
                   "more often but keeps less of the image; default 0: LDA boundaries, no "
                   "torch")

    v = add("evaluate", help="score a model version (FID, KID, P/R, coverage) "
                       "into a record beside it",
                       epilog=EPILOG_EVAL)
    _version_arg(v)
    v.add_argument("--n", type=_positive, default=10_000, help="samples (default 10000)")
    v.add_argument("--extractor", help="extractor folder or .json "
                   "(default MODELS_DIR/_evaluators/fashion-mnist)")
    real = v.add_mutually_exclusive_group()
    real.add_argument("--data", help="real images (IDX folder, .npz or image folder) for KID, "
                      "precision/recall and memorization (default "
                      "/usr/share/datasets/fashion-mnist); a missing path is an error")
    real.add_argument("--no-data", action="store_true",
                      help="use no real images: score only FID against the extractor's stored "
                      "reference statistics, class coverage and StyleGAN checks (the record "
                      "says which metrics it holds)")
    v.add_argument("--psi", type=_psi, default=1.0, help="truncation psi (default 1)")
    v.add_argument("--seed", type=int, default=0,
                   help="first seed: samples use seeds SEED..SEED+N-1 (default 0)")
    v.add_argument("--no-write", action="store_true",
                   help="print only; store no evaluation record")
    v.add_argument("--quick", action="store_true",
                   help="skip the memorization check and the StyleGAN behaviour checks")
    v.add_argument("--json", action="store_true", help="print JSON instead of a table")

    s = add("serve", help="run the inference service (FastAPI + ONNX Runtime)",
                       epilog="examples:\n  ganserve serve\n  ganserve serve --models-dir "
                       "/srv/models --host 0.0.0.0 --port 8000 --workers 2\n\nSettings come "
                       "from GANSERVE_* environment variables (see README).",
                       )
    s.add_argument("--models-dir", help=STORE_HELP)
    s.add_argument("--host", default="127.0.0.1", help="address to listen on")
    s.add_argument("--port", type=int, default=8000, help="port to listen on")
    s.add_argument("--workers", type=_positive, default=1,
                   help="worker processes (uvicorn servers under ganserve's supervisor)")
    s.add_argument("--grpc-port", type=int, metavar="PORT",
                   help="also serve the Open Inference Protocol over gRPC on PORT (same "
                   "--host; every worker shares it); default off (GANSERVE_GRPC_PORT)")

    w = add("worker", help="run a job worker: fine-tune and evaluate jobs from the broker",
            epilog="examples:\n  GANSERVE_BROKER_URL=redis://localhost:6379/0 ganserve worker\n"
            "  ganserve worker --queues eval --concurrency 2\n\nWith no GANSERVE_BROKER_URL the "
            "worker serves embedded mode's SQLite broker in the data dir (what `ganserve "
            "serve` starts by itself).")
    w.add_argument("--queues", default="train,eval",
                   help="queues to take jobs from: train (fine-tunes), eval")
    w.add_argument("--concurrency", type=_positive, default=1,
                   help="jobs at once (keep 1 per device for the train queue)")
    w.add_argument("--models-dir", help=STORE_HELP)
    w.add_argument("--data-dir", help="job folders and datasets (default $GANSERVE_DATA_DIR "
                   "or ./var/data)")

    k = add("api-key", help="make an API key: prints the key (once) and its entry for "
            "GANSERVE_API_KEYS_FILE (which stores only its hash)")
    k.add_argument("name", help="who or what uses it, e.g. ci")
    k.add_argument("--read-only", action="store_true", help="GETs only")

    sd = add("seed-store", help="copy the shipped models into the store: the versions it "
             "lacks, each whole (a deployment's first start; never overwrites)")
    sd.add_argument("--from", dest="source", required=True, help="the shipped store (in the "
                    "image: /app/shipped-models)")
    sd.add_argument("--to", help="the store (default GANSERVE_MODELS_DIR)")

    hc = add("healthcheck", help="exit 0 when URL answers 200 within --timeout, else 1 with "
             "one line (the images' and compose's health checks)")
    hc.add_argument("url", nargs="?", default="http://127.0.0.1:8000/v2/health/ready",
                    help="what to ask (default: the API's readiness on this host)")
    hc.add_argument("--timeout", type=float, default=2.0, help="seconds")

    al = add("alert-log", help="an Alertmanager webhook receiver that logs each alert and "
             "keeps the latest for GET /alerts (compose's default receiver)")
    al.add_argument("--host", default="127.0.0.1")
    al.add_argument("--port", type=int, default=9095)

    g = add("generate", help="images straight from the model store (no server)",
                       epilog=EPILOG_GENERATE)
    g.add_argument("model", help="NAME or NAME/VERSION in the store, or a version folder")
    g.add_argument("--models-dir", help=STORE_HELP)
    g.add_argument("--outdir", type=Path, default=Path("out"), help="output folder")
    g.add_argument("--seeds", default="0-7", help="seeds: '0-35', '1,5,9-12' (default 0-7)")
    g.add_argument("--psi", type=_psi, default=1.0, help="truncation psi in [0, 2]")
    g.add_argument("--class", dest="class_", metavar="CLASS",
                   help="class name or index (conditional models)")
    g.add_argument("--scale", type=_positive, default=1, help="nearest-neighbour upscale")
    g.add_argument("--grid", action="store_true", help="also write grid.png of all the seeds")
    g.add_argument("--cols", type=_positive, help="grid columns")
    g.add_argument("--interpolate", nargs=2, type=int, metavar=("SEED_A", "SEED_B"),
                   help="frames between two seeds instead of samples")
    g.add_argument("--steps", type=_positive, default=8, help="interpolation frames")
    g.add_argument("--space", choices=["z", "w"], default="z",
                   help="interpolate in z, or in w (StyleGAN-like families)")
    g.add_argument("--method", choices=["slerp", "lerp"], default="slerp",
                   help="interpolation path")
    g.add_argument("--format", choices=["png", "gif", "webp"], default="png",
                   help="interpolation: a PNG strip or an animation")
    g.add_argument("--frame-ms", type=_positive, default=100, help="animation: ms per frame")
    g.add_argument("--style-mix", action="store_true", help="a style-mixing grid (StyleGAN)")
    g.add_argument("--row-seeds", default="85,100,75", help="style-mix rows")
    g.add_argument("--col-seeds", default="55,821,1789,293", help="style-mix columns")
    g.add_argument("--styles", default="coarse", help="layers: '0-3' or coarse|middle|fine")

    b = add("build-evaluator", help="train the evaluation classifier and its "
                       "reference statistics")
    b.add_argument("--data", help="labeled IDX folder (default Fashion-MNIST)")
    b.add_argument("--out", default=None,
                   help="where the classifier, its spec and reference statistics go "
                        "(default MODELS_DIR/_evaluators/fashion-mnist)")
    b.add_argument("--epochs", type=_positive, default=8, help="training epochs")
    b.add_argument("--limit", type=_positive, help="use only the first N images per split")
    p.set_defaults(commands=sub.choices)
    return p


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Like ``parse_args``, but an unknown flag after a command is that command's error,
    with its usage and the flag it probably meant (argparse leaves it to the top level)."""
    command = _command_word(parser, argv)
    if command is not None and command not in COMMANDS:
        parser.error(f"unknown command {command!r}{did_you_mean(command, COMMANDS)} "
                     f"(commands: {', '.join(COMMANDS)})")
    args, extra = parser.parse_known_args(argv)
    if extra:
        command = args.commands[args.command]
        before = argv[:argv.index(args.command)] if args.command in argv else []
        if any(x in before for x in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        command.error(f"unrecognized arguments: {' '.join(extra)}"
                      + "".join(_flag_hint(command, x) for x in extra if x.startswith("-")))
    del args.commands
    return args


def _command_word(parser: argparse.ArgumentParser, argv: list[str]) -> str | None:
    """The first word that is neither a top-level flag nor a flag's value."""
    takes_value = {o for a in parser._actions if a.option_strings and a.nargs != 0
                   for o in a.option_strings}
    words = iter(argv)
    for word in words:
        if not word.startswith("-") or word == "--":
            return next(words, None) if word == "--" else word
        if "=" not in word and any(o.startswith(word) for o in takes_value):   # --log too
            next(words, None)
    return None


def _flag_hint(command: argparse.ArgumentParser, given: str) -> str:
    """' (--sedes: did you mean --seeds?)' for a near miss of a flag or a positional."""
    name = given.split("=")[0]
    flags = [o for a in command._actions for o in a.option_strings]
    positionals = {a.dest: a.metavar or a.dest.upper() for a in command._actions
                   if not a.option_strings and a.dest != argparse.SUPPRESS}
    guess = closest(name.lstrip("-"), positionals)
    if guess:
        return f" ({name}: {positionals[guess]} is given without a flag: {command.prog} " \
               f"{positionals[guess]} ...)"
    guess = closest(name, flags)
    return f" ({name}: did you mean {guess}?)" if guess else ""


# `ganserve train` flags -> TrainConfig fields (the plan decides which may change on resume)
TRAIN_FLAGS = {"batch": "batch", "loss": "loss", "seed": "seed", "precision": "precision",
               "r1_gamma": "r1_gamma", "steps": "steps", "time_budget": "time_budget_minutes",
               "eval_every": "eval_every", "lr_d": "lr_d",
               "aux_class_weight": "aux_class_weight", "device": "device"}


# TrainConfig field -> the flag that sets it, for the plan's messages
FLAG_NAMES = {field: "--" + flag.replace("_", "-") for flag, field in TRAIN_FLAGS.items()} | {
    "lr_g": "--lr", "model": "--model-arg", "resume": "--resume"}


def _train_options(args: argparse.Namespace):
    from ganserve.training.plan import TrainOptions

    overrides = {field: getattr(args, flag) for flag, field in TRAIN_FLAGS.items()}
    names = dict(FLAG_NAMES)
    if args.lr is not None:
        overrides["lr_g"] = args.lr
        if args.lr_d is None:          # --lr sets both learning rates
            overrides["lr_d"], names["lr_d"] = args.lr, "--lr"
    from ganserve.manifest import in_store, resolve_version_dir

    init_from = (resolve_version_dir(in_store(args.init_from, models_dir()))
                 if args.init_from else None)
    return TrainOptions(family=args.family, out=Path(args.out), preset=args.preset,
                        init_from=init_from,
                        train=overrides, model=dict(args.model_arg), data=args.data,
                        limit=args.limit, resume=args.resume,
                        command="ganserve " + shlex.join(args.argv), names=names)


def _projected_steps(p, cfg) -> int:
    """The step the run will end at: --steps, or sooner when --time-budget runs out first
    (so the bar's ETA is the real one)."""
    budget_s = cfg.time_budget_minutes * 60
    if not budget_s or p.images_per_s <= 0:
        return p.total_steps
    steps_per_s = p.images_per_s / cfg.batch
    return max(p.step, min(p.total_steps, int(p.step + (budget_s - p.elapsed_s) * steps_per_s)))


def cmd_train(args: argparse.Namespace) -> int:
    from ganserve.training.plan import plan_training, run_plan
    from ganserve.training.run_folder import RunFolder

    plan = plan_training(_train_options(args))
    cfg, run_dir = plan.train_cfg, plan.out
    evaluator = None
    if cfg.eval_every:
        ext = Path(args.extractor) if args.extractor else default_evaluator()
        if (ext / "extractor.json").is_file():
            from ganserve.training.in_training import make_fid_evaluator
            evaluator = make_fid_evaluator(ext, cfg.eval_samples)
        else:
            log.warning("no extractor at %s: in-training FID is off", ext)

    stop = {"requested": False}

    def on_sigint(signum, frame):
        if stop["requested"]:
            raise KeyboardInterrupt
        stop["requested"] = True
        log.warning("stopping after this step and writing a checkpoint (Ctrl-C again to abort)")

    old = signal.signal(signal.SIGINT, on_sigint)
    from tqdm import tqdm

    bar = None if args.no_progress else tqdm(total=cfg.steps, unit="step", dynamic_ncols=True)

    def progress(p) -> None:
        if bar is None:
            if p.step % cfg.log_every == 0 or p.step == p.total_steps:
                log.info("step %d/%d  %.0f img/s  %s", p.step, p.total_steps, p.images_per_s,
                         " ".join(f"{k} {v:.3f}" for k, v in p.losses.items()))
            return
        bar.total = _projected_steps(p, cfg)
        bar.set_postfix({"img/s": f"{p.images_per_s:.0f}",
                         **{k: f"{v:.3f}" for k, v in p.losses.items()
                            if k in ("loss_G", "loss_D", "r1", "gp")}}, refresh=False)
        bar.update(p.step - bar.n)      # redraws at tqdm's own pace

    from tqdm.contrib.logging import logging_redirect_tqdm

    try:
        # log lines go above the bar instead of being glued onto it
        with logging_redirect_tqdm() if bar is not None else contextlib.nullcontext():
            result = run_plan(plan, progress=progress,
                              should_cancel=lambda: stop["requested"], evaluator=evaluator)
    finally:
        signal.signal(signal.SIGINT, old)
        if bar is not None:
            bar.close()
    if result.cancelled:
        print(f"stopped at step {result.step}/{cfg.steps}; checkpoint {result.checkpoint}\n"
              f"continue with: ganserve train {args.family} --out {run_dir} --resume")
        return 130
    if result.out_of_time:
        print(f"time budget of {cfg.time_budget_minutes:g} min reached at step "
              f"{result.step}/{cfg.steps}")
    print(f"samples: {RunFolder(run_dir).latest_samples} (and step-*.png beside it)\n"
          f"publish it: ganserve export {run_dir} --name NAME")
    print(f"trained {args.family} to step {result.step} in {result.wall_seconds:.0f} s "
          f"({result.images_per_s:.1f} images/s); run folder {run_dir}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ganserve.training.export import export_run

    path = export_run(args.run, args.to or models_dir(), args.name, args.version,
                      parity_tol=args.parity_tol, fp16=args.fp16)
    from ganserve.manifest import load_manifest

    m = load_manifest(path)
    parity = ", ".join(f"{k} {v:.2e}" for k, v in m.parity.items())
    print(f"exported {m.family} '{m.name}' version {m.version} to {path}\n"
          f"parity max |ORT - torch| (batch 1 and 7): {parity}")
    if m.parity_fp16:
        print("float16 graphs, max |fp16 - fp32|: "
              + ", ".join(f"{k} {v:.2e}" for k, v in m.parity_fp16.items()))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ganserve.evaluation.evaluate import evaluate, format_table
    from ganserve.manifest import in_store

    result = evaluate(in_store(args.model, models_dir()), n=args.n, extractor=args.extractor,
                      data=args.data,
                      psi=args.psi, write=not args.no_write, extras=not args.quick,
                      seed=args.seed, data_free=args.no_data)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(format_table(str(args.model), result))
    by_reason: dict[str, list[str]] = {}
    for metric, why in result["skipped"].items():
        by_reason.setdefault(why, []).append(metric)
    for why, metrics in by_reason.items():
        print(f"not computed ({why}): {', '.join(metrics)}")
    print(f"stored as {result['record']}" if result["record"]
          else "not stored (--no-write)")
    return 0


def cmd_train_encoder(args: argparse.Namespace) -> int:
    from ganserve.data import load_images
    from ganserve.manifest import in_store, load_manifest
    from ganserve.training.inversion import EncoderTraining, add_encoder, train_encoder

    vdir = in_store(args.model, models_dir())
    m = load_manifest(vdir)
    data = load_images(args.data, resolution=m.resolution, channels=m.channels,
                       limit=args.limit)
    opts = EncoderTraining(steps=args.steps, batch=args.batch, seed=args.seed)
    encoder, record = train_encoder(vdir, data, args.extractor or default_evaluator(), opts)
    parity = add_encoder(vdir, encoder, record)
    print(f"encoder of {m.name}/{m.version} ({record['latent']}) trained in "
          f"{record['seconds']:.0f} s, parity {parity:.2e}; final loss "
          + ", ".join(f"{k} {v}" for k, v in record["final_loss"].items()))
    return 0


def cmd_directions(args: argparse.Namespace) -> int:
    from ganserve.evaluation.directions import add_directions, compute
    from ganserve.manifest import in_store

    vdir = in_store(args.model, models_dir())
    extractor = args.extractor or default_evaluator()
    learn = _class_learner(vdir, Path(extractor), args.learn_steps)
    data = compute(vdir, extractor, n=args.n, k=args.principal, learn=learn)
    path = add_directions(vdir, data)
    classes = data["classes"] or {}
    flips = classes.get("flip", {})
    print(f"{len(data['principal'])} principal and {len(flips)} class directions "
          f"({classes.get('space', 'none')}) in {data['made']['seconds']:.0f} s, written to "
          f"{path}" + (f"; class flips at amount 1 (held-out samples): mean "
                       f"{sum(flips.values()) / len(flips):.0%}, lowest "
                       f"{min(flips, key=flips.get)} {min(flips.values()):.0%}"
                       if flips else ""))
    return 0


def _class_learner(vdir: Path, extractor: Path, steps: int) -> Any:
    """``compute``'s ``learn`` for ``ganserve directions``, or None for LDA boundaries: asked
    for (``--learn-steps 0``), a conditional model (its class is an input: nothing to learn),
    or, with a warning, no torch or no G_ema weights to learn through."""
    from ganserve.extras import training_installed
    from ganserve.manifest import load_manifest

    m = load_manifest(vdir)
    if steps <= 0 or m.conditional:
        return None
    why = ("torch is not installed (pip install 'ganserve[train]')" if not training_installed()
           else "the version has no G_ema weights" if "G_ema" not in m.weights else None)
    if why:
        log.warning("class directions by LDA boundaries, not learned: %s", why)
        return None
    from ganserve.training.class_directions import ClassDirectionTraining, learn_class_vectors

    return lambda latent, labels, names: learn_class_vectors(
        vdir, extractor, latent, labels, names, ClassDirectionTraining(steps=steps))


def cmd_build_evaluator(args: argparse.Namespace) -> int:
    from ganserve.training.classifier import build_evaluator

    out = args.out or default_evaluator()
    spec = build_evaluator(args.data, out, epochs=args.epochs, limit=args.limit)
    print(f"classifier test accuracy {spec.test_accuracy:.4f}\n"
          f"real-vs-real floor: {json.dumps(spec.floor)}\nwritten to {out}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:

    from ganserve.cli.generate import run

    written = run(args, Path(args.models_dir) if args.models_dir else models_dir())
    for path in written:
        print(path)
    return 0


def models_dir() -> Path:
    """The model store every command defaults to: GANSERVE_MODELS_DIR (the setting serve
    and the workers read), else ./var/models (a checkout's working store)."""
    from ganserve.settings import SharedSettings

    return _settings(SharedSettings).models_dir


def default_evaluator() -> Path:
    return models_dir() / "_evaluators" / "fashion-mnist"


def _settings(cls: Any) -> Any:
    """``cls()`` from the environment, or one CliError line naming each bad variable."""
    from pydantic import ValidationError

    try:
        return cls()
    except ValidationError as e:
        problems = "; ".join(f"GANSERVE_{'_'.join(map(str, err['loc'])).upper()}: {err['msg']}"
                             for err in e.errors())
        raise CliError(f"invalid settings: {problems}") from None


def cmd_serve(args: argparse.Namespace) -> int:
    if args.models_dir:
        os.environ["GANSERVE_MODELS_DIR"] = args.models_dir
    if args.grpc_port is not None:          # read by every worker process's settings
        os.environ["GANSERVE_GRPC_PORT"] = str(args.grpc_port)
    os.environ.setdefault("GANSERVE_GRPC_HOST", args.host)
    from ganserve.cli.announce import announce
    from ganserve.service.settings import get_settings

    settings = _settings(get_settings)
    _check_port(args.host, args.port)
    if settings.grpc_port:
        _check_port(settings.grpc_host, settings.grpc_port)
    _check_device(settings.device)
    worker = None
    if settings.embedded and settings.embedded_worker:
        from ganserve.cli.embedded_worker import EmbeddedWorker
        from ganserve.jobs.migrate import upgrade
        from ganserve.jobs.store import make_engine

        upgrade(make_engine(settings.resolved_database_url()))
        worker = EmbeddedWorker(settings.log_level)
        worker.start()
    jobs = _jobs_mode(settings, worker)
    announcer = announce(args.host, args.port, args.workers, jobs)
    try:
        _serve(args, worker)
    finally:
        announcer.set()
    return 0


def _check_device(device: str) -> None:
    """device=cuda without a working CUDA provider: one line, exit 1, before any worker
    process starts (each would refuse the same way)."""
    from ganserve.onnx_runtime import DeviceUnavailable, require_device

    try:
        require_device(device)
    except DeviceUnavailable as e:
        raise CliError(str(e)) from None


def _jobs_mode(settings: Settings, worker: EmbeddedWorker | None) -> str:
    """What runs jobs, for the ready line."""
    if worker is not None:
        return (f"embedded worker (pid {worker.proc.pid})" if worker.proc is not None else
                "the embedded worker starts once torch is installed")
    if not settings.embedded:
        return "the broker's workers (`ganserve worker`)"
    return "embedded mode, no worker (GANSERVE_EMBEDDED_WORKER=false)"


def _serve(args: argparse.Namespace, worker: EmbeddedWorker | None) -> None:
    from ganserve.service.server import serve

    if worker is None:
        serve(args.host, args.port, args.workers)
        return
    # uvicorn re-raises the signal it drained on (to die by it); with a worker to stop, it
    # raises this handler's exception instead, so the worker is stopped before exiting
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stop_serving)
    try:
        serve(args.host, args.port, args.workers)
    except _StopServing:
        pass
    finally:
        worker.stop()


class _StopServing(Exception):
    pass


def _stop_serving(signum: int, frame: Any) -> None:
    raise _StopServing


def cmd_seed_store(args: argparse.Namespace) -> int:
    from ganserve.model_store import seed

    source, store = Path(args.source), Path(args.to) if args.to else models_dir()
    if not source.is_dir():
        raise CliError(f"--from {source}: not a folder")
    copied = seed(source, store)
    print(f"seeded {store}: {', '.join(copied) if copied else 'nothing new'}")
    return 0


def cmd_healthcheck(args: argparse.Namespace) -> int:
    import urllib.error
    import urllib.request

    # no proxy: a health check asks this container, whatever HTTP_PROXY says
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(args.url, timeout=args.timeout) as r:
            status = r.status
    except urllib.error.HTTPError as e:
        status = e.code
    except (OSError, ValueError) as e:
        print(f"unhealthy: {args.url}: {getattr(e, 'reason', e)}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"unhealthy: {args.url} answered {status}", file=sys.stderr)
        return 1
    return 0


def cmd_alert_log(args: argparse.Namespace) -> int:
    from ganserve.cli.alert_log import serve

    server = serve(args.host, args.port)
    log.info("alert-log: receiving Alertmanager webhooks on http://%s:%d/ (GET /alerts)",
             args.host, args.port)
    # as a container's PID 1 a signal without a handler is ignored: stop on SIGTERM too
    signal.signal(signal.SIGTERM, _interrupt)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    server.server_close()
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def cmd_api_key(args: argparse.Namespace) -> int:
    from ganserve.service.auth import new_key

    key, entry = new_key(args.name, args.read_only)
    print(f"key (shown once; send as Authorization: Bearer <key>):\n  {key}\n"
          f"add to the \"keys\" list of GANSERVE_API_KEYS_FILE:\n  {json.dumps(entry)}\n"
          f"or, as a whole new keys file:\n  {json.dumps({'keys': [entry]})}")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    import importlib.util
    import shutil
    import tempfile

    for flag, var in (("models_dir", "GANSERVE_MODELS_DIR"), ("data_dir", "GANSERVE_DATA_DIR")):
        if getattr(args, flag):
            os.environ[var] = getattr(args, flag)
    if importlib.util.find_spec("torch") is None:
        raise CliError("the worker trains with torch, which is not installed: pip install "
                       "torch==2.13.0 && pip install 'ganserve[train]'")
    from ganserve.worker.settings import WorkerSettings

    settings = _settings(WorkerSettings)
    # the prefork children's metrics are merged by the main process: one folder per worker,
    # set before prometheus_client is imported
    own = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        own = tempfile.mkdtemp(prefix="ganserve-worker-prom-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = own
    try:
        from ganserve.worker.worker import run_worker

        queues = [q.strip() for q in args.queues.split(",") if q.strip()]
        try:
            run_worker(settings, queues, args.concurrency, args.log_level)
        except ValueError as e:
            raise CliError(str(e)) from None
    finally:
        if own:
            shutil.rmtree(own, ignore_errors=True)
    return 0


def _check_port(host: str, port: int) -> None:
    """Before loading any model: a port another process listens on is one line, not a
    traceback after the models loaded. (SO_REUSEADDR as uvicorn binds, so TIME_WAIT passes.)"""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            raise CliError(f"cannot listen on {host}:{port}: {e.strerror} (is another "
                           "ganserve running? pick another --port)") from None


COMMANDS = {"train": cmd_train, "serve": cmd_serve, "worker": cmd_worker,
            "api-key": cmd_api_key, "seed-store": cmd_seed_store,
            "healthcheck": cmd_healthcheck, "alert-log": cmd_alert_log,
            "generate": cmd_generate,
            "export": cmd_export, "evaluate": cmd_evaluate,
            "train-encoder": cmd_train_encoder, "directions": cmd_directions,
            "build-evaluator": cmd_build_evaluator}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parse(parser, argv)
    args.argv = argv
    if args.verbose:            # read as a setting here and by every process started below
        os.environ["GANSERVE_VERBOSE"] = "true"
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_libraries(args.verbose or os.environ.get("GANSERVE_VERBOSE", "").lower()
                    in ("1", "true", "yes", "on"))
    try:
        return COMMANDS[args.command](args)
    except Exception as e:
        if not isinstance(e, _expected_errors()):
            raise
        print(f"ganserve {args.command}: error: {e}", file=sys.stderr)
        return 1


# (module, class) of the errors that end a command with one line and exit 1
_ERRORS = [("ganserve.service.errors", "ServiceError"), ("ganserve.training.plan", "PlanError"),
           ("ganserve.cli.generate", "GenerateError"),
           ("ganserve.evaluation.evaluate", "EvaluationError"),
           ("ganserve.manifest", "ManifestError"),
           ("ganserve.data", "DataError"),
           ("ganserve.training.checkpoint", "CheckpointError"),
           ("ganserve.training.export", "ExportError"), ("ganserve.training.fp16", "Fp16Error"),
           ("ganserve.training.inversion", "InversionError"),
           ("ganserve.training.loop", "RunError")]


def _expected_errors() -> tuple[type[Exception], ...]:
    """Only errors that mean "the input is wrong", never a bare ValueError: a bug must show
    its traceback. Looked up among the modules already imported, never imported here:
    ``ganserve serve`` must not load torch (via training) into its supervisor for this."""
    found: list[type[Exception]] = [CliError]
    for module, name in _ERRORS:
        cls = getattr(sys.modules.get(module), name, None)
        if cls is not None:
            found.append(cls)
    return tuple(found)


if __name__ == "__main__":
    sys.exit(main())
