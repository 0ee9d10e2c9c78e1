"""The refined projection (``ganserve.training.projection``): gradient descent from a start
latent towards an image, on the baby versions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganserve.generator import OnnxGenerator
from ganserve.quality import psnr
from ganserve.training.inversion import FrozenGenerator, InversionError, Perceptual
from ganserve.training.projection import (
    Refinement,
    learning_rate,
    project_image,
    refine,
    render,
)


def test_learning_rate_ramps_up_then_down_and_is_never_zero():
    rates = [learning_rate(s, 100, 0.1) for s in range(100)]
    assert all(0 < r <= 0.1 for r in rates)
    assert rates[0] < rates[4] and rates[10] == pytest.approx(0.1)     # ramp-up: 5%
    assert rates[74] == pytest.approx(0.1) and rates[99] < 0.01          # down: last 25%
    assert all(a >= b for a, b in zip(rates[75:], rates[76:]))


@pytest.mark.parametrize("family", ["dcgan", "cgan", "stylegan"])
def test_refine_moves_towards_the_images_own_latent(family, baby_exports, extractor_dir):
    """Targets the generator made itself, from a start elsewhere: the refined images are
    closer to the targets than the start's, and the loss falls."""
    gen = FrozenGenerator(baby_exports[family])
    rng = torch.Generator().manual_seed(1)
    latent, c = gen.sample(4, rng)
    classes = None if c is None else torch.nn.functional.one_hot(c, gen.num_classes).float()
    with torch.no_grad():
        target = gen.image(latent, classes)
        start, _ = gen.sample(4, rng)
        before = gen.image(start, classes)
    done = refine(gen, Perceptual(extractor_dir), target, start, classes,
                  Refinement(steps=40, lr=0.1))
    assert done.latent.shape == start.shape and len(done.loss) == 40
    assert done.loss[-1] < done.loss[0]
    gain = psnr(target.numpy(), done.images.numpy()) - psnr(target.numpy(), before.numpy())
    assert (gain > 0).all(), gain


def test_refine_never_answers_worse_than_its_start(baby_exports, extractor_dir):
    """Started at the targets' own latents (a perfect fit) with a rate that throws them
    away, the answer is still the start."""
    gen = FrozenGenerator(baby_exports["stylegan"])
    latent, _ = gen.sample(3, torch.Generator().manual_seed(2))
    with torch.no_grad():
        target = gen.image(latent)
    done = refine(gen, Perceptual(extractor_dir), target, latent, None,
                  Refinement(steps=3, lr=5.0))
    assert done.loss[-1] > 0.01 > done.loss[0]      # it did move away
    assert torch.allclose(done.latent, latent, atol=1e-4)


def test_refine_reports_progress_and_stops_when_the_callback_raises(baby_exports,
                                                                    extractor_dir):
    gen = FrozenGenerator(baby_exports["dcgan"])
    latent, _ = gen.sample(1, torch.Generator().manual_seed(0))
    seen = []

    def progress(step, loss, images):
        seen.append((step, loss, tuple(images.shape)))
        if step == 3:
            raise InterruptedError("stop")

    with pytest.raises(InterruptedError):
        refine(gen, Perceptual(extractor_dir), gen.image(latent).detach(), torch.zeros_like(latent),
               opts=Refinement(steps=10), progress=progress)
    assert [s for s, _, _ in seen] == [1, 2, 3]
    assert seen[0][2] == (1, 1, 32, 32)


@pytest.mark.parametrize("family", ["dcgan", "cgan", "stylegan"])
def test_project_image_starts_at_the_encoder_and_ends_closer(family, inverted_store,
                                                             extractor_dir):
    """With an encoder the refinement starts from its latent; the answer's image is ONNX
    Runtime's rendering of the answer's latent (what the service would serve) and scores
    at least as well as the start."""
    vdir = inverted_store / f"baby-{family}" / "1"
    gen = OnnxGenerator(vdir, device="cpu")
    target = np.clip(gen.generate([7], [3] if gen.manifest.conditional else None), -1, 1)
    p = project_image(vdir, target, None, extractor_dir, Refinement(steps=30))
    assert p.start == "encoder" and p.latent_name == ("w" if family == "stylegan" else "z")
    assert p.scores["psnr"] >= p.start_scores["psnr"], (p.start_scores, p.scores)
    assert (p.class_index is not None) == (family == "cgan")
    assert p.latent.dtype == np.float32 and np.isfinite(p.latent).all()
    assert p.image.shape == target.shape


def test_project_image_without_an_encoder_starts_from_the_mean(inverted_store,
                                                               extractor_dir):
    vdir = inverted_store / "plain-dcgan" / "1"
    gen = OnnxGenerator(vdir, device="cpu")
    target = np.clip(gen.generate([5]), -1, 1)
    p = project_image(vdir, target, None, extractor_dir, Refinement(steps=30))
    assert p.start == "mean"
    assert p.scores["psnr"] > p.start_scores["psnr"]


def test_conditional_without_an_encoder_needs_the_class(baby_exports, extractor_dir):
    vdir = baby_exports["cgan"]
    gen = OnnxGenerator(vdir, device="cpu")
    target = np.clip(gen.generate([5], [3]), -1, 1)
    with pytest.raises(InversionError, match="give the class"):
        project_image(vdir, target, None, extractor_dir, Refinement(steps=2))
    p = project_image(vdir, target, 3, extractor_dir, Refinement(steps=10))
    assert p.start == "mean" and p.class_index == 3
    assert np.array_equal(p.image, render(gen, p.latent[None], 3))
