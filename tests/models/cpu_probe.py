"""Raw generator outputs of the shipped models, for a bitwise comparison between CPU families:
``python -m tests.models.cpu_probe OUT.npz [--identical-across-cpus]`` (also run under
``qemu-x86_64 -cpu EPYC-Milan``, an AVX2-only Zen 3, by test_cross_cpu.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ganserve.generator import OnnxGenerator
from ganserve.manifest import list_versions

REPO = Path(__file__).resolve().parents[2]
SEEDS = list(range(16))


def outputs(identical_across_cpus: bool) -> dict[str, np.ndarray]:
    out = {}
    for model in ("fashion-dcgan", "fashion-cgan", "fashion-stylegan"):
        vdir = REPO / "models" / model / list_versions(REPO / "models" / model)[-1]
        g = OnnxGenerator(vdir, device="cpu", verify=False, intra_op_threads=1,
                          identical_across_cpus=identical_across_cpus)
        classes = np.arange(len(SEEDS)) % g.manifest.num_classes if g.manifest.conditional \
            else None
        out[model] = g.generate_z(g.latents(SEEDS), classes)
    return out


if __name__ == "__main__":
    np.savez(sys.argv[1], **outputs("--identical-across-cpus" in sys.argv[2:]))
