"""Float16 twins of a version's ONNX graphs, for GPUs.

A GPU runs float16 convolutions on its tensor cores at several times the float32 rate and
moves half the bytes; a CPU gains nothing (ONNX Runtime's CPU provider casts most float16
operators back to float32). Each graph ``NAME.onnx`` gets ``NAME.fp16.onnx`` beside it:
weights and activations in float16, inputs and outputs still float32, so the service feeds
and reads both the same way. The conversion is onnxconverter-common's (Microsoft's, the one
ONNX Runtime's own docs use), which keeps a graph's float32 interface and knows the operators
that must stay float32.

Before a twin is published it must reproduce its float32 graph on the pipeline's own inputs
(batches 1 and 7) within ``FP16_PARITY_TOL`` (image units; one grey level is 2/255 = 0.0078)
and give only finite numbers: the worst difference goes into the manifest's ``parity_fp16``.
The check runs on the CPU here (ONNX Runtime executes the float16 graph there, slowly); the
GPU's own float16 kernels are compared with the CPU's float32 pixels by ``tests/gpu``.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import onnx
from onnxconverter_common import float16

from ganserve.generator import OnnxGenerator
from ganserve.manifest import hash_files, write_manifest
from ganserve.onnx_runtime import make_session

log = logging.getLogger(__name__)
# measured on the shipped models: 0.0016 (StyleGAN mapping) to 0.0065 (DCGAN)
FP16_PARITY_TOL = 0.02
PARITY_ROWS = (1, 7)


class Fp16Error(Exception):
    """A float16 graph that does not reproduce its float32 one."""


def fp16_name(file: str) -> str:
    """``generator.onnx`` -> ``generator.fp16.onnx``."""
    return file[:-len(".onnx")] + ".fp16.onnx" if file.endswith(".onnx") else file + ".fp16"


def convert(src: Path, dst: Path) -> None:
    """Write ``src``'s graph with float16 weights and activations, float32 inputs/outputs."""
    model = onnx.load(str(src))
    with warnings.catch_warnings():     # "the float32 number 2.5e-08 will be truncated to
        warnings.simplefilter("ignore")  # 1e-07": tiny weights, clamped as intended
        half = float16.convert_float_to_float16(model, keep_io_types=True)
    onnx.save(half, str(dst))


def parity(gen: OnnxGenerator, graph: str, path: Path) -> float:
    """Max |float16 graph - float32 graph| over the parity batches; inf when not finite."""
    session = make_session(path, device="cpu")
    worst = 0.0
    for rows in PARITY_ROWS:
        feeds = gen.example_feeds(graph, rows)
        want = gen.sessions[graph].run(None, feeds)[0]
        got = session.run(None, feeds)[0]
        if got.shape != want.shape or not np.isfinite(got).all():
            return float("inf")
        worst = max(worst, float(np.abs(got - want).max()))
    return worst


def add_fp16_graphs(version_dir: str | Path, tol: float = FP16_PARITY_TOL) -> dict[str, float]:
    """Give every graph of the version in ``version_dir`` its float16 twin, checked, and
    rewrite its manifest (names, parity, sha256s). For a version being exported (before it
    is placed in the store) or a private copy: a published version is never changed.
    Returns the parity per graph; raises Fp16Error (and writes nothing) past ``tol``."""
    vdir = Path(version_dir)
    gen = OnnxGenerator(vdir, device="cpu", verify=True)
    m = gen.manifest
    written, result = [], {}
    try:
        for name, spec in m.graphs.items():
            file = fp16_name(spec.file)
            convert(vdir / spec.file, vdir / file)
            written.append(vdir / file)
            diff = parity(gen, name, vdir / file)
            log.info("%s: fp16 parity max |fp16 - fp32| = %.3g (rows %s)", name, diff,
                     PARITY_ROWS)
            if not diff <= tol:
                raise Fp16Error(f"{name}: the float16 graph differs from float32 by {diff:.3g} "
                                f"(> {tol:g}); not exporting float16 graphs")
            result[name] = diff
    except BaseException:
        for p in written:
            p.unlink(missing_ok=True)
        raise
    for spec in m.graphs.values():
        spec.fp16_file = fp16_name(spec.file)
    m.parity_fp16 = result
    m.files = hash_files(vdir, sorted(set(m.files) | {p.name for p in written}))
    write_manifest(vdir, m)
    return result

