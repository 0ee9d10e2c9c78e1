"""How `ganserve serve` shares the machine between its worker processes."""

import pytest

from ganserve.service.server import threads_per_worker


@pytest.mark.parametrize(("configured", "workers", "cpus", "want"), [
    (0, 1, 2, 2),      # one worker: every core
    (0, 2, 2, 1),      # two workers on two cores: one thread each, no oversubscription
    (0, 4, 2, 1),      # more workers than cores: still at least one
    (0, 2, 16, 8),
    (3, 2, 2, 3),      # an explicit setting wins
])
def test_threads_per_worker_shares_cores_when_auto(configured, workers, cpus, want):
    assert threads_per_worker(configured, workers, cpus) == want


@pytest.mark.parametrize(("files", "quota"), [
    ({"cpu.max": "max 100000\n"}, None),                       # v2, unlimited
    ({"cpu.max": "200000 100000\n"}, 2.0),                     # v2, --cpus 2
    ({"cpu.max": "50000 100000\n"}, 0.5),
    ({"cpu/cpu.cfs_quota_us": "150000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1.5),  # v1
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    ({}, None),                                                # no cgroup files
    ({"cpu.max": "garbage"}, None),
])
def test_cgroup_cpu_quota_v1_and_v2(tmp_path, files, quota):
    from ganserve.cpus import cgroup_cpu_quota
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cgroup_cpu_quota(tmp_path) == quota


def test_available_cpus_follow_the_container_quota(tmp_path, monkeypatch):
    """ONNX Runtime's threads follow the CPU the container is given, not the host's cores."""
    import os

    from ganserve.cpus import available_cpus
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert available_cpus(tmp_path) == 2                       # 1.5 CPUs, rounded up
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert available_cpus(tmp_path) == 64
    assert threads_per_worker(0, 2, available_cpus(tmp_path)) == 32


def test_quota_threads_only_when_the_quota_caps(tmp_path, monkeypatch):
    import os

    from ganserve.cpus import quota_threads
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))
    assert quota_threads(tmp_path) == 0                        # no cgroup: runtime default
    (tmp_path / "cpu.max").write_text("200000 100000\n")
    assert quota_threads(tmp_path) == 2
    (tmp_path / "cpu.max").write_text("12800000 100000\n")     # 128 CPUs of quota > 64
    assert quota_threads(tmp_path) == 0


def test_batching_is_per_device_and_per_model(tmp_path):
    from ganserve.service.settings import Settings
    s = Settings(models_dir=tmp_path, model_batching={
        "big": {"max_batch_rows": 16, "max_batch_delay_ms": 8}, "quick": {"max_batch_delay_ms": 0}})
    assert s.batching("other", on_gpu=False) == (64, 2.0)
    assert s.batching("other", on_gpu=True) == (256, 1.0)       # bigger batches, shorter waits
    assert s.batching("big", on_gpu=True) == (16, 8.0)
    assert s.batching("quick", on_gpu=False) == (64, 0.0)       # unset fields: the device's


def test_batching_from_the_environment_and_its_mistakes(tmp_path, monkeypatch):
    from pydantic import ValidationError

    from ganserve.service.settings import Settings
    monkeypatch.setenv("GANSERVE_MODEL_BATCHING", '{"m": {"max_batch_rows": 8}}')
    assert Settings(models_dir=tmp_path).batching("m", on_gpu=False) == (8, 2.0)
    monkeypatch.setenv("GANSERVE_MODEL_BATCHING", '{"m": {"max_rows": 8}}')
    with pytest.raises(ValidationError, match="max_rows"):
        Settings(models_dir=tmp_path)
    monkeypatch.setenv("GANSERVE_MODEL_BATCHING", '{"m": {"max_batch_rows": 0}}')
    with pytest.raises(ValidationError, match="max_batch_rows"):
        Settings(models_dir=tmp_path)


def test_a_models_batching_reaches_its_batcher_and_config(store):
    from tests.service.conftest import make_client, wait_ready
    with make_client(store, model_batching={"baby-dcgan": {"max_batch_rows": 8,
                                                           "max_batch_delay_ms": 50}}) as c:
        wait_ready(c)
        lv = c.app.state.registry.models["baby-dcgan"]["1"]
        assert (lv.batchers["generator"].max_rows, lv.batchers["generator"].max_delay_s) == \
            (8, 0.05)
        other = c.app.state.registry.models["baby-cgan"]["1"]
        assert other.batchers["generator"].max_rows == 64
        batching = c.get("/v2/models/baby-dcgan/config").json()["dynamic_batching"]
        assert batching == {"preferred_batch_size": [8], "max_queue_delay_microseconds": 50000}
        info = c.get("/v1/models/baby-dcgan").json()
        assert info["versions"][0]["batching"] == {"max_batch_rows": 8,
                                                   "max_batch_delay_ms": 50.0}
        assert type(info["versions"][0]["batching"]["max_batch_rows"]) is int
        r = c.post("/v1/models/baby-dcgan/sample", json={"seeds": list(range(20))})
        assert r.status_code == 200           # 20 rows: three runs of at most 8


def test_io_binding_gives_the_same_images(store):
    """IO binding (on by default on a GPU) is checked here on the CPU: same bytes."""
    import numpy as np

    from ganserve.onnx_runtime import run_function
    from tests.service.conftest import make_client, wait_ready
    with make_client(store, io_binding="on") as bound, make_client(store) as plain:
        wait_ready(bound)
        wait_ready(plain)
        for name in ("baby-dcgan", "baby-cgan", "baby-stylegan"):
            body = {"seeds": [1, 2, 3], "truncation_psi": 0.7}
            a = bound.post(f"/v1/models/{name}/sample", json=body)
            b = plain.post(f"/v1/models/{name}/sample", json=body)
            assert a.status_code == 200 and a.content == b.content, name
        lv = bound.app.state.registry.models["baby-dcgan"]["1"]
        sess = lv.generator.sessions["generator"]
        z = lv.generator.latents([4, 5])
        assert np.array_equal(run_function(sess, True)({"z": z}),
                              run_function(sess, False)({"z": z}))


def test_without_the_cpu_arena_the_images_are_the_same(store):
    from tests.service.conftest import make_client, wait_ready
    with make_client(store, cpu_mem_arena=False) as lean, make_client(store) as plain:
        wait_ready(lean)
        wait_ready(plain)
        sess = lean.app.state.registry.models["baby-stylegan"]["1"].generator.sessions
        assert not sess["synthesis"].get_session_options().enable_cpu_mem_arena
        body = {"seeds": list(range(8))}
        for name in ("baby-dcgan", "baby-stylegan"):
            assert lean.post(f"/v1/models/{name}/sample", json=body).content == \
                plain.post(f"/v1/models/{name}/sample", json=body).content
