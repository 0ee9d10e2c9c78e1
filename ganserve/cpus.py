"""How many CPUs this process may really use: affinity, capped by the container's quota."""

from __future__ import annotations

import math
import os
from pathlib import Path


def available_cpus(cgroup_root: Path = Path("/sys/fs/cgroup")) -> int:
    """The CPUs this process may use: its affinity (taskset, cpusets), capped by the
    container's CPU quota (a Kubernetes limit, ``docker run --cpus``), rounded up: a pod
    limited to 2 CPUs on a 64-core node gets 2, not 64."""
    cpus = affinity_cpus()
    quota = cgroup_cpu_quota(cgroup_root)
    return max(1, min(cpus, math.ceil(quota))) if quota else cpus


def affinity_cpus() -> int:
    """The CPUs this process may be scheduled on (taskset, cpusets), quota aside."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                         # not on Linux
        return os.cpu_count() or 1


def cgroup_cpu_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs' worth of quota from cgroup v2 (``cpu.max``: "max 100000" or "200000 100000")
    or v1 (``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``); None when unlimited or unknown."""
    try:
        v2 = root / "cpu.max"
        if v2.is_file():
            quota, period = v2.read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        q, p = root / "cpu" / "cpu.cfs_quota_us", root / "cpu" / "cpu.cfs_period_us"
        if q.is_file() and p.is_file():
            quota_us, period_us = int(q.read_text()), int(p.read_text())
            return None if quota_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None
    return None


def quota_threads(cgroup_root: Path = Path("/sys/fs/cgroup")) -> int:
    """Threads for a runtime left to its own default (0) -- unless a CPU quota caps this
    process below its CPUs, then that many (ONNX Runtime's default is a thread per physical
    core of the host, which a 2-CPU container on a 64-core node would oversubscribe)."""
    capped = available_cpus(cgroup_root)
    return capped if capped < affinity_cpus() else 0
