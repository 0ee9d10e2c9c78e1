"""Run-folder plots (matplotlib, headless): loss curves and the FID-over-training curve."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:      # a line cut short by a kill
                continue
    return rows


def plot_losses(metrics_path: Path, out: Path) -> Path | None:
    rows = [r for r in read_jsonl(metrics_path) if "loss_G" in r]
    if not rows:
        return None
    steps = [r["step"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
    for key in ("loss_G", "loss_D", "r1", "gp"):
        vals = [r.get(key) for r in rows]
        if any(v is not None for v in vals):
            ax.plot(steps, vals, label=key, linewidth=1)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def plot_fid(metrics_path: Path, out: Path, floor: float | None = None) -> Path | None:
    rows = [r for r in read_jsonl(metrics_path) if "fid" in r]
    if not rows:
        return None
    series = {"FID": ([r["step"] for r in rows], [r["fid"] for r in rows])}
    return plot_fid_curves(series, out, floor, xlabel="step")


def plot_fid_curves(series: dict[str, tuple[list[float], list[float]]], out: Path,
                    floor: float | None = None, xlabel: str = "step",
                    ylabel: str = "FID (classifier features)") -> Path:
    """One log-scale FID curve per series, with the real-vs-real floor as a dashed line."""
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
    for label, (xs, ys) in series.items():
        ax.plot(xs, ys, marker="o", label=label)
    if floor is not None:
        ax.axhline(floor, color="grey", linestyle="--", label="real-vs-real floor")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out
