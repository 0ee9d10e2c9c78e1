"""What a fine-tune changes in training: Freeze-D keeps D's first blocks, DiffAugment is
differentiable and seeded, a conditional model tuned on some classes is asked for those."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganserve.data import ImageData
from ganserve.training.augment import cutout, make_augment, translation
from ganserve.training.loop import Batches, _present_classes
from ganserve.training.plan import PlanError, TrainOptions, plan_training, run_plan


def data(classes: list[int] | None = None, n: int = 32) -> ImageData:
    rng = np.random.default_rng(0)
    labels = np.asarray([(classes or list(range(3)))[i % len(classes or [0, 1, 2])]
                         for i in range(n)])
    return ImageData(images=rng.integers(0, 255, (n, 1, 32, 32), dtype=np.uint8),
                     labels=labels, class_names=["a", "b", "c"], source="random")


@pytest.mark.parametrize("family", ["dcgan", "stylegan"])
def test_freeze_d_keeps_the_first_blocks(tmp_path, family):
    plan = plan_training(TrainOptions(family, tmp_path / "run", preset="baby",
                                      train={"freeze_d": 1, "steps": 3}, images=data()))
    from ganserve.training import loop

    seen = {}
    real_run = loop._Run.loop

    def spy(self, *a, **k):
        blocks = self.nets.D.image_side_blocks()
        seen["frozen0"] = [p.detach().clone() for p in blocks[0].parameters()]
        seen["free"] = [p.detach().clone() for p in blocks[-1].parameters()]
        out = real_run(self, *a, **k)
        seen["frozen1"] = [p.detach().clone() for p in blocks[0].parameters()]
        seen["free1"] = [p.detach().clone() for p in blocks[-1].parameters()]
        return out

    loop._Run.loop = spy
    try:
        run_plan(plan)
    finally:
        loop._Run.loop = real_run
    assert all(torch.equal(a, b) for a, b in zip(seen["frozen0"], seen["frozen1"]))
    assert not all(torch.equal(a, b) for a, b in zip(seen["free"], seen["free1"]))


def test_freeze_d_beyond_the_blocks_is_a_plan_error(tmp_path):
    with pytest.raises(PlanError, match="freeze at most"):
        plan_training(TrainOptions("dcgan", tmp_path / "run", preset="baby",
                                   train={"freeze_d": 9}, images=data()))


def test_augment_is_differentiable_and_seeded():
    x = torch.randn(4, 1, 16, 16, requires_grad=True)
    torch.manual_seed(1)
    a = make_augment("translation,cutout")(x)
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    torch.manual_seed(1)
    b = make_augment("translation,cutout")(x.detach())
    assert torch.equal(a.detach(), b)
    assert translation(x).shape == cutout(x).shape == x.shape


def test_unknown_augment_is_refused(tmp_path):
    with pytest.raises(PlanError, match="unknown augmentation"):
        plan_training(TrainOptions("dcgan", tmp_path / "run", preset="baby",
                                   train={"augment": "rotate"}, images=data()))


def test_conditional_fakes_use_the_classes_the_data_holds():
    present = _present_classes(data([2]), num_classes=3)
    assert present.tolist() == [2]
    batches = Batches(torch.zeros(1), None, 8, 3, present)
    assert set(batches.fake_classes(64).tolist()) == {2}
    assert _present_classes(data([0, 1, 2]), num_classes=3) is None    # all: as before
    assert Batches(torch.zeros(1), None, 8, 0).fake_classes(4) is None


def test_freeze_d_rule_is_one_function_for_the_api_the_plan_and_the_loop():
    from ganserve.jobs.specs import freeze_d_problem

    assert freeze_d_problem(0, 0, "x") is None
    assert freeze_d_problem(2, 3, "x") is None
    assert "freeze at most 2" in freeze_d_problem(3, 3, "x")
    assert "cannot be partly frozen: drop --freeze-d" in freeze_d_problem(1, 0, "x",
                                                                            "--freeze-d")
