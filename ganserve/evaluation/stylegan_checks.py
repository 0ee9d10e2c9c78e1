"""Does a StyleGAN behave like one? Truncation and style-mixing measurements.

- Truncation: class entropy of samples at psi = 1 and psi = 0.5 (it should fall at 0.5).
- Style mixing: for pairs of seeds whose images the classifier puts in different classes,
  take the base seed's w and swap in the other seed's w at the coarse layers (0..3 of 8) or
  at the fine layers (4..7). Coarse mixing should carry the other seed's garment type; fine
  mixing should keep the base's.
"""

from __future__ import annotations

import numpy as np

from ganserve.features import FeatureExtractor
from ganserve.generator import OnnxGenerator
from ganserve.quality import class_histogram, entropy_bits

MIX_SEED_OFFSET = 3_000_000


def _classes(ext: FeatureExtractor, images: np.ndarray) -> np.ndarray:
    _, logits = ext.run(images)
    return logits.argmax(1)


def truncation_entropy(gen: OnnxGenerator, ext: FeatureExtractor, n: int,
                       psis=(1.0, 0.5), seed: int = 0) -> dict[str, float]:
    """Class entropy of n samples (seeds seed..seed+n-1) at each psi."""
    out = {}
    seeds = list(range(seed, seed + n))
    K = len(ext.class_names) or 10
    for psi in psis:
        pred = _classes(ext, gen.generate(seeds, psi=psi))
        out[f"class_entropy_psi_{psi:g}"] = round(entropy_bits(class_histogram(pred, K)), 4)
    return out


def style_mixing(gen: OnnxGenerator, ext: FeatureExtractor, pairs: int = 1000,
                 coarse: int | None = None, seed: int = 0) -> dict[str, float]:
    """Seed pairs from MIX_SEED_OFFSET + seed on (2 * pairs seeds)."""
    num_ws = gen.manifest.num_ws
    coarse = coarse if coarse is not None else num_ws // 2
    start = MIX_SEED_OFFSET + seed
    a = list(range(start, start + pairs))
    b = list(range(start + pairs, start + 2 * pairs))
    wa = gen.broadcast(gen.mapping(gen.latents(a)))
    wb = gen.broadcast(gen.mapping(gen.latents(b)))
    ca = _classes(ext, gen.synthesis(wa))
    cb = _classes(ext, gen.synthesis(wb))
    differ = ca != cb
    coarse_mix = wa.copy()
    coarse_mix[:, :coarse] = wb[:, :coarse]           # b's coarse styles on a
    fine_mix = wa.copy()
    fine_mix[:, coarse:] = wb[:, coarse:]             # b's fine styles on a
    c_coarse = _classes(ext, gen.synthesis(coarse_mix))
    c_fine = _classes(ext, gen.synthesis(fine_mix))
    n = int(differ.sum())
    return {"pairs_with_different_classes": n,
            "coarse_layers": f"0-{coarse - 1}", "fine_layers": f"{coarse}-{num_ws - 1}",
            "coarse_mix_follows_coarse_source": round(float((c_coarse == cb)[differ].mean()), 4)
            if n else None,
            "fine_mix_keeps_base_class": round(float((c_fine == ca)[differ].mean()), 4)
            if n else None}
