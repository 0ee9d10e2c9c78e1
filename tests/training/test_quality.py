import numpy as np
import pytest
import torch
from torchmetrics.image.fid import _compute_fid

from ganserve.quality import (
    class_histogram,
    entropy_bits,
    feature_stats,
    fid_from_stats,
    frechet_distance,
    kid,
    precision_recall,
)


def test_frechet_distance_closed_form_diagonal():
    # N(mu1, diag(a)) vs N(mu2, diag(b)): |mu1-mu2|^2 + sum(a + b - 2 sqrt(ab))
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    expected = 1 + 0 + 4 + (1 + 4 - 4) + (4 + 1 - 4) + (9 + 1 - 6)
    got = frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
    assert got == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_agrees_with_torchmetrics():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 32)) @ rng.normal(size=(32, 32))
    y = rng.normal(size=(1500, 32)) @ rng.normal(size=(32, 32)) + 0.3
    sx, sy = feature_stats(x), feature_stats(y)
    ours = fid_from_stats(sx, sy)
    ref = _compute_fid(torch.from_numpy(sx.mu), torch.from_numpy(sx.sigma),
                       torch.from_numpy(sy.mu), torch.from_numpy(sy.sigma)).item()
    assert ours == pytest.approx(ref, rel=1e-6)
    # and torchmetrics' own covariance agrees with ours
    xt = torch.from_numpy(x)
    cov_t = torch.cov(xt.T)
    assert np.allclose(cov_t.numpy(), sx.sigma, rtol=1e-10, atol=1e-10)


def test_fid_same_set_is_zero_and_shift_is_squared_norm():
    x = np.random.default_rng(1).normal(size=(3000, 8))
    s = feature_stats(x)
    assert fid_from_stats(s, s) == pytest.approx(0.0, abs=1e-6)
    shifted = feature_stats(x + 2.0)
    assert fid_from_stats(s, shifted) == pytest.approx(8 * 4.0, rel=1e-6)


def test_kid_near_zero_for_same_distribution_positive_for_different():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(600, 16)), rng.normal(size=(600, 16))
    same, _ = kid(a, b, subsets=20, subset_size=300)
    diff, _ = kid(a, b + 1.0, subsets=20, subset_size=300)
    assert abs(same) < 0.05 and diff > 0.5


def test_precision_recall_identical_and_disjoint():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(400, 4)).astype(np.float32)
    p, r = precision_recall(a, a.copy(), k=3)
    assert p == 1.0 and r == 1.0
    p, r = precision_recall(a, a + 100, k=3)
    assert p == 0.0 and r == 0.0
    # a fake set that covers only half the real modes keeps precision, loses recall
    half = a[a[:, 0] > 0]
    p, r = precision_recall(a, half, k=3)
    assert p > 0.9 and r < 0.75


def test_class_histogram_and_entropy():
    h = class_histogram(np.array([0, 0, 1, 3]), 4)
    assert h.tolist() == [0.5, 0.25, 0.0, 0.25]
    assert entropy_bits(np.full(10, 0.1)) == pytest.approx(np.log2(10))
    assert entropy_bits(np.array([1.0, 0, 0])) == 0.0
