"""PSNR and SSIM of one image against another (ganserve.quality), the projection's scores."""

import numpy as np

from ganserve.quality import psnr, ssim


def _pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, (3, 1, 32, 32))
    return a, np.clip(a + rng.normal(0, 0.3, a.shape), -1, 1)


def test_ssim_and_psnr_match_scikit_image():
    """Reference values from scikit-image 0.26 (structural_similarity with
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=2;
    peak_signal_noise_ratio with data_range=2) on the same arrays."""
    a, b = _pair()
    np.testing.assert_allclose(ssim(a, b), [0.6117370035139124, 0.5425702496875126,
                                            0.5922758315290103], rtol=1e-9)
    np.testing.assert_allclose(psnr(a, b), [17.073575495265366, 17.458964427520872,
                                            17.074755223020237], rtol=1e-9)


def test_identical_images_score_one_and_infinity():
    a, _ = _pair()
    np.testing.assert_allclose(ssim(a, a), 1.0)
    assert np.isinf(psnr(a, a)).all()


def test_scores_are_per_image_and_order_by_damage():
    a, b = _pair()
    worse = np.clip(a + np.random.default_rng(1).normal(0, 0.8, a.shape), -1, 1)
    assert (ssim(a, worse) < ssim(a, b)).all() and (psnr(a, worse) < psnr(a, b)).all()
    rgb = np.repeat(a, 3, axis=1)
    assert ssim(rgb, rgb).shape == (3,)


def test_ssim_fits_its_window_to_small_images():
    a, b = _pair()
    small_a, small_b = a[:, :, :8, :8], b[:, :, :8, :8]
    got = ssim(small_a, small_b)
    assert got.shape == (3,) and np.isfinite(got).all()
    np.testing.assert_allclose(ssim(small_a, small_a), 1.0)
