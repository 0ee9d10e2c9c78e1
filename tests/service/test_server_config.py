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
