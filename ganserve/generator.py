"""Generate images from an exported model version with ONNX Runtime alone (no torch).

This is the reference pipeline from seeds to pixels: seed -> z (``ganserve.latents``);
StyleGAN: z -> mapping -> w, truncation ``w_avg + psi * (w - w_avg)``, broadcast to
``num_ws`` rows (style mixing swaps rows), -> synthesis -> image; DCGAN/cGAN: z (, class)
-> generator -> image. The service batches the same steps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ganserve.latents import z_from_seeds
from ganserve.manifest import Manifest, load_manifest, verify_files
from ganserve.onnx_runtime import make_session


def class_weights(classes: np.ndarray | list, num_classes: int) -> np.ndarray:
    """Class indices [B] -> one-hot [B, K] float32; weights [B, K] pass through."""
    c = np.asarray(classes)
    if c.ndim == 2:
        return c.astype(np.float32)
    return np.eye(num_classes, dtype=np.float32)[c.astype(np.int64)]


class OnnxGenerator:
    def __init__(self, version_dir: str | Path, device: str = "auto", verify: bool = True,
                 intra_op_threads: int = 0, spinning: bool = True,
                 identical_across_cpus: bool = False, cpu_mem_arena: bool = True,
                 fp16: bool = False):
        """``fp16``: run the version's float16 graphs (when it has them: see ``self.fp16``)."""
        self.dir = Path(version_dir)
        self.manifest: Manifest = load_manifest(self.dir)
        if verify:
            verify_files(self.dir, self.manifest)
        self.fp16 = fp16 and self.manifest.has_fp16
        self.sessions = {name: make_session(self.dir / (g.fp16_file if self.fp16 and g.fp16_file
                                                        else g.file),
                                            device, intra_op_threads, spinning,
                                            identical_across_cpus, cpu_mem_arena)
                         for name, g in self.manifest.graphs.items()}
        m = self.manifest
        self.w_avg = np.asarray(m.w_avg, np.float32) if m.w_avg is not None else None

    @property
    def family(self) -> str:
        return self.manifest.family

    def manifest_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        m = self.manifest
        return (m.channels, m.resolution, m.resolution)

    def latents(self, seeds: list[int]) -> np.ndarray:
        return z_from_seeds(seeds, self.manifest.z_dim)

    def example_feeds(self, graph: str, rows: int) -> dict[str, np.ndarray]:
        """Inputs for ``graph`` as the pipeline feeds it (seeds 10,000..., w from the mapping
        for the synthesis, classes in turn; random images for the encoder): to warm up,
        probe or check a graph."""
        if graph == "encoder":
            m = self.manifest
            rng = np.random.default_rng(10_000)
            return {"image": rng.uniform(-1, 1, (rows, m.channels, m.resolution, m.resolution)
                                         ).astype(np.float32)}
        z = self.latents(list(range(10_000, 10_000 + rows)))
        if graph == "mapping":
            return {"z": z}
        if graph == "synthesis":
            return {"ws": self.broadcast(self.mapping(z))}
        feeds = {"z": z}
        if self.manifest.conditional:
            k = self.manifest.num_classes
            feeds["class"] = class_weights(np.arange(rows) % k, k)
        return feeds

    # -- StyleGAN pieces, composable for interpolation and style mixing
    def mapping(self, z: np.ndarray) -> np.ndarray:
        return self.sessions["mapping"].run(None, {"z": z.astype(np.float32)})[0]

    def truncate(self, w: np.ndarray, psi: float) -> np.ndarray:
        if psi == 1.0:
            return w
        return (self.w_avg + np.float32(psi) * (w - self.w_avg)).astype(np.float32)

    def broadcast(self, w: np.ndarray) -> np.ndarray:
        return np.repeat(w[:, None, :], self.manifest.num_ws, axis=1)

    def synthesis(self, ws: np.ndarray) -> np.ndarray:
        return self.sessions["synthesis"].run(None, {"ws": ws.astype(np.float32)})[0]

    # -- one call for every family
    def generate_z(self, z: np.ndarray, classes: np.ndarray | None = None,
                   psi: float = 1.0) -> np.ndarray:
        """float32 NCHW images (not clipped) for latents ``z`` [B, z_dim]."""
        m = self.manifest
        if m.family_spec.w_space:
            return self.synthesis(self.broadcast(self.truncate(self.mapping(z), psi)))
        feeds = {"z": z.astype(np.float32)}
        if m.conditional:
            if classes is None:
                raise ValueError(f"{m.name} is conditional: pass a class per sample")
            feeds["class"] = class_weights(classes, m.num_classes)
        return self.sessions["generator"].run(None, feeds)[0]

    def generate(self, seeds: list[int], classes: list[int] | None = None, psi: float = 1.0,
                 batch: int = 256) -> np.ndarray:
        out = []
        for i in range(0, len(seeds), batch):
            cls = None if classes is None else np.asarray(classes[i:i + batch], np.int64)
            out.append(self.generate_z(self.latents(seeds[i:i + batch]), cls, psi))
        return np.concatenate(out) if out else np.zeros((0,), np.float32)
