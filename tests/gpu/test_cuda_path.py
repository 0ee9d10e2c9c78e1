"""The CUDA path: run by ``scripts/gpu_check.sh`` on a machine with an NVIDIA GPU; elsewhere
they skip (``make test``), or fail with GPU_CHECK_REQUIRE_GPU=1 (the check itself: a GPU
machine whose CUDA does not work must not pass by skipping).

The tolerances against the CPU are first guesses, to be replaced by what the first GPU run
measures: the CUDA provider's convolutions (TF32 on Ampere and newer) sum in another order.
"""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from ganserve.onnx_runtime import CUDA_PROVIDER, cuda_problem, run_function
from tests.conftest import baby_run
from tests.service.conftest import REPO, make_client, wait_ready

pytestmark = pytest.mark.gpu
SHIPPED = ("fashion-dcgan", "fashion-cgan", "fashion-stylegan")


def _no_cuda() -> str | None:
    if (problem := cuda_problem()) is not None:
        return f"ONNX Runtime: {problem}"
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    return None if torch.cuda.is_available() else f"torch {torch.__version__} sees no GPU"


@pytest.fixture(scope="module", autouse=True)
def cuda() -> None:
    if (problem := _no_cuda()) is not None:
        if os.environ.get("GPU_CHECK_REQUIRE_GPU"):
            pytest.fail(f"GPU_CHECK_REQUIRE_GPU=1 and no working CUDA: {problem}")
        pytest.skip(f"no working CUDA: {problem}")


@pytest.fixture(scope="module")
def on_gpu_and_cpu():
    with make_client(REPO / "models", device="cuda") as gpu, \
            make_client(REPO / "models", device="cpu") as cpu:
        wait_ready(gpu)
        wait_ready(cpu)
        yield gpu, cpu


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)), dtype=np.int16)


def _sample_diff(gpu, cpu, name: str) -> np.ndarray:
    """|GPU - CPU| grey levels of the same 16 seeds' grid."""
    body = {"seeds": list(range(16)), "truncation_psi": 0.7}
    a = gpu.post(f"/v1/models/{name}/sample", json=body)
    b = cpu.post(f"/v1/models/{name}/sample", json=body)
    assert a.status_code == b.status_code == 200
    return np.abs(_pixels(a.content) - _pixels(b.content))


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_model_is_served_on_cuda(on_gpu_and_cpu, name):
    gpu, cpu = on_gpu_and_cpu
    assert gpu.get(f"/v1/models/{name}").json()["versions"][0]["provider"] == CUDA_PROVIDER
    diff = _sample_diff(gpu, cpu, name)
    assert diff.mean() < 1.0 and diff.max() <= 24, (diff.mean(), diff.max())


@pytest.fixture(scope="module")
def fp16_store(tmp_path_factory):
    """The shipped versions with their float16 twins (as ``export --fp16`` writes them)."""
    import shutil

    from ganserve.manifest import list_versions
    from ganserve.training.fp16 import add_fp16_graphs
    root = tmp_path_factory.mktemp("fp16")
    for name in SHIPPED:
        version = list_versions(REPO / "models" / name)[-1]
        shutil.copytree(REPO / "models" / name / version, root / name / version)
        add_fp16_graphs(root / name / version)
    return root


@pytest.mark.parametrize("name", SHIPPED)
def test_fp16_graphs_are_served_on_cuda_close_to_the_cpu(fp16_store, on_gpu_and_cpu, name):
    _, cpu = on_gpu_and_cpu
    with make_client(fp16_store, device="cuda") as gpu:     # GANSERVE_FP16=auto
        wait_ready(gpu)
        version = gpu.get(f"/v1/models/{name}").json()["versions"][0]
        assert version["provider"] == CUDA_PROVIDER and version["fp16"] is True
        diff = _sample_diff(gpu, cpu, name)
    assert diff.mean() < 1.5 and diff.max() <= 32, (diff.mean(), diff.max())


def test_gpu_batching_defaults_apply(on_gpu_and_cpu):
    gpu, _ = on_gpu_and_cpu
    batching = gpu.get("/v1/models/fashion-dcgan").json()["versions"][0]["batching"]
    assert batching == {"max_batch_rows": 256, "max_batch_delay_ms": 1.0}


@pytest.mark.parametrize("name", SHIPPED)
def test_io_binding_on_cuda_gives_the_plain_runs_numbers(on_gpu_and_cpu, name):
    gpu, _ = on_gpu_and_cpu
    lv = gpu.app.state.registry.models[name][next(iter(gpu.app.state.registry.models[name]))]
    gen = lv.generator
    z = gen.latents(list(range(8)))
    graph = "mapping" if lv.manifest.family_spec.w_space else "generator"
    sess = gen.sessions[graph]
    feeds = {"z": z}
    if graph == "generator" and lv.manifest.conditional:
        from ganserve.generator import class_weights
        feeds["class"] = class_weights(np.arange(8) % lv.manifest.num_classes,
                                       lv.manifest.num_classes)
    np.testing.assert_allclose(run_function(sess, True)(feeds), run_function(sess, False)(feeds),
                               atol=1e-6)


@pytest.mark.parametrize("family", ["dcgan", "cgan", "stylegan"])
def test_training_on_cuda_with_amp(tmp_path, idx_dir, family):
    import json
    run = baby_run(tmp_path, family, idx_dir, steps=4, device="cuda", precision="bf16")
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows and all(np.isfinite(v) for r in rows for k, v in r.items()
                        if k.startswith("loss") and isinstance(v, float)), rows[-1]
