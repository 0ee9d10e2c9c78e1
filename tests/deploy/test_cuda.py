"""The GPU images' CUDA versions agree, and a GPU build that cannot reach the GPU refuses to
serve. The pinned onnxruntime-gpu is installed for real (from PyPI, next to the project's
packages) on this CPU-only machine: its CUDA provider is in the build, its CUDA libraries are
not here, so `device=cuda` must stop with one line naming what is missing, and `device=auto`
must say it runs on the CPU."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.deploy.files import REPO
from tests.service.conftest import free_port

CONSTRAINTS = REPO / "requirements" / "constraints.txt"


def pinned(package: str) -> str:
    found = re.search(rf"^{re.escape(package)}==(\S+)$", CONSTRAINTS.read_text(), re.M)
    assert found, f"{package} is not pinned in {CONSTRAINTS.name}"
    return found.group(1)


def dockerfile_arg(name: str) -> str:
    found = re.search(rf"^ARG {name}=(\S+)$", (REPO / "Dockerfile").read_text(), re.M)
    assert found, f"the Dockerfile has no ARG {name}"
    return found.group(1)


@pytest.fixture(scope="module")
def ort_gpu(tmp_path_factory) -> Path:
    """The pinned onnxruntime-gpu, installed alone into a folder that goes first on
    PYTHONPATH (its dependencies are the project's own, already in the venv)."""
    target = tmp_path_factory.mktemp("ort-gpu")
    wheels = tmp_path_factory.mktemp("wheels")
    version = pinned("onnxruntime-gpu")
    r = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "--only-binary=:all:", "-d", str(wheels), f"onnxruntime-gpu=={version}"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    wheel = next(wheels.glob("onnxruntime_gpu-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        z.extractall(target)
    return target


def gpu_env(ort_gpu: Path, device: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ort_gpu), str(REPO)]),
            "GANSERVE_DEVICE": device, "GANSERVE_MODELS_DIR": str(REPO / "models"),
            "GANSERVE_DATA_DIR": "/nonexistent-never-created"}


def test_gpu_base_cuda_major_is_what_onnxruntime_gpu_and_torch_were_built_for(ort_gpu):
    info = (ort_gpu / "onnxruntime" / "capi" / "build_and_package_info.py").read_text()
    ort_cuda = re.search(r"cuda_version = '(\d+)\.(\d+)'", info)
    assert ort_cuda, info
    base = re.search(r"nvidia/cuda:(\d+)\.(\d+)\.\d+-cudnn-runtime-", dockerfile_arg("CUDA_IMAGE"))
    assert base, dockerfile_arg("CUDA_IMAGE")
    torch_index = re.search(r"/whl/cu(\d+?)(\d)$", dockerfile_arg("TORCH_CUDA_INDEX"))
    assert torch_index, dockerfile_arg("TORCH_CUDA_INDEX")
    majors = {"base image": base.group(1), "onnxruntime-gpu": ort_cuda.group(1),
              "torch": torch_index.group(1)}
    assert len(set(majors.values())) == 1, f"CUDA majors differ: {majors}"
    # a runtime at least as new as the minor the packages were built against
    assert int(base.group(2)) >= max(int(ort_cuda.group(2)), int(torch_index.group(2)))


def test_gpu_build_is_what_the_check_runs(ort_gpu):
    r = subprocess.run([sys.executable, "-c", "import onnxruntime as o; "
                        "print(o.__file__, o.get_available_providers())"],
                       env=gpu_env(ort_gpu, "cuda"), capture_output=True, text=True, timeout=60)
    assert str(ort_gpu) in r.stdout and "CUDAExecutionProvider" in r.stdout, r.stdout + r.stderr


def test_serve_refuses_device_cuda_without_cuda_in_one_line(ort_gpu):
    r = subprocess.run([sys.executable, "-m", "ganserve.cli", "serve", "--port", str(free_port())],
                       env=gpu_env(ort_gpu, "cuda"), capture_output=True, text=True,
                       timeout=120, cwd=REPO)
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert re.search(r"device=cuda.*: lib\S+\.so\.\d+ not found$", lines[0]), lines[0]


def test_device_auto_says_it_runs_on_the_cpu_and_why(ort_gpu):
    code = ("import logging; logging.basicConfig(level=logging.INFO); "
            "from ganserve.onnx_runtime import require_device; require_device('auto')")
    r = subprocess.run([sys.executable, "-c", code], env=gpu_env(ort_gpu, "auto"),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert re.search(r"device=auto: ONNX Runtime runs on the CPU \(lib\S+ not found\)",
                     r.stderr), r.stderr


# the Python and glibc each Ubuntu release of the CUDA base ships
UBUNTU = {"ubuntu24.04": ("3.12", 39), "ubuntu22.04": ("3.10", 35)}


def test_gpu_api_dependency_set_resolves_for_the_bases_python(tmp_path):
    """The api-gpu image installs the gpu extra, pinned, with the CUDA base's own Python
    (Ubuntu's, not the 3.11 the pins were frozen on): resolved here for that Python and
    platform, wheels only, as the image's pip would (metadata only, nothing installed)."""
    release = dockerfile_arg("CUDA_IMAGE").rsplit("-", 1)[-1]
    python, glibc = UBUNTU[release]
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(subprocess.run(
        [sys.executable, str(REPO / "scripts" / "deps.py"), "gpu"], capture_output=True,
        text=True, check=True).stdout)
    platforms = [a for m in range(17, glibc + 1) for a in ("--platform", f"manylinux_2_{m}_x86_64")]
    report = tmp_path / "report.json"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--dry-run",
                        "--ignore-installed", "--only-binary=:all:", "--implementation", "cp",
                        "--python-version", python, *platforms,
                        "--platform", "manylinux2014_x86_64", "--target", str(tmp_path / "t"),
                        "-c", str(CONSTRAINTS), "-r", str(requirements), "--report", str(report)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    installed = {i["metadata"]["name"].lower(): i["metadata"]["version"]
                 for i in json.loads(report.read_text())["install"]}
    assert installed["onnxruntime-gpu"] == pinned("onnxruntime-gpu")
    assert "onnxruntime" not in installed           # never both runtimes in one image


def test_a_driver_older_than_the_build_is_named(ort_gpu, tmp_path):
    """A driver for CUDA 12.8 under a CUDA 13 onnxruntime-gpu: the libraries load, every
    session would fall back to the CPU; the check says which driver CUDA it found."""
    source = tmp_path / "fake_cuda.c"
    source.write_text("int cuDriverGetVersion(int *v) { *v = 12080; return 0; }\n")
    lib = tmp_path / "libcuda.so.1"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(lib), str(source)], check=True)
    code = "from ganserve.onnx_runtime import _driver_too_old; print(_driver_too_old())"
    env = gpu_env(ort_gpu, "cuda") | {"LD_LIBRARY_PATH": str(tmp_path)}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.stdout.strip() == ("the NVIDIA driver supports CUDA 12.8, this onnxruntime needs "
                                "13.0 (update the driver)"), r.stdout + r.stderr
