"""ONNX Runtime session creation shared by the evaluator and the service."""

from __future__ import annotations

import logging
from pathlib import Path

try:
    import onnxruntime as ort
except ImportError as e:                # the package ships without a runtime: pick one
    raise ImportError("ONNX Runtime is not installed: pip install 'ganserve[cpu]', or "
                      "'ganserve[gpu]' on a CUDA host (never both)") from e

from ganserve.cpus import quota_threads

log = logging.getLogger(__name__)


def providers_for(device: str = "auto") -> list[str]:
    """``auto``: CUDA when this onnxruntime build has it, else CPU; ``cuda`` insists."""
    available = ort.get_available_providers()
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "cuda":
        raise RuntimeError("device=cuda but this onnxruntime has no CUDAExecutionProvider "
                           f"(available: {', '.join(available)}); install onnxruntime-gpu")
    return ["CPUExecutionProvider"]


# ONNX Runtime's NCHWc layout rewrites convolutions into blocks as wide as the CPU's vectors
# (16 floats with AVX-512, 8 with AVX2), so the sums run in another order on each family and
# a few pixels round the other way. Without it the convolutions run as im2col + SGEMM, whose
# per-output sums run in one order on both: benchmarks/cross_cpu.py measured AVX-512 against
# AVX2 (qemu EPYC-Milan and Haswell) bit-identical over 2.4 million pixels, for 22-25% of
# StyleGAN's throughput (DCGAN and cGAN: within 3%).
PORTABLE_CONFIG = {"optimization.disable_specified_optimizers": "NchwcTransformer"}


def make_session(path: str | Path, device: str = "auto", intra_op_threads: int = 0,
                 spinning: bool = True,
                 identical_across_cpus: bool = False) -> ort.InferenceSession:
    """``spinning=False`` stops idle ONNX Runtime threads from busy-waiting: in a server the
    event loop needs those cycles between runs. ``identical_across_cpus``: the same bits on
    AVX2 and AVX-512 CPUs (PORTABLE_CONFIG), at some speed."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    for key, value in (PORTABLE_CONFIG.items() if identical_across_cpus else ()):
        opts.add_session_config_entry(key, value)
    # 0 lets ONNX Runtime start a thread per host core, ignoring a container's CPU quota
    threads = intra_op_threads or quota_threads()
    if threads:
        opts.intra_op_num_threads = threads
    if not spinning:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=providers_for(device))
