"""The training loop: a plain function a CLI or a job worker drives.

``train()`` takes a progress callback and a cancel check; it checkpoints every
``checkpoint_every`` steps and when cancelled, so a killed or cancelled run continues with
``resume=True``. On CPU, an interrupted-and-resumed run ends with exactly the weights of an
uninterrupted one: all randomness comes from the torch RNG, whose state is checkpointed.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ganserve.data import ImageData
from ganserve.images import save_png
from ganserve.jobs.specs import freeze_d_problem
from ganserve.training import losses
from ganserve.training.augment import Augment, make_augment
from ganserve.training.checkpoint import load_checkpoint, save_checkpoint
from ganserve.training.config import TrainConfig, train_config_to_dict
from ganserve.training.ema import ema_beta, update_ema
from ganserve.training.networks import build, config_to_dict
from ganserve.training.plots import plot_fid, plot_losses, read_jsonl
from ganserve.training.run_folder import RunFolder
from ganserve.training.sampling import inference_copy, progress_grid

log = logging.getLogger(__name__)



class RunError(Exception):
    pass


@dataclass
class Progress:
    step: int
    total_steps: int
    images_seen: int
    images_per_s: float
    elapsed_s: float
    losses: dict[str, float] = field(default_factory=dict)   # means over the last log window
    samples: Path | None = None       # the latest progress grid, once one was written


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    cancelled: bool
    checkpoint: Path
    wall_seconds: float         # whole run, across resumes, snapshots and checkpoints included
    train_seconds: float        # optimizer steps only: what images_per_s is measured over
    images_per_s: float
    last: dict[str, float] = field(default_factory=dict)
    out_of_time: bool = False   # ended by cfg.time_budget_minutes before cfg.steps


# An evaluator gets an inference-mode G (EMA weights) and returns metrics such as {"fid": x}.
Evaluator = Callable[[torch.nn.Module], dict[str, float]]


def host_info() -> dict[str, Any]:
    """The machine a training session runs on, so that images/s can be compared across runs."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name() if torch.cuda.is_initialized() else None
    return {"cpu": cpu, "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, **({"gpu": gpu} if gpu else {})}


def write_run_config(run_dir: Path, family: str, model_cfg: Any, train_cfg: TrainConfig,
                     data: ImageData, preset: str, command: str,
                     data_path: str | None = None,
                     resumes: list[str] | None = None,
                     hosts: list[dict[str, Any]] | None = None,
                     parent: str | None = None) -> dict[str, Any]:
    cfg = {
        "family": family,
        "parent": parent,               # NAME/VERSION this run fine-tunes, or None
        "preset": preset,
        "model": config_to_dict(model_cfg),
        "train": train_config_to_dict(train_cfg),
        "data": {"path": data_path, "source": data.source, "images": len(data),
                 "resolution": data.resolution,
                 "channels": data.channels, "class_names": list(data.class_names)},
        "command": command,
        "resumes": list(resumes or []),
        # one entry per session: the first run, then each --resume
        "hosts": list(hosts or []),
    }
    RunFolder(run_dir).write_config(cfg)
    return cfg


def read_run_config(run_dir: Path) -> dict[str, Any]:
    cfg = RunFolder(Path(run_dir)).read_config()
    if cfg is None:
        raise RunError(f"{run_dir}: not a training run (no {RunFolder(Path(run_dir)).config.name})")
    return cfg


def _truncate_metrics(path: Path, step: int) -> None:
    """After a kill, drop metric lines logged past the checkpoint we resume from."""
    rows = [r for r in read_jsonl(path) if r.get("step", 0) <= step]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@dataclass
class Nets:
    """What one training step updates."""
    G: torch.nn.Module
    D: torch.nn.Module
    opt_G: torch.optim.Optimizer
    opt_D: torch.optim.Optimizer
    augment: Augment | None = None      # D's view of every image, real and fake
    d_frozen: tuple[torch.nn.Parameter, ...] = ()    # Freeze-D: never trained

    def d_sees(self, x: torch.Tensor) -> torch.Tensor:
        return self.augment(x) if self.augment is not None else x

    def d_trainable(self, on: bool) -> None:
        self.D.requires_grad_(on)
        for p in self.d_frozen:
            p.requires_grad_(False)


@dataclass
class Batches:
    """Where a step draws its real images (uint8 NCHW) and labels from. They stay in host
    memory; each batch goes to ``device``. Every random draw is made on the CPU RNG (the one
    a checkpoint keeps) and moved, so a run's draws are the same on any device."""
    images_u8: torch.Tensor
    labels: torch.Tensor | None
    batch: int
    num_classes: int            # K; 0 for unconditional families
    # the classes the data holds, when fewer than K (fine-tuning a conditional model on some
    # of its classes): fakes are asked for these only, or G would be trained on classes D
    # has no real images of, and the tuned classes would get a fraction of the updates
    present: torch.Tensor | None = None
    device: torch.device = torch.device("cpu")

    def fake_classes(self, B: int) -> torch.Tensor | None:
        if not self.num_classes:
            return None
        if self.present is None:
            return torch.randint(self.num_classes, (B,)).to(self.device)
        return self.present[torch.randint(len(self.present), (B,))].to(self.device)

    def z(self, B: int, z_dim: int) -> torch.Tensor:
        return torch.randn(B, z_dim).to(self.device)

    def real(self, B: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """B random real images in [-1, 1] and their labels (None: unconditional)."""
        idx = torch.randint(len(self.images_u8), (B,))
        real = self.images_u8[idx].to(self.device).float() * (2 / 255) - 1
        labels = (self.labels[idx].to(self.device)
                  if (self.labels is not None and self.num_classes) else None)
        return real, labels


def d_step(nets: Nets, cfg: TrainConfig, data: Batches, step: int,
           amp: Callable[[], Any], aux: bool) -> dict[str, float]:
    """One discriminator update: the loss, the AC-GAN term, the gradient penalty or lazy R1.
    (The order of the random draws is part of resume's bit-exactness: keep it.)"""
    G, D, B, K = nets.G, nets.D, data.batch, data.num_classes
    real, c_real = data.real(B)
    z = data.z(B, G.z_dim)
    c_fake = data.fake_classes(B)
    with torch.no_grad(), amp():
        fake = G(z, c_fake)
    real, fake = nets.d_sees(real), nets.d_sees(fake)
    with amp():
        if aux:
            d_real, cls_real = D(real, c_real, return_aux=True)
            cls_real = cls_real.float()
        else:
            d_real = D(real, c_real)
        d_real, d_fake = d_real.float(), D(fake, c_fake).float()
    loss_D = losses.d_loss(cfg.loss, d_real, d_fake)
    stats = {"loss_D": loss_D.item(), "D_real": d_real.mean().item(),
             "D_fake": d_fake.mean().item()}
    if aux:     # AC-GAN: D learns to name the class of real images
        aux_d = F.cross_entropy(cls_real, c_real)
        loss_D = loss_D + cfg.aux_class_weight * aux_d
        stats["aux_D"] = aux_d.item()
    if cfg.loss == "wgan-gp":
        gp = losses.gradient_penalty(D, real, fake, c_fake if K else None)
        loss_D = loss_D + cfg.gp_weight * gp
        stats["gp"] = gp.item()
    if cfg.r1_gamma > 0 and step % cfg.r1_interval == 0:
        r1 = losses.r1_penalty(D, real, c_real)
        loss_D = loss_D + r1 * (cfg.r1_gamma / 2) * cfg.r1_interval
        stats["r1"] = r1.item()
    nets.opt_D.zero_grad(set_to_none=True)
    loss_D.backward()
    nets.opt_D.step()
    return stats


def g_step(nets: Nets, cfg: TrainConfig, data: Batches, amp: Callable[[], Any],
           aux: bool) -> dict[str, float]:
    """One generator update against the frozen discriminator."""
    G, D, B = nets.G, nets.D, data.batch
    stats: dict[str, float] = {}
    z = data.z(B, G.z_dim)
    c_fake = data.fake_classes(B)
    nets.d_trainable(False)
    if aux:     # ... and G learns to make fakes D names as the requested class
        with amp():
            d_out, cls_fake = D(nets.d_sees(G(z, c_fake)), c_fake, return_aux=True)
        aux_g = F.cross_entropy(cls_fake.float(), c_fake)
        loss_G = losses.g_loss(cfg.loss, d_out.float()) + cfg.aux_class_weight * aux_g
        stats["aux_G"] = aux_g.item()
    else:
        with amp():
            d_out = D(nets.d_sees(G(z, c_fake)), c_fake)
        loss_G = losses.g_loss(cfg.loss, d_out.float())
    nets.opt_G.zero_grad(set_to_none=True)
    loss_G.backward()
    nets.opt_G.step()
    nets.d_trainable(True)
    stats["loss_G"] = loss_G.item()
    return stats


class _Run:
    """One training run's state (networks, optimizers, counters) and the things it writes.
    ``train`` drives it; the pieces are methods so each fits on a screen."""

    def __init__(self, run_dir: Path, family: str, model_cfg: Any, cfg: TrainConfig,
                 data: ImageData, resume: bool, evaluator: Evaluator | None,
                 init_from: Path | None = None):
        _check_run(run_dir, family, model_cfg, cfg, data, resume)
        self.run_dir, self.cfg, self.evaluator = run_dir, cfg, evaluator
        self.folder = RunFolder(run_dir)
        self.ckpt_path = self.folder.checkpoint
        torch.manual_seed(cfg.seed)
        self.device = training_device(cfg.device)
        G, D = (net.to(self.device) for net in build(family, model_cfg))
        self.G_ema = copy.deepcopy(G).eval().requires_grad_(False)
        frozen = _frozen_d_parameters(D, cfg.freeze_d)
        self.nets = Nets(G, D, _adam(G, cfg.lr_g, cfg), _adam(D, cfg.lr_d, cfg),
                         make_augment(cfg.augment), frozen)
        self.nets.d_trainable(True)
        self.batches = Batches(torch.from_numpy(data.images),
                               torch.from_numpy(data.labels) if data.labels is not None
                               else None, cfg.batch, model_cfg.num_classes,
                               _present_classes(data, model_cfg.num_classes), self.device)
        self.step, self.images_seen, self.wall, self.busy = 0, 0, 0.0, 0.0
        self.folder.create()
        if resume:
            self._restore()
        elif init_from is not None:
            self._init_weights(init_from)
        self.last_snap = {"step": -1, "evaluated": False}
        self.last: dict[str, float] = {}
        self.ips = 0.0
        self.run_config: dict[str, Any] = {}

    def _restore(self) -> None:
        state = load_checkpoint(self.ckpt_path)
        n = self.nets
        for module, key in ((n.G, "G"), (n.D, "D"), (self.G_ema, "G_ema"), (n.opt_G, "opt_G"),
                            (n.opt_D, "opt_D")):
            module.load_state_dict(state[key])
        self.step, self.images_seen = int(state["step"]), int(state["images_seen"])
        self.wall = float(state.get("wall_seconds", 0.0))
        self.busy = float(state.get("train_seconds", self.wall))
        torch.set_rng_state(state["rng"])
        _truncate_metrics(self.folder.metrics, self.step)
        log.info("resumed %s at step %d", self.run_dir, self.step)

    def _init_weights(self, version_dir: Path) -> None:
        """Fine-tuning: start from a published version's G, D and G-EMA (not its optimizer
        state, which the store does not keep)."""
        from safetensors.torch import load_file

        from ganserve.manifest import load_manifest

        weights = load_manifest(version_dir).weights
        for module, role in ((self.nets.G, "G"), (self.nets.D, "D"), (self.G_ema, "G_ema")):
            module.load_state_dict(load_file(str(version_dir / weights[role])))
        log.info("starting from the weights of %s", version_dir)

    def checkpoint(self) -> Path:
        n = self.nets
        return save_checkpoint(self.ckpt_path, {
            "G": n.G.state_dict(), "D": n.D.state_dict(), "G_ema": self.G_ema.state_dict(),
            "opt_G": n.opt_G.state_dict(), "opt_D": n.opt_D.state_dict(),
            "step": self.step, "images_seen": self.images_seen, "wall_seconds": self.wall,
            "train_seconds": self.busy,
            "rng": torch.get_rng_state(), "config": json.dumps(self.run_config),
        })

    def snapshot(self, final: bool = False) -> None:
        cfg, step, folder = self.cfg, self.step, self.folder
        # samples, FID and the grids run on the CPU, as the exported model will
        G_inf = inference_copy(self.G_ema if self.device.type == "cpu"
                               else copy.deepcopy(self.G_ema).cpu())
        grid = progress_grid(G_inf, cfg.sample_seeds)
        save_png(grid, folder.samples_at(step))
        save_png(grid, folder.latest_samples)
        plot_losses(folder.metrics, folder.loss_plot)
        evaluate = self.evaluator is not None and cfg.eval_every and (
            step % cfg.eval_every == 0 or step == cfg.steps or final)
        self.last_snap.update(step=step, evaluated=bool(evaluate))
        if evaluate:
            result = self.evaluator(G_inf)
            with open(folder.metrics, "a") as f:
                f.write(json.dumps({"step": step, **result}) + "\n")
            plot_fid(folder.metrics, folder.fid_plot, result.get("fid_floor"))
            log.info("step %d: %s", step, result)

    def log_row(self, window: dict[str, list[float]], ips: float,
                progress: Callable[[Progress], None] | None) -> None:
        self.last = _means(window)
        row = {"step": self.step, "images_seen": self.images_seen,
               "images_per_s": round(ips, 2), "wall_seconds": round(self.wall, 2),
               **{k: round(v, 6) for k, v in self.last.items()}}
        with open(self.folder.metrics, "a") as f:
            f.write(json.dumps(row) + "\n")
        self.ips = ips
        self.report(progress)

    def report(self, progress: Callable[[Progress], None] | None,
               live: tuple[dict[str, list[float]], float] | None = None) -> None:
        """``live``: the running log window and its images/s, for the steps between log rows
        (before the first row there is no other measure of speed or loss)."""
        if progress is None:
            return
        losses, ips = self.last, self.ips
        if live is not None and live[0]:
            window, window_ips = live
            losses = _means(window)
            ips = ips or window_ips
        latest = self.folder.latest_samples
        progress(Progress(self.step, self.cfg.steps, self.images_seen, ips, self.wall,
                          losses, latest if latest.is_file() else None))

    def one_step(self, amp: Callable[[], Any], aux: bool) -> dict[str, float]:
        cfg, B = self.cfg, self.cfg.batch
        stats = d_step(self.nets, cfg, self.batches, self.step, amp, aux)
        stats |= g_step(self.nets, cfg, self.batches, amp, aux)
        self.images_seen += B
        self.step += 1
        update_ema(self.G_ema, self.nets.G,
                   ema_beta(B, self.images_seen, cfg.ema_half_life_images, cfg.ema_rampup))
        if not all(np.isfinite(v) for v in stats.values()):
            self.checkpoint()
            raise RunError(f"step {self.step}: non-finite loss {stats}; checkpoint kept at "
                           f"{self.ckpt_path} (lower the learning rate and --resume)")
        return stats

    # The loop itself: stop conditions, a step, then what is due at this step (log row,
    # samples and FID, checkpoint). Kept in one place so the order reads top to bottom.
    def loop(self, progress: Callable[[Progress], None] | None,
             should_cancel: Callable[[], bool] | None) -> tuple[bool, bool]:
        """Run until the last step, the time budget or a stop; -> (cancelled, out_of_time)."""
        cfg = self.cfg
        bf16, aux = cfg.precision == "bf16", cfg.aux_class_weight > 0

        def amp() -> torch.autocast:
            """bf16 autocast around the G/D passes when asked; R1, Adam stay fp32."""
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16,
                                  enabled=bf16)

        window: dict[str, list[float]] = {}
        win_t, win_imgs = time.perf_counter(), 0
        started, wall_at_start = time.perf_counter(), self.wall
        self.nets.G.train()
        self.nets.D.train()
        budget_s = cfg.time_budget_minutes * 60
        while self.step < cfg.steps:
            if budget_s and wall_at_start + (time.perf_counter() - started) >= budget_s:
                log.info("time budget of %.1f min reached at step %d/%d: finishing the run",
                         cfg.time_budget_minutes, self.step, cfg.steps)
                return False, True
            if should_cancel is not None and should_cancel():
                return True, False
            t_step = time.perf_counter()
            stats = self.one_step(amp, aux)
            self.busy += time.perf_counter() - t_step
            for k, v in stats.items():
                window.setdefault(k, []).append(v)
            win_imgs += cfg.batch
            self.wall = wall_at_start + (time.perf_counter() - started)
            if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                now = time.perf_counter()
                self.log_row(window, win_imgs / max(now - win_t, 1e-9), progress)
                window, win_t, win_imgs = {}, now, 0
            else:                           # every step, with the running window's numbers
                elapsed = max(time.perf_counter() - win_t, 1e-9)
                self.report(progress, (window, win_imgs / elapsed))
            if self.step % cfg.sample_every == 0 or (cfg.eval_every
                                                     and self.step % cfg.eval_every == 0):
                self.snapshot()
            if self.step % cfg.checkpoint_every == 0:
                self.checkpoint()
        return False, False

    def finish(self, cancelled: bool, out_of_time: bool, started: float,
               wall_at_start: float) -> TrainResult:
        self.wall = wall_at_start + (time.perf_counter() - started)
        path = self.checkpoint()
        cfg, snap = self.cfg, self.last_snap
        if not cancelled and (snap["step"] != self.step
                              or (self.evaluator is not None and cfg.eval_every
                                  and not snap["evaluated"])):
            self.snapshot(final=True)
        ips = self.images_seen / self.busy if self.busy > 0 else 0.0
        log.info("%s at step %d/%d (%.0f s, %.1f images/s)",
                 "cancelled" if cancelled else "finished", self.step, cfg.steps, self.wall, ips)
        return TrainResult(self.run_dir, self.step, cancelled, path, self.wall, self.busy, ips,
                           self.last, out_of_time)


def training_device(name: str) -> torch.device:
    """``cpu``, ``cuda`` (refused, in one line, where torch sees no GPU) or ``auto``."""
    if name == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if name == "cuda":
        built = torch.version.cuda
        raise RunError(f"device=cuda, but torch {torch.__version__} sees no GPU ("
                       + (f"built for CUDA {built}: no device or driver visible)" if built
                          else "a CPU-only build)"))
    return torch.device("cpu")


def _means(window: dict[str, list[float]]) -> dict[str, float]:
    """Each loss's mean over a log window."""
    return {k: float(np.mean(v)) for k, v in window.items()}


def _present_classes(data: ImageData, num_classes: int) -> torch.Tensor | None:
    """The label values of ``data`` when it holds fewer than all ``num_classes``."""
    if not num_classes or data.labels is None:
        return None
    present = np.unique(data.labels)
    return torch.from_numpy(present) if len(present) < num_classes else None


def _frozen_d_parameters(D: torch.nn.Module, n: int) -> tuple[torch.nn.Parameter, ...]:
    """Freeze-D (Mo et al. 2020): the parameters of D's first ``n`` image-side blocks."""
    problem = freeze_d_problem(n, d_blocks(D), type(D).__module__)
    if problem:
        raise RunError(problem)
    return tuple(p for b in (D.image_side_blocks() if n else [])[:n] for p in b.parameters())


def d_blocks(D: torch.nn.Module) -> int:
    """The discriminator's image-side blocks, which Freeze-D counts (0: it names none)."""
    blocks = getattr(D, "image_side_blocks", None)
    return len(blocks()) if blocks is not None else 0


def _adam(module: torch.nn.Module, lr: float, cfg: TrainConfig) -> torch.optim.Adam:
    return torch.optim.Adam(module.parameters(), lr=lr, betas=cfg.betas, eps=cfg.adam_eps)


def _check_run(run_dir: Path, family: str, model_cfg: Any, cfg: TrainConfig,
               data: ImageData, resume: bool) -> None:
    if model_cfg.num_classes and data.labels is None:
        raise RunError(f"{family} is conditional: its data needs labels "
                       f"({data.source} has none)")
    if (data.resolution, data.channels) != (model_cfg.resolution, model_cfg.channels):
        raise RunError(f"data is {data.channels}x{data.resolution}px, model expects "
                       f"{model_cfg.channels}x{model_cfg.resolution}px")
    if not resume and RunFolder(run_dir).holds_run():
        raise RunError(f"{run_dir} already holds a run; pass --resume to continue it "
                       "or choose another --out")
    if cfg.aux_class_weight > 0 and not getattr(model_cfg, "aux_classifier", False):
        raise RunError("aux_class_weight > 0 needs a cgan with aux_classifier=True")


def train(run_dir: str | Path, family: str, model_cfg: Any, cfg: TrainConfig,
          data: ImageData, *, resume: bool = False, preset: str = "", command: str = "",
          data_path: str | None = None, resumes: list[str] | None = None,
          progress: Callable[[Progress], None] | None = None,
          should_cancel: Callable[[], bool] | None = None,
          evaluator: Evaluator | None = None, init_from: Path | None = None,
          parent: str | None = None) -> TrainResult:
    """Train ``family`` on ``data`` into ``run_dir`` for ``cfg.steps`` steps in total.

    ``progress`` is called at each log row; ``should_cancel`` is checked before every step
    (a stop writes a checkpoint and returns ``cancelled``); ``evaluator`` scores G-EMA at
    the FID points."""
    run_dir = Path(run_dir)
    run = _Run(run_dir, family, model_cfg, cfg, data, resume, evaluator, init_from)
    previous = read_run_config(run_dir) if resume else {}
    run.run_config = write_run_config(run_dir, family, model_cfg, cfg, data, preset, command,
                                      data_path, resumes,
                                      previous.get("hosts", []) + [host_info()],
                                      previous.get("parent", parent))
    started, wall_at_start = time.perf_counter(), run.wall
    try:
        cancelled, out_of_time = run.loop(progress, should_cancel)
        return run.finish(cancelled, out_of_time, started, wall_at_start)
    finally:
        if run.device.type == "cuda":   # a worker process lives on: give the memory back
            del run
            torch.cuda.empty_cache()
