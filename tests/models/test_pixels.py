"""The cross-CPU comparison itself: it passes the measured kind of difference and fails
anything larger, so a golden test that passes means something."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from tests.models.pixels import assert_same_image, assert_same_json


def png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 250, (256, 256), dtype=np.uint8)


def test_same_image_passes_identical_and_one_level_on_a_few_pixels(image):
    assert_same_image(png(image), png(image), "same")
    near = image.copy()
    near[:3, :3] += 1                               # 9 pixels, one grey level
    assert_same_image(png(near), png(image), "near")


def test_same_image_fails_two_levels_or_too_many_pixels(image):
    far = image.copy()
    far[0, 0] += 2
    with pytest.raises(AssertionError, match="grey levels"):
        assert_same_image(png(far), png(image), "two levels")
    many = image + 1                                # every pixel one level off
    with pytest.raises(AssertionError, match="65536 of 65536"):
        assert_same_image(png(many), png(image), "all pixels")


def test_same_json_compares_images_latents_and_the_rest(image):
    def answer(pixels: np.ndarray, latent: list[float], seed: int = 7) -> bytes:
        return json.dumps({"images": [{"seed": seed, "latent": latent,
                                       "png": base64.b64encode(png(pixels)).decode()}]}).encode()

    assert_same_json(answer(image, [0.5, 1.0 + 1e-7]), answer(image, [0.5, 1.0]), "ok")
    with pytest.raises(AssertionError, match="floats"):
        assert_same_json(answer(image, [0.5, 1.1]), answer(image, [0.5, 1.0]), "latent")
    with pytest.raises(AssertionError, match="8 != 7"):
        assert_same_json(answer(image, [0.5], seed=8), answer(image, [0.5]), "seed")
    with pytest.raises(AssertionError, match="grey levels"):
        assert_same_json(answer(image + 3, [0.5]), answer(image, [0.5]), "image")
