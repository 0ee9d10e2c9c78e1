"""Export a training run to the model store: ``MODELS_DIR/NAME/VERSION/``.

Writes the ONNX graphs (opset 17, dynamic batch axis), the weights a fine-tune starts from
(G, D, G-EMA as safetensors) and ``manifest.json``. Before anything is published, ONNX Runtime
must reproduce PyTorch eager on the same inputs (batch 1 and 7) within ``parity_tol``; the
version folder appears atomically (written under a temp name, then renamed), so a reader of
the store never sees half a version.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch
from safetensors.torch import save_file

import ganserve
from ganserve.families import family as family_spec
from ganserve.manifest import (
    NAME_RE,
    VERSION_RE,
    GraphSpec,
    Manifest,
    TensorSpec,
    TrainingInfo,
    hash_files,
    next_version,
    write_manifest,
)
from ganserve.model_store import check_free, model_lock, place_version
from ganserve.training.checkpoint import load_checkpoint
from ganserve.training.fp16 import add_fp16_graphs
from ganserve.training.loop import d_blocks, read_run_config
from ganserve.training.networks import build, config_from_dict, config_to_dict
from ganserve.training.networks.common import OnnxGraph
from ganserve.training.plots import read_jsonl
from ganserve.training.run_folder import RunFolder
from ganserve.training.sampling import inference_copy

log = logging.getLogger(__name__)
OPSET = 17
PARITY_BATCHES = (1, 7)


class ExportError(Exception):
    pass


def export_graph(g: OnnxGraph, path: Path, opset: int = OPSET) -> None:
    """TorchScript-based exporter: ~10x faster than the dynamo one here, same parity."""
    with torch.no_grad():
        example = g.make_inputs(2)
    axes = {n: {0: "batch"} for n in g.input_names + g.output_names}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(g.module, example, str(path), input_names=g.input_names,
                          output_names=g.output_names, opset_version=opset, dynamo=False,
                          dynamic_axes=axes, do_constant_folding=True)


def check_parity(g: OnnxGraph, path: Path, batches=PARITY_BATCHES) -> float:
    """Max |ORT - eager| over the given batch sizes and every output."""
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for b in batches:
        with torch.no_grad():
            inputs = g.make_inputs(b)
            refs = g.module(*inputs)
        refs = [t.numpy() for t in (refs if isinstance(refs, tuple) else (refs,))]
        feeds = {n: t.numpy() for n, t in zip(g.input_names, inputs)}
        for name, out, ref in zip(g.output_names, sess.run(None, feeds), refs, strict=True):
            if out.shape != ref.shape:
                raise ExportError(f"{g.name}: ONNX output {name} shape {out.shape} != eager "
                                  f"{ref.shape} at batch {b}")
            worst = max(worst, float(np.abs(out - ref).max()))
    return worst


def graph_spec(g: OnnxGraph, file: str) -> GraphSpec:
    ins = [TensorSpec(name=n, shape=s, dtype=d, value_range=r,
                      description=g.descriptions.get(n, ""))
           for n, s, d, r in zip(g.input_names, g.input_shapes, g.input_dtypes, g.input_ranges)]
    kinds = g.output_range_kinds or ["bounded" if r else None for r in g.output_ranges]
    outs = [TensorSpec(name=n, shape=s, value_range=r, range_kind=k,
                       description=g.descriptions.get(n, ""))
            for n, s, r, k in zip(g.output_names, g.output_shapes, g.output_ranges, kinds)]
    return GraphSpec(file=file, inputs=ins, outputs=outs)


def fid_curve(run_dir: Path, last_step: int) -> list[dict]:
    """The in-training FID points up to the exported step, so the manifest keeps the curve
    after the run folder is gone (a later resume may have re-logged some steps: last wins)."""
    points: dict[int, dict] = {}
    for r in read_jsonl(RunFolder(run_dir).metrics):
        if "fid" in r and r.get("step", last_step + 1) <= last_step:
            points[int(r["step"])] = {"step": int(r["step"]), "fid": r["fid"],
                                      "fid_n": r.get("fid_n")}
    return [points[k] for k in sorted(points)]


def _contiguous(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().clone() for k, v in sd.items()}


def export_run(run_dir: str | Path, models_dir: str | Path, name: str,
               version: str | None = None, parity_tol: float = 1e-4,
               parent: str | None = None, training_extra: dict[str, Any] | None = None,
               fp16: bool = False) -> Path:
    """Export ``run_dir``'s last checkpoint as ``models_dir/name/version``; returns that path.
    ``training_extra`` adds fields to the manifest's training section (a job's id, dataset
    and settings). ``fp16``: each graph's float16 twin beside it too (``training.fp16``)."""
    run_dir, models_dir = Path(run_dir), Path(models_dir)
    if not NAME_RE.match(name):
        raise ExportError(f"model name {name!r}: use lowercase letters, digits, '.', '_', '-'")
    chosen = str(version) if version else None      # None: the next free number
    version = chosen or next_version(models_dir / name)
    if not VERSION_RE.match(version):
        raise ExportError(f"version {version!r}: versions are positive integers")
    if chosen:
        try:
            check_free(models_dir / name, chosen)
        except ValueError as e:
            raise ExportError(f"{e}; pick another --version") from None

    run_cfg = read_run_config(run_dir)
    state = load_checkpoint(RunFolder(run_dir).checkpoint)
    family = run_cfg["family"]
    model_cfg = config_from_dict(family, run_cfg["model"])
    G, D = build(family, model_cfg)
    G.load_state_dict(state["G"])
    D.load_state_dict(state["D"])
    G_ema, _ = build(family, model_cfg)
    G_ema.load_state_dict(state["G_ema"])
    G_inf = inference_copy(G_ema)

    (models_dir / name).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=models_dir / name, prefix=f".tmp-{version}-"))
    try:
        t0 = time.perf_counter()
        graphs, parity = _export_graphs(G_inf, tmp, parity_tol)
        export_s = time.perf_counter() - t0
        weights = {"G": "G.safetensors", "D": "D.safetensors", "G_ema": "G_ema.safetensors"}
        for role, module in (("G", G), ("D", D), ("G_ema", G_inf)):
            save_file(_contiguous(module.state_dict()), str(tmp / weights[role]))
        manifest = _manifest(name, str(version), run_dir, run_cfg, state, model_cfg, G_inf,
                             graphs, weights, parity, parent, export_s)
        manifest.d_blocks = d_blocks(D)        # what Freeze-D may count, for the API's check
        if training_extra:
            manifest.training = manifest.training.model_copy(update=training_extra)
        manifest.files = hash_files(tmp, [p.name for p in tmp.iterdir() if p.is_file()])
        write_manifest(tmp, manifest)
        if fp16:
            add_fp16_graphs(tmp)
        for f in tmp.iterdir():
            f.chmod(0o644)
        tmp.chmod(0o755)
        with model_lock(models_dir / name):     # one writer per model: jobs, the API, this
            try:
                final = place_version(models_dir / name, tmp, chosen)
            except ValueError as e:             # the chosen number was taken meanwhile
                raise ExportError(str(e)) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("exported %s (%s) to %s", name, family, final)
    return final


def _export_graphs(G_inf: Any, tmp: Path, parity_tol: float
                   ) -> tuple[dict[str, GraphSpec], dict[str, float]]:
    """Every graph the generator names, exported and checked against torch."""
    graphs, parity = {}, {}
    torch.manual_seed(20240617)     # parity inputs: reproducible
    for g in G_inf.onnx_graphs():
        file = f"{g.name}.onnx"
        export_graph(g, tmp / file)
        diff = check_parity(g, tmp / file)
        parity[g.name] = diff
        log.info("%s: parity max |ORT - torch| = %.3g (batches %s)", g.name, diff,
                 PARITY_BATCHES)
        if not diff <= parity_tol:
            raise ExportError(f"{g.name}: ONNX Runtime differs from PyTorch by {diff:.3g} "
                              f"(> {parity_tol:g}); refusing to publish")
        graphs[g.name] = graph_spec(g, file)
    return graphs, parity


def _manifest(name: str, version: str, run_dir: Path, run_cfg: dict[str, Any],
              state: dict[str, Any], model_cfg: Any, G_inf: Any, graphs: dict[str, GraphSpec],
              weights: dict[str, str], parity: dict[str, float], parent: str | None,
              export_s: float) -> Manifest:
    """The manifest of an export: shapes from the model config, the run's history."""
    wall = float(state.get("wall_seconds", 0.0))
    busy = float(state.get("train_seconds", wall))
    images_seen = int(state.get("images_seen", 0))
    data, train_cfg, family = run_cfg.get("data", {}), run_cfg["train"], run_cfg["family"]
    w_space = family_spec(family).w_space
    return Manifest(
        name=name, version=version, family=family,
        resolution=model_cfg.resolution, channels=model_cfg.channels, z_dim=model_cfg.z_dim,
        w_dim=model_cfg.w_dim if w_space else None,
        num_ws=model_cfg.num_ws if w_space else None,
        num_classes=model_cfg.num_classes,
        class_names=list(model_cfg.class_names or data.get("class_names", [])),
        w_avg=G_inf.w_avg().tolist() if w_space else None,
        graphs=graphs, weights=weights, model_args=config_to_dict(model_cfg),
        training=TrainingInfo(
            data=data.get("source", ""), data_images=data.get("images", 0),
            steps=int(state["step"]), batch=train_cfg["batch"], images_seen=images_seen,
            preset=run_cfg.get("preset", ""), loss=train_cfg["loss"], seed=train_cfg["seed"],
            command=run_cfg.get("command", ""), resumes=run_cfg.get("resumes", []),
            hosts=run_cfg.get("hosts", []), wall_seconds=round(wall, 1),
            images_per_second=round(images_seen / busy, 1) if busy else 0.0,
            train_seconds=round(busy, 1), train_config=train_cfg,
            fid_curve=fid_curve(run_dir, int(state["step"]))),
        parent=parent or run_cfg.get("parent"),
        parity={k: float(v) for k, v in parity.items()},
        opset=OPSET,
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        ganserve_version=ganserve.__version__,
        export_seconds=round(export_s, 2),
    )
