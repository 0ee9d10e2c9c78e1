"""The GPU check's CPU side: it refuses loudly where CUDA is not really used, and its
measuring code runs (on the CPU here) so that a GPU session only has to run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))


def test_gpu_check_refuses_a_machine_without_a_gpu(tmp_path):
    env = {**os.environ, "PATH": f"{tmp_path}:/usr/bin:/bin"}      # no nvidia-smi there
    r = subprocess.run(["bash", "scripts/gpu_check.sh"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "no NVIDIA GPU" in r.stderr, r.stdout + r.stderr


def test_gpu_check_refuses_a_gpu_that_onnx_runtime_cannot_use(tmp_path):
    fake = tmp_path / "nvidia-smi"                  # a GPU is listed, CUDA does not work
    fake.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA Fake'\n")
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}",
           "GPU_CHECK_NO_INSTALL": "1"}       # never touch this venv's packages
    r = subprocess.run(["bash", "scripts/gpu_check.sh"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "tests marked gpu" not in r.stdout, r.stdout + r.stderr
    assert "CUDA is not really used" in r.stderr and "no CUDA provider" in r.stderr, r.stderr


def test_gpu_bench_refuses_without_cuda():
    r = subprocess.run([sys.executable, "benchmarks/gpu_bench.py"], cwd=REPO,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "CUDA is not really used" in r.stderr, r.stderr[-2000:]


def test_gpu_bench_measures_on_the_cpu(tmp_path, baby_exports):
    """Its raw and served measurements, run on the CPU: the code a GPU session will run."""
    import gpu_bench
    vdir = gpu_bench.with_fp16(baby_exports["dcgan"], tmp_path)
    assert gpu_bench.raw_images_per_s(vdir, "cpu", True, 0.2) > 0
    assert gpu_bench.raw_images_per_s(vdir, "cpu", False, 0.2, fp16=True) > 0
    with pytest.raises(RuntimeError, match="no float16 graphs"):
        gpu_bench.raw_images_per_s(baby_exports["dcgan"], "cpu", False, 0.2, fp16=True)
    out = gpu_bench.served(vdir, "cpu", 0.5, tmp_path)
    assert out["provider"] == "CPUExecutionProvider" and out["n1_ips"] > 0
    assert out["fp16"] is False             # auto: float16 on a GPU only
    assert out["n64_ips"] > 0 and out["n64_p99"] > 0 and out["n1_p99"] > 0
    with pytest.raises(gpu_bench.NotOnCuda, match="would not start with GANSERVE_DEVICE=cuda"):
        gpu_bench.served(vdir, "cuda", 0.5, tmp_path / "cuda")
