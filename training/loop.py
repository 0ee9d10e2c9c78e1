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
from training import losses
from training.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from training.config import TrainConfig, train_config_to_dict
from training.ema import ema_beta, update_ema
from training.networks import build, config_to_dict
from training.plots import plot_fid, plot_losses, read_jsonl
from training.sampling import inference_copy, progress_grid

log = logging.getLogger(__name__)

RUN_CONFIG = "config.json"
METRICS = "metrics.jsonl"


class RunError(Exception):
    pass


@dataclass
class Progress:
    step: int
    total_steps: int
    images_seen: int
    images_per_s: float
    elapsed_s: float
    losses: dict[str, float] = field(default_factory=dict)


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
    return {"cpu": cpu, "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__}


def write_run_config(run_dir: Path, family: str, model_cfg: Any, train_cfg: TrainConfig,
                     data: ImageData, preset: str, command: str,
                     data_path: str | None = None,
                     resumes: list[str] | None = None,
                     hosts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    cfg = {
        "family": family,
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
    (run_dir / RUN_CONFIG).write_text(json.dumps(cfg, indent=2) + "\n")
    return cfg


def read_run_config(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / RUN_CONFIG
    if not path.is_file():
        raise RunError(f"{run_dir}: not a training run (no {RUN_CONFIG})")
    return json.loads(path.read_text())


def _truncate_metrics(path: Path, step: int) -> None:
    """After a kill, drop metric lines logged past the checkpoint we resume from."""
    rows = [r for r in read_jsonl(path) if r.get("step", 0) <= step]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def train(run_dir: str | Path, family: str, model_cfg: Any, cfg: TrainConfig,
          data: ImageData, *, resume: bool = False, preset: str = "", command: str = "",
          data_path: str | None = None, resumes: list[str] | None = None,
          progress: Callable[[Progress], None] | None = None,
          should_cancel: Callable[[], bool] | None = None,
          evaluator: Evaluator | None = None) -> TrainResult:
    """Train ``family`` on ``data`` into ``run_dir`` for ``cfg.steps`` steps in total."""
    run_dir = Path(run_dir)
    ckpt_path = run_dir / CHECKPOINT_NAME
    if model_cfg.num_classes and data.labels is None:
        raise RunError(f"{family} is conditional: its data needs labels "
                       f"({data.source} has none)")
    if (data.resolution, data.channels) != (model_cfg.resolution, model_cfg.channels):
        raise RunError(f"data is {data.channels}x{data.resolution}px, model expects "
                       f"{model_cfg.channels}x{model_cfg.resolution}px")
    if not resume and ckpt_path.exists():
        raise RunError(f"{run_dir} already holds a run; pass --resume to continue it "
                       "or choose another --out")

    torch.manual_seed(cfg.seed)
    G, D = build(family, model_cfg)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    opt_G = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=cfg.betas, eps=cfg.adam_eps)
    opt_D = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=cfg.betas, eps=cfg.adam_eps)
    step, images_seen, wall, busy = 0, 0, 0.0, 0.0
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "samples").mkdir(exist_ok=True)
    if resume:
        state = load_checkpoint(ckpt_path)
        G.load_state_dict(state["G"])
        D.load_state_dict(state["D"])
        G_ema.load_state_dict(state["G_ema"])
        opt_G.load_state_dict(state["opt_G"])
        opt_D.load_state_dict(state["opt_D"])
        step, images_seen = int(state["step"]), int(state["images_seen"])
        wall = float(state.get("wall_seconds", 0.0))
        busy = float(state.get("train_seconds", wall))
        torch.set_rng_state(state["rng"])
        _truncate_metrics(run_dir / METRICS, step)
        log.info("resumed %s at step %d", run_dir, step)
    hosts = read_run_config(run_dir).get("hosts", []) if resume else []
    run_config = write_run_config(run_dir, family, model_cfg, cfg, data, preset, command,
                                  data_path, resumes, hosts + [host_info()])

    def checkpoint() -> Path:
        return save_checkpoint(ckpt_path, {
            "G": G.state_dict(), "D": D.state_dict(), "G_ema": G_ema.state_dict(),
            "opt_G": opt_G.state_dict(), "opt_D": opt_D.state_dict(),
            "step": step, "images_seen": images_seen, "wall_seconds": wall,
            "train_seconds": busy,
            "rng": torch.get_rng_state(), "config": json.dumps(run_config),
        })

    last_snap = {"step": -1, "evaluated": False}

    def snapshot(final: bool = False) -> None:
        G_inf = inference_copy(G_ema)
        grid = progress_grid(G_inf, cfg.sample_seeds)
        save_png(grid, run_dir / "samples" / f"step-{step:07d}.png")
        save_png(grid, run_dir / "samples" / "latest.png")
        plot_losses(run_dir / METRICS, run_dir / "loss.png")
        evaluate = evaluator is not None and cfg.eval_every and (
            step % cfg.eval_every == 0 or step == cfg.steps or final)
        last_snap.update(step=step, evaluated=bool(evaluate))
        if evaluate:
            result = evaluator(G_inf)
            with open(run_dir / METRICS, "a") as f:
                f.write(json.dumps({"step": step, **result}) + "\n")
            plot_fid(run_dir / METRICS, run_dir / "fid.png", result.get("fid_floor"))
            log.info("step %d: %s", step, result)

    images_u8 = torch.from_numpy(data.images)
    labels = torch.from_numpy(data.labels) if data.labels is not None else None
    n_data, B, K = len(images_u8), cfg.batch, model_cfg.num_classes
    aux = cfg.aux_class_weight > 0
    if aux and not getattr(model_cfg, "aux_classifier", False):
        raise RunError("aux_class_weight > 0 needs a cgan with aux_classifier=True")
    bf16 = cfg.precision == "bf16"

    def amp() -> torch.autocast:
        """bf16 autocast around the G/D passes when asked; R1 and the optimizers stay fp32."""
        return torch.autocast(device_type="cpu", dtype=torch.bfloat16, enabled=bf16)

    window: dict[str, list[float]] = {}
    win_t, win_imgs, last = time.perf_counter(), 0, {}
    started = time.perf_counter()
    wall_at_start = wall
    cancelled = False
    G.train()
    D.train()

    budget_s = cfg.time_budget_minutes * 60
    out_of_time = False
    while step < cfg.steps:
        if budget_s and wall_at_start + (time.perf_counter() - started) >= budget_s:
            out_of_time = True
            log.info("time budget of %.1f min reached at step %d/%d: finishing the run",
                     cfg.time_budget_minutes, step, cfg.steps)
            break
        if should_cancel is not None and should_cancel():
            cancelled = True
            break
        t_step = time.perf_counter()
        # ---- D step
        idx = torch.randint(n_data, (B,))
        real = images_u8[idx].float() * (2 / 255) - 1
        c_real = labels[idx] if (labels is not None and K) else None
        z = torch.randn(B, G.z_dim)
        c_fake = torch.randint(K, (B,)) if K else None
        with torch.no_grad(), amp():
            fake = G(z, c_fake)
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
        opt_D.zero_grad(set_to_none=True)
        loss_D.backward()
        opt_D.step()
        # ---- G step
        z = torch.randn(B, G.z_dim)
        c_fake = torch.randint(K, (B,)) if K else None
        D.requires_grad_(False)
        if aux:     # ... and G learns to make fakes D names as the requested class
            with amp():
                d_out, cls_fake = D(G(z, c_fake), c_fake, return_aux=True)
            aux_g = F.cross_entropy(cls_fake.float(), c_fake)
            loss_G = losses.g_loss(cfg.loss, d_out.float()) + cfg.aux_class_weight * aux_g
            stats["aux_G"] = aux_g.item()
        else:
            with amp():
                d_out = D(G(z, c_fake), c_fake)
            loss_G = losses.g_loss(cfg.loss, d_out.float())
        opt_G.zero_grad(set_to_none=True)
        loss_G.backward()
        opt_G.step()
        D.requires_grad_(True)
        stats["loss_G"] = loss_G.item()
        # ---- EMA and bookkeeping
        images_seen += B
        step += 1
        update_ema(G_ema, G, ema_beta(B, images_seen, cfg.ema_half_life_images, cfg.ema_rampup))
        busy += time.perf_counter() - t_step
        for k, v in stats.items():
            window.setdefault(k, []).append(v)
        win_imgs += B
        if not all(np.isfinite(v) for v in stats.values()):
            checkpoint()
            raise RunError(f"step {step}: non-finite loss {stats}; checkpoint kept at "
                           f"{ckpt_path} (lower the learning rate and --resume)")
        if step % cfg.log_every == 0 or step == cfg.steps:
            now = time.perf_counter()
            ips = win_imgs / max(now - win_t, 1e-9)
            wall = wall_at_start + (now - started)
            last = {k: float(np.mean(v)) for k, v in window.items()}
            row = {"step": step, "images_seen": images_seen, "images_per_s": round(ips, 2),
                   "wall_seconds": round(wall, 2), **{k: round(v, 6) for k, v in last.items()}}
            with open(run_dir / METRICS, "a") as f:
                f.write(json.dumps(row) + "\n")
            if progress is not None:
                progress(Progress(step, cfg.steps, images_seen, ips, wall, last))
            window, win_t, win_imgs = {}, now, 0
        if step % cfg.sample_every == 0 or (cfg.eval_every and step % cfg.eval_every == 0):
            snapshot()
        if step % cfg.checkpoint_every == 0:
            wall = wall_at_start + (time.perf_counter() - started)
            checkpoint()

    wall = wall_at_start + (time.perf_counter() - started)
    path = checkpoint()
    if not cancelled and (last_snap["step"] != step
                          or (evaluator is not None and cfg.eval_every
                              and not last_snap["evaluated"])):
        snapshot(final=True)
    ips = images_seen / busy if busy > 0 else 0.0
    log.info("%s at step %d/%d (%.0f s, %.1f images/s)",
             "cancelled" if cancelled else "finished", step, cfg.steps, wall, ips)
    return TrainResult(run_dir, step, cancelled, path, wall, busy, ips, last, out_of_time)
