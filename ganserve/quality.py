"""Sample-quality metrics on feature vectors (numpy, float64 accumulation).

- Fréchet distance: ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)), with the trace of the
  matrix square root from the eigenvalues of S1 @ S2 (as torchmetrics and torch-fidelity do).
- KID: unbiased MMD^2 with the kernel (x.y / d + 1)^3, mean and std over random subsets.
- Precision / recall (Kynkäänniemi et al. 2019): k-NN balls around each real (fake) feature.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class FeatureStats:
    mu: np.ndarray      # [d] float64
    sigma: np.ndarray   # [d, d] float64, unbiased (n - 1)
    n: int

    def save(self, path) -> None:
        np.savez(path, mu=self.mu, sigma=self.sigma, n=np.int64(self.n))

    @classmethod
    def load(cls, path) -> FeatureStats:
        with np.load(path, allow_pickle=False) as z:
            return cls(z["mu"], z["sigma"], int(z["n"]))


def feature_stats(features: np.ndarray) -> FeatureStats:
    f = np.asarray(features, np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"need [n >= 2, d] features, got shape {f.shape}")
    return FeatureStats(f.mean(axis=0), np.cov(f, rowvar=False), len(f))


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray) -> float:
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape:
        raise ValueError(f"feature dims differ: {mu1.shape} vs {mu2.shape}")
    diff = mu1 - mu2
    eig = np.linalg.eigvals(s1 @ s2).astype(np.complex128)
    tr_covmean = np.sqrt(eig).real.sum()
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)


def fid_from_stats(a: FeatureStats, b: FeatureStats) -> float:
    return frechet_distance(a.mu, a.sigma, b.mu, b.sigma)


def kid(real: np.ndarray, fake: np.ndarray, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance: (mean, std) of unbiased MMD^2 over random subsets."""
    x, y = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    d = x.shape[1]
    m = min(subset_size, len(x), len(y))
    if m < 2:
        raise ValueError("KID needs at least 2 samples per set")
    rng = np.random.default_rng(seed)
    vals = np.empty(subsets)
    for i in range(subsets):
        a = x[rng.choice(len(x), m, replace=False)]
        b = y[rng.choice(len(y), m, replace=False)]
        kxx = (a @ a.T / d + 1) ** 3
        kyy = (b @ b.T / d + 1) ** 3
        kxy = (a @ b.T / d + 1) ** 3
        vals[i] = ((kxx.sum() - np.trace(kxx)) / (m * (m - 1))
                   + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                   - 2 * kxy.mean())
    return float(vals.mean()), float(vals.std())


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d, 0.0)


def knn_radii(x: np.ndarray, k: int, chunk: int = 1024) -> np.ndarray:
    """Squared distance from each row to its k-th nearest other row."""
    out = np.empty(len(x), np.float32)
    for i in range(0, len(x), chunk):
        d = _sq_dists(x[i:i + chunk], x)
        out[i:i + chunk] = np.partition(d, k, axis=1)[:, k]     # index 0 is the row itself
    return out


def coverage_of(manifold: np.ndarray, radii: np.ndarray, queries: np.ndarray,
                chunk: int = 1024) -> float:
    """Share of ``queries`` inside at least one k-NN ball of ``manifold``."""
    inside = 0
    for i in range(0, len(queries), chunk):
        d = _sq_dists(queries[i:i + chunk], manifold)
        inside += int((d <= radii[None, :]).any(axis=1).sum())
    return inside / len(queries)


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    r, f = np.asarray(real, np.float32), np.asarray(fake, np.float32)
    precision = coverage_of(r, knn_radii(r, k), f)
    recall = coverage_of(f, knn_radii(f, k), r)
    return precision, recall


def class_histogram(pred: np.ndarray, num_classes: int) -> np.ndarray:
    return np.bincount(np.asarray(pred, np.int64), minlength=num_classes) / max(len(pred), 1)


def entropy_bits(p: np.ndarray) -> float:
    p = np.asarray(p, np.float64)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


# -------------------------------------------------------------- one image against another
def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 2.0) -> np.ndarray:
    """Peak signal-to-noise ratio in dB per image of [N, C, H, W] arrays (values in a
    range ``data_range`` wide: 2 for [-1, 1]); identical images: inf."""
    mse = np.square(a.astype(np.float64) - b).reshape(len(a), -1).mean(1)
    with np.errstate(divide="ignore"):
        return 10 * np.log10(data_range ** 2 / mse)


def _gaussian_window(sigma: float = 1.5, radius: int = 5) -> np.ndarray:
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-x ** 2 / (2 * sigma ** 2))
    return g / g.sum()


def _filter(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'valid' filtering over the last two axes."""
    k = len(g)
    rows = sum(g[i] * x[..., i:x.shape[-2] - k + 1 + i, :] for i in range(k))
    return sum(g[i] * rows[..., i:x.shape[-1] - k + 1 + i] for i in range(k))


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 2.0) -> np.ndarray:
    """Structural similarity per image of [N, C, H, W] arrays (Wang et al. 2004: an 11-tap
    Gaussian window, sigma 1.5, K1 0.01, K2 0.03, averaged over the valid positions and
    channels; images under 11 pixels a side get a window as wide as they are); 1 for
    identical images."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    g = _gaussian_window(radius=min(5, (min(a.shape[-2:]) - 1) // 2))
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_a, mu_b = _filter(a, g), _filter(b, g)
    var_a = _filter(a * a, g) - mu_a ** 2
    var_b = _filter(b * b, g) - mu_b ** 2
    cov = _filter(a * b, g) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1)
                                                      * (var_a + var_b + c2))
    return s.reshape(len(a), -1).mean(1)


PSNR_CAP_DB = 100.0         # identical images have an infinite PSNR; JSON has no inf


def reconstruction_scores(target: np.ndarray, image: np.ndarray) -> dict[str, float]:
    """A projection's scores as the API and the job report them: PSNR (dB, capped) and
    SSIM of ``image`` [1, C, H, W] (clipped to [-1, 1]) against ``target``."""
    clipped = np.clip(image, -1.0, 1.0)
    return {"psnr": round(min(float(psnr(target, clipped)[0]), PSNR_CAP_DB), 3),
            "ssim": round(float(ssim(target, clipped)[0]), 4)}
