"""The plan checks a run before any work: model fields by type and by building the networks
(before the data loads), resume rules, labels for conditional families."""

from pathlib import Path

import numpy as np
import pytest
import torch

from ganserve.training.plan import PlanError, TrainOptions, plan_training

MISSING = "/no/such/data"        # a plan that reached the data would fail on this instead


@pytest.mark.parametrize("model, says", [
    ({"g_width": "abc"}, "model field g_width='abc'"),
    ({"g_width": -4}, "not buildable"),
    ({"no_such": 1}, r"no model field\(s\) no_such"),
])
def test_bad_model_fields_fail_before_the_data_loads(tmp_path, model, says):
    with pytest.raises(PlanError, match=says):
        plan_training(TrainOptions("dcgan", tmp_path / "r", preset="baby", model=model,
                                   data=MISSING))


def test_a_good_plan_resolves_preset_overrides_and_data(tmp_path, idx_dir):
    plan = plan_training(TrainOptions("cgan", tmp_path / "r", preset="baby",
                                      train={"steps": 7, "batch": None}, data=str(idx_dir)))
    assert plan.train_cfg.steps == 7 and plan.train_cfg.batch == 8
    assert plan.model_cfg.num_classes == 10 and len(plan.data) == 64


def test_conditional_family_needs_labels(tmp_path):
    np.savez(tmp_path / "x.npz", x=np.zeros((8, 32, 32), np.uint8))
    with pytest.raises(PlanError, match="cgan needs labeled data"):
        plan_training(TrainOptions("cgan", tmp_path / "r", preset="baby",
                                   data=str(tmp_path / "x.npz")))


def test_resume_keeps_what_makes_the_run(tmp_path, idx_dir):
    from ganserve.training.plan import run_plan
    run = tmp_path / "r"
    run_plan(plan_training(TrainOptions("dcgan", run, preset="baby", data=str(idx_dir))))
    with pytest.raises(PlanError, match="cannot change batch"):
        plan_training(TrainOptions("dcgan", run, resume=True, train={"batch": 4}))
    with pytest.raises(PlanError, match="already holds a run"):
        plan_training(TrainOptions("dcgan", run, preset="baby", data=str(idx_dir)))
    resumed = plan_training(TrainOptions("dcgan", Path(run), resume=True, train={"steps": 6}))
    assert resumed.train_cfg.steps == 6 and resumed.resume


def test_fine_tune_starts_from_a_published_version(tmp_path, idx_dir, baby_exports):
    from safetensors.torch import load_file

    from ganserve.manifest import load_manifest
    from ganserve.training.export import export_run
    from ganserve.training.plan import run_plan

    parent_dir = baby_exports["dcgan"]
    # one step at a vanishing learning rate: the weights must still be the parent's
    plan = plan_training(TrainOptions("dcgan", tmp_path / "ft", preset="baby",
                                      train={"steps": 1, "lr_g": 1e-12, "lr_d": 1e-12},
                                      data=str(idx_dir), init_from=parent_dir))
    assert plan.parent == "baby-dcgan/1" and plan.model_cfg.z_dim == 16
    run_plan(plan)
    out = export_run(tmp_path / "ft", tmp_path / "store", "baby-dcgan-ft", "1")
    assert load_manifest(out).parent == "baby-dcgan/1"
    start = load_file(str(parent_dir / "G.safetensors"))
    tuned = load_file(str(out / "G.safetensors"))
    params = [k for k in start if start[k].is_floating_point() and "running" not in k]
    assert params and all(torch.allclose(tuned[k], start[k], atol=1e-6) for k in params)


def test_fine_tune_refuses_another_family_or_architecture(tmp_path, idx_dir, baby_exports):
    with pytest.raises(PlanError, match="is a dcgan model, not stylegan"):
        plan_training(TrainOptions("stylegan", tmp_path / "a", preset="baby",
                                   data=str(idx_dir), init_from=baby_exports["dcgan"]))
    with pytest.raises(PlanError, match="keeps baby-dcgan/1's architecture"):
        plan_training(TrainOptions("dcgan", tmp_path / "b", preset="baby", model={"z_dim": 8},
                                   data=str(idx_dir), init_from=baby_exports["dcgan"]))
