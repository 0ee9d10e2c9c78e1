"""Seeds -> latents, the documented mapping every part of ganserve uses.

A seed ``s`` (0 <= s < 2**32) gives the latent

    numpy.random.Generator(numpy.random.PCG64(s)).standard_normal(z_dim, dtype=numpy.float32)

so a client can reproduce any image offline with numpy alone. Each seed owns its own
generator: a latent never depends on which other seeds share its batch.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

SEED_MAX = 2**32 - 1


def check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if not 0 <= int(seed) <= SEED_MAX:
        raise ValueError(f"seed must be in 0..{SEED_MAX}, got {seed}")
    return int(seed)


def z_from_seed(seed: int, z_dim: int) -> np.ndarray:
    """The latent of one seed: float32 vector of shape [z_dim]."""
    rng = np.random.Generator(np.random.PCG64(check_seed(seed)))
    return rng.standard_normal(z_dim, dtype=np.float32)


def z_from_seeds(seeds: Iterable[int], z_dim: int) -> np.ndarray:
    """Stacked latents of several seeds: float32 array of shape [len(seeds), z_dim]."""
    rows = [z_from_seed(s, z_dim) for s in seeds]
    if not rows:
        return np.zeros((0, z_dim), dtype=np.float32)
    return np.stack(rows)


def _ascii_int(text: str, what: str) -> int:
    """An integer written with ASCII digits only ('²' and '①' pass str.isdigit, not this)."""
    t = text.strip()
    if not (t.isascii() and t.isdigit()) or len(t) > 20:
        raise ValueError(f"{what} {text.strip()!r} is not a number in 0..{SEED_MAX}")
    return int(t)


def parse_seeds(text: str, limit: int | None = None) -> list[int]:
    """Parse NVIDIA-style seed lists: ``"0,1,4-6"`` -> ``[0, 1, 4, 5, 6]``.

    Every bound is checked and the total counted before any list is built, so
    ``"0-99999999999"`` costs nothing: it is refused when it exceeds ``limit`` seeds."""
    spans: list[tuple[int, int]] = []
    for part in text.split(","):
        if not part.strip():
            continue
        lo, _, hi = part.partition("-")
        a = check_seed(_ascii_int(lo, "seed"))
        b = check_seed(_ascii_int(hi, "seed")) if _ else a
        if b < a:
            raise ValueError(f"seed range {part.strip()!r} runs backwards")
        spans.append((a, b))
    count = sum(b - a + 1 for a, b in spans)
    if limit is not None and count > limit:
        raise ValueError(f"{count} seeds requested, the limit is {limit}")
    return [s for a, b in spans for s in range(a, b + 1)]


def truncated_z_from_seed(seed: int, z_dim: int, psi: float) -> np.ndarray:
    """The seed's latent under truncation ``psi``, for families without a w space.

    psi = 1: the plain latent. psi > 1: the latent scaled by psi. 0 < psi < 1: the truncation
    trick (Brock et al.): entries with |z_i| > 2 psi are redrawn inside [-2 psi, 2 psi] by
    inverse CDF from uniforms that follow z in the seed's stream, so entries already inside
    are kept and the image stays close to the untruncated one. psi = 0: the zero latent.
    """
    if not 0.0 <= psi <= 2.0 or psi != psi:
        raise ValueError(f"truncation_psi must be in [0, 2], got {psi}")
    if psi == 1.0:
        return z_from_seed(seed, z_dim)
    if psi > 1.0:
        return (z_from_seed(seed, z_dim) * np.float32(psi)).astype(np.float32)
    if psi == 0.0:
        return np.zeros(z_dim, np.float32)
    from scipy.special import ndtr, ndtri

    rng = np.random.Generator(np.random.PCG64(check_seed(seed)))
    z = rng.standard_normal(z_dim, dtype=np.float32)
    u = rng.random(z_dim)
    t = 2.0 * psi
    lo, hi = ndtr(-t), ndtr(t)
    redraw = np.clip(ndtri(lo + u * (hi - lo)), -t, t).astype(np.float32)
    return np.where(np.abs(z) > t, redraw, z).astype(np.float32)
