"""ONNX Runtime session creation shared by the evaluator and the service."""

from __future__ import annotations

import ctypes
import logging
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

try:
    import onnxruntime as ort
except ImportError as e:                # the package ships without a runtime: pick one
    raise ImportError("ONNX Runtime is not installed: pip install 'ganserve[cpu]', or "
                      "'ganserve[gpu]' on a CUDA host (never both)") from e

from ganserve.cpus import quota_threads

log = logging.getLogger(__name__)


CUDA_PROVIDER = "CUDAExecutionProvider"
# what ONNX Runtime's CUDA provider opens when a session starts rather than when it is loaded
# (not in its ELF NEEDED list): cuDNN 9 for onnxruntime-gpu 1.2x-1.3x
LAZY_CUDA_LIBS = ("libcudnn.so.9",)


class DeviceUnavailable(RuntimeError):
    """``device=cuda`` was asked for and ONNX Runtime cannot run on the GPU here."""


def cuda_problem() -> str | None:
    """Why ONNX Runtime's CUDA provider cannot start on this machine, in a few words (e.g.
    "libcudart.so.13 not found"); None when its libraries load. ONNX Runtime itself only logs
    the failure and carries on on the CPU, so the provider's library is opened here the way
    it opens it, and the loader's first complaint is kept."""
    if CUDA_PROVIDER not in ort.get_available_providers():
        return (f"this onnxruntime {ort.__version__} has no CUDA provider (install "
                "onnxruntime-gpu, not onnxruntime)")
    capi = Path(ort.__file__).parent / "capi"
    try:
        ctypes.CDLL(str(capi / "libonnxruntime_providers_shared.so"), mode=ctypes.RTLD_GLOBAL)
        ctypes.CDLL(str(capi / "libonnxruntime_providers_cuda.so"))
        for lib in LAZY_CUDA_LIBS:
            ctypes.CDLL(lib)
    except OSError as e:
        return _loader_complaint(str(e))
    return _driver_too_old()


def _driver_too_old() -> str | None:
    """The driver's CUDA version (cuDriverGetVersion: no cuInit, no side effects) against
    the one this onnxruntime was built for: an older driver loads, then fails every session."""
    try:
        from onnxruntime.capi import build_and_package_info as info
        built = tuple(int(x) for x in str(info.cuda_version).split(".")[:2])
        version = ctypes.c_int(0)
        if ctypes.CDLL("libcuda.so.1").cuDriverGetVersion(ctypes.byref(version)) != 0:
            return None
    except (ImportError, AttributeError, ValueError, OSError):
        return None                     # nothing to compare: let the session say
    have = (version.value // 1000, version.value % 1000 // 10)
    if have < built:
        return (f"the NVIDIA driver supports CUDA {have[0]}.{have[1]}, this onnxruntime needs "
                f"{built[0]}.{built[1]} (update the driver)")
    return None


def _loader_complaint(message: str) -> str:
    """``libX.so.N: cannot open shared object file: No such file or directory`` ->
    ``libX.so.N not found``; anything else as the loader said it."""
    m = re.search(r"([\w.+-]+\.so[\w.]*): cannot open shared object file", message)
    return f"{m.group(1)} not found" if m else message


def require_device(device: str) -> None:
    """Refuse (DeviceUnavailable, one line) when ``device=cuda`` cannot be had; log what
    ``auto`` will run on."""
    if device == "cpu":
        return
    problem = cuda_problem()
    if device == "cuda" and problem:
        raise DeviceUnavailable(f"device=cuda, but ONNX Runtime's CUDA provider cannot "
                                f"start: {problem}")
    if device == "auto":
        log.info("device=auto: ONNX Runtime runs on %s", "the GPU (CUDA)" if problem is None
                 else f"the CPU ({problem})")


def providers_for(device: str = "auto") -> list[str]:
    """``auto``: CUDA when this onnxruntime build has it, else CPU; ``cuda`` insists."""
    available = ort.get_available_providers()
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if CUDA_PROVIDER in available:
        return [CUDA_PROVIDER, "CPUExecutionProvider"]
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
                 identical_across_cpus: bool = False,
                 cpu_mem_arena: bool = True) -> ort.InferenceSession:
    """``spinning=False`` stops idle ONNX Runtime threads from busy-waiting: in a server the
    event loop needs those cycles between runs. ``identical_across_cpus``: the same bits on
    AVX2 and AVX-512 CPUs (PORTABLE_CONFIG), at some speed. ``cpu_mem_arena=False``: no
    arena keeping the largest batch's activations (less memory held, bigger runs slower)."""
    opts = ort.SessionOptions()
    opts.enable_cpu_mem_arena = cpu_mem_arena
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
    session = ort.InferenceSession(str(path), sess_options=opts, providers=providers_for(device))
    got = session.get_providers()
    if device == "cuda" and got[0] != CUDA_PROVIDER:
        # the provider loaded but this session fell back (no device visible, out of memory,
        # an operator it lacks...): ONNX Runtime's own error above says which
        raise DeviceUnavailable(f"device=cuda, but ONNX Runtime ran {Path(path).name} on "
                                f"{', '.join(got)} ({cuda_problem() or 'see its error above'})")
    return session


def run_function(session: ort.InferenceSession, io_binding: bool
                 ) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    """A graph's output for some feeds, as one array: a graph with several outputs of shape
    [B, n_i] (the encoder's latent and class logits) gives them side by side, [B, sum n_i],
    so rows batch and split as one (the caller splits the columns by the manifest's shapes).
    ``io_binding``: through ONNX Runtime's IO binding, the outputs allocated on the
    session's device and copied to the host once (on CUDA ``session.run`` stages them
    through another copy); the same numbers either way."""
    outputs = [o.name for o in session.get_outputs()]
    join = ((lambda arrays: arrays[0]) if len(outputs) == 1
            else (lambda arrays: np.concatenate(arrays, axis=1)))
    if not io_binding:
        return lambda feeds: join(session.run(None, feeds))
    device = "cuda" if session.get_providers()[0] == CUDA_PROVIDER else "cpu"

    def run(feeds: dict[str, np.ndarray]) -> np.ndarray:
        binding = session.io_binding()
        for name, value in feeds.items():
            binding.bind_cpu_input(name, np.ascontiguousarray(value))
        for name in outputs:
            binding.bind_output(name, device)
        session.run_with_iobinding(binding)
        return join(binding.copy_outputs_to_cpu())
    return run
