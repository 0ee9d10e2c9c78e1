import dataclasses
import json

import numpy as np
import pytest
import torch

from ganserve.data import load_images
from ganserve.training.checkpoint import CHECKPOINT_NAME, CheckpointError, load_checkpoint
from ganserve.training.config import TrainConfig, preset, train_config_to_dict
from ganserve.training.loop import RunError, train, training_device
from ganserve.training.networks import config_from_dict
from tests.conftest import baby_run

FAMILIES = ["dcgan", "cgan", "stylegan"]


def _setup(family, idx_dir, **overrides):
    m, t = preset(family, "baby")
    data = load_images(idx_dir)
    if family == "cgan":
        m["num_classes"] = data.num_classes
    t.update(overrides)
    return config_from_dict(family, m), TrainConfig(**t), data


@pytest.mark.parametrize("family", FAMILIES)
def test_train_baby_writes_run_folder_with_finite_losses(family, idx_dir, tmp_path):
    run = baby_run(tmp_path, family, idx_dir)
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    for r in rows:
        assert np.isfinite(r["loss_G"]) and np.isfinite(r["loss_D"]) and r["images_per_s"] > 0
    assert (run / "samples" / "step-0000004.png").is_file()
    assert (run / "samples" / "latest.png").is_file() and (run / "loss.png").is_file()
    state = load_checkpoint(run / CHECKPOINT_NAME)
    assert state["step"] == 4 and state["images_seen"] == 32
    # images/s is measured over optimizer steps, not snapshots and checkpoints
    assert 0 < state["train_seconds"] < state["wall_seconds"]


@pytest.mark.parametrize("family", FAMILIES)
def test_resume_after_interrupt_matches_uninterrupted_run(family, idx_dir, tmp_path):
    model_cfg, cfg, data = _setup(family, idx_dir, steps=6, checkpoint_every=100,
                                  sample_every=100)
    straight = train(tmp_path / "a", family, model_cfg, cfg, data)
    calls = {"n": 0}

    def cancel_after_3():
        calls["n"] += 1
        return calls["n"] > 3

    first = train(tmp_path / "b", family, model_cfg, cfg, data, should_cancel=cancel_after_3)
    assert first.cancelled and first.step == 3
    resumed = train(tmp_path / "b", family, model_cfg, cfg, data, resume=True)
    assert resumed.step == 6 and straight.step == 6
    a = load_checkpoint(straight.checkpoint)
    b = load_checkpoint(resumed.checkpoint)
    for key in ("G", "D", "G_ema"):
        for name, t in a[key].items():
            assert torch.equal(t, b[key][name]), f"{key}.{name} differs after resume"
    steps = [json.loads(x)["step"] for x in (tmp_path / "b" / "metrics.jsonl").read_text()
             .splitlines() if "loss_G" in x]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_resume_drops_metric_lines_past_the_checkpoint(idx_dir, tmp_path):
    model_cfg, cfg, data = _setup("dcgan", idx_dir, steps=4, checkpoint_every=2)
    train(tmp_path, "dcgan", model_cfg, cfg, data)
    # simulate a kill after step 3 logged but before the step-4 checkpoint
    state = load_checkpoint(tmp_path / CHECKPOINT_NAME)
    state["step"], state["images_seen"] = 2, 16
    torch.save(state, tmp_path / CHECKPOINT_NAME)
    train(tmp_path, "dcgan", model_cfg, cfg, data, resume=True)
    steps = [json.loads(x)["step"] for x in (tmp_path / "metrics.jsonl").read_text()
             .splitlines()]
    assert steps == [1, 2, 3, 4]


def test_existing_run_is_not_overwritten(idx_dir, tmp_path):
    model_cfg, cfg, data = _setup("dcgan", idx_dir, steps=2)
    train(tmp_path, "dcgan", model_cfg, cfg, data)
    with pytest.raises(RunError, match="--resume"):
        train(tmp_path, "dcgan", model_cfg, cfg, data)


def test_resume_without_checkpoint_is_clear(idx_dir, tmp_path):
    model_cfg, cfg, data = _setup("dcgan", idx_dir, steps=2)
    with pytest.raises(CheckpointError, match="nothing to resume"):
        train(tmp_path, "dcgan", model_cfg, cfg, data, resume=True)


def test_corrupt_checkpoint_is_clear(idx_dir, tmp_path):
    model_cfg, cfg, data = _setup("dcgan", idx_dir, steps=2)
    train(tmp_path, "dcgan", model_cfg, cfg, data)
    (tmp_path / CHECKPOINT_NAME).write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="unreadable"):
        train(tmp_path, "dcgan", model_cfg, cfg, data, resume=True)


def test_progress_callback_and_unlabeled_cgan(idx_dir, tmp_path):
    model_cfg, cfg, data = _setup("dcgan", idx_dir, steps=3)
    seen = []
    train(tmp_path / "p", "dcgan", model_cfg, cfg, data, progress=seen.append)
    assert [p.step for p in seen] == [1, 2, 3] and seen[-1].total_steps == 3
    # from the first step on (before the first log row too): a speed for the ETA, losses
    assert all(set(p.losses) >= {"loss_G", "loss_D"} and p.images_per_s > 0 for p in seen)
    cg_cfg, cfg, data = _setup("cgan", idx_dir, steps=2)
    data.labels = None
    with pytest.raises(RunError, match="needs labels"):
        train(tmp_path / "c", "cgan", cg_cfg, cfg, data)


def test_wgan_gp_and_r1_losses_are_logged(idx_dir, tmp_path):
    m, t = preset("dcgan", "baby")
    data = load_images(idx_dir)
    cfg = TrainConfig(**{**t, "loss": "wgan-gp", "r1_gamma": 1.0, "r1_interval": 2})
    train(tmp_path, "dcgan", config_from_dict("dcgan", {**m, "d_batchnorm": False}), cfg, data)
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all("gp" in r for r in rows) and any("r1" in r for r in rows)


def test_checkpoint_holds_no_pickled_code(idx_dir, tmp_path):
    run = baby_run(tmp_path, "stylegan", idx_dir, steps=2)
    # weights_only loading refuses arbitrary objects; the load above would fail otherwise
    state = torch.load(run / CHECKPOINT_NAME, weights_only=True)
    assert isinstance(state["config"], str) and json.loads(state["config"])["family"]


def test_cgan_auxiliary_classifier_loss_trains_and_resumes(idx_dir, tmp_path):
    m, t = preset("cgan", "baby")
    data = load_images(idx_dir)
    model_cfg = config_from_dict("cgan", {**m, "num_classes": 10, "aux_classifier": True})
    cfg = TrainConfig(**{**t, "aux_class_weight": 1.0, "steps": 4, "checkpoint_every": 2})
    train(tmp_path / "a", "cgan", model_cfg, cfg, data)
    rows = [json.loads(x) for x in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["aux_D"]) and np.isfinite(r["aux_G"]) for r in rows)
    plain = config_from_dict("cgan", {**m, "num_classes": 10})
    with pytest.raises(RunError, match="aux_classifier"):
        train(tmp_path / "b", "cgan", plain, cfg, data)


def test_time_budget_ends_run_as_finished_with_final_fid_point(idx_dir, tmp_path):
    # 6 ms: no baby run does 100 steps in that, and the first step always starts
    model_cfg, cfg, data = _setup("stylegan", idx_dir, steps=100, time_budget_minutes=1e-4,
                                  eval_every=50)
    evaluated = []

    def evaluator(G):
        evaluated.append(G.training)
        return {"fid": 1.0}

    result = train(tmp_path, "stylegan", model_cfg, cfg, data, evaluator=evaluator)
    assert result.out_of_time and not result.cancelled and 1 <= result.step < 100
    assert evaluated == [False]
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1] == {"step": result.step, "fid": 1.0}
    assert (tmp_path / "samples" / f"step-{result.step:07d}.png").is_file()
    assert load_checkpoint(tmp_path / CHECKPOINT_NAME)["step"] == result.step


def test_time_budget_counts_wall_time_of_earlier_sessions(idx_dir, tmp_path):
    model_cfg, cfg, data = _setup("dcgan", idx_dir, steps=2)
    first = train(tmp_path, "dcgan", model_cfg, cfg, data)
    # the first session already spent more than this budget: resuming ends at once
    budget = first.wall_seconds / 60 / 2
    more = TrainConfig(**{**train_config_to_dict(cfg), "steps": 50,
                          "time_budget_minutes": budget})
    result = train(tmp_path, "dcgan", model_cfg, more, data, resume=True)
    assert result.out_of_time and result.step == 2


def test_bf16_precision_trains_finite_and_keeps_fp32_weights(idx_dir, tmp_path):
    model_cfg, cfg, data = _setup("stylegan", idx_dir, steps=4, precision="bf16")
    result = train(tmp_path, "stylegan", model_cfg, cfg, data)
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(v) for r in rows for v in r.values()) and any("r1" in r for r in rows)
    assert result.step == 4
    state = load_checkpoint(tmp_path / CHECKPOINT_NAME)
    assert all(t.dtype == torch.float32 for t in state["G"].values() if t.is_floating_point())


@pytest.mark.parametrize("bad, match", [({"precision": "fp16"}, "precision"),
                                        ({"time_budget_minutes": -1}, "time_budget"),
                                        ({"r1_gamma": -0.1}, "r1_gamma")])
def test_train_config_rejects_bad_precision_budget_and_gamma(bad, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**bad)


def test_fid_points_follow_eval_every_not_sample_every(idx_dir, tmp_path):
    model_cfg, cfg, data = _setup("dcgan", idx_dir, steps=6, sample_every=4, eval_every=3)
    train(tmp_path, "dcgan", model_cfg, cfg, data, evaluator=lambda G: {"fid": 2.0})
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "fid" in r] == [3, 6]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_device_cuda_without_a_gpu_is_refused_in_one_line(idx_dir, tmp_path):
    model_cfg, cfg, data = _setup("dcgan", idx_dir, steps=2)
    cfg = dataclasses.replace(cfg, device="cuda")
    with pytest.raises(RunError, match=r"^device=cuda, but torch \S+ sees no GPU \((a CPU-only "
                       r"build|built for CUDA [\d.]+: no device or driver visible)\)$"):
        train(tmp_path, "dcgan", model_cfg, cfg, data)


def test_device_auto_trains_where_torch_sees_a_device(idx_dir, tmp_path):
    model_cfg, cfg, data = _setup("dcgan", idx_dir, steps=2)
    result = train(tmp_path, "dcgan", model_cfg, dataclasses.replace(cfg, device="auto"), data)
    assert result.step == 2
    assert training_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_unknown_device_is_refused():
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        TrainConfig(device="tpu")
