"""CPU, memory and (on a GPU) device use of each process, as gauges that survive
prometheus_client's multiprocess mode.

The API's workers and the job worker's children are separate processes whose metrics are
merged from files; prometheus_client's own ``process_*`` collector reports only the process
that answers the scrape. Here each process refreshes its own series every few seconds from
/proc (``liveall``: one series per live pid, dropped when it dies):

- ``ganserve_process_cpu_seconds{pid}``: user + system CPU time so far (use ``rate()``);
- ``ganserve_process_resident_memory_bytes{pid}``;
- ``ganserve_gpu_memory_used_bytes{gpu}`` and ``ganserve_gpu_utilization_ratio{gpu}``, only
  where NVIDIA's NVML (the ``nvidia-ml-py`` package of the gpu extra) finds a device.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from prometheus_client import Gauge

log = logging.getLogger(__name__)
PERIOD_S = 5.0
PROCESS_CPU = Gauge("ganserve_process_cpu_seconds", "CPU time (user + system) of each "
                    "process so far; rate() gives cores in use", ["pid"],
                    multiprocess_mode="liveall")
PROCESS_RSS = Gauge("ganserve_process_resident_memory_bytes", "resident memory of each "
                    "process", ["pid"], multiprocess_mode="liveall")
GPU_MEMORY = Gauge("ganserve_gpu_memory_used_bytes", "GPU memory in use (NVML), per device",
                   ["gpu"], multiprocess_mode="max")
GPU_UTIL = Gauge("ganserve_gpu_utilization_ratio", "GPU busy share over the last sample "
                 "period (NVML), per device", ["gpu"], multiprocess_mode="max")
GPU_METRICS = ("ganserve_gpu_memory_used_bytes", "ganserve_gpu_utilization_ratio")
_started: dict[int, threading.Thread] = {}


def sample_process() -> tuple[float, int]:
    """(CPU seconds, resident bytes) of this process, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / ticks          # utime + stime
    rss_pages = int(Path("/proc/self/statm").read_text().split()[1])
    return cpu, rss_pages * os.sysconf("SC_PAGE_SIZE")


def _nvml() -> Any:
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml
    except Exception:                   # no package, no driver, no device: no GPU series
        return None


def _sample_gpus(nvml: Any) -> None:
    for i in range(nvml.nvmlDeviceGetCount()):
        handle = nvml.nvmlDeviceGetHandleByIndex(i)
        GPU_MEMORY.labels(str(i)).set(nvml.nvmlDeviceGetMemoryInfo(handle).used)
        GPU_UTIL.labels(str(i)).set(nvml.nvmlDeviceGetUtilizationRates(handle).gpu / 100)


def refresh(nvml: Any = None) -> None:
    cpu, rss = sample_process()
    pid = str(os.getpid())
    PROCESS_CPU.labels(pid).set(cpu)
    PROCESS_RSS.labels(pid).set(rss)
    if nvml is not None:
        _sample_gpus(nvml)


def start(period_s: float = PERIOD_S) -> None:
    """Refresh this process's series now and every ``period_s`` (once per process; call
    again after a fork)."""
    pid = os.getpid()
    if pid in _started:
        return
    nvml = _nvml()

    def loop() -> None:
        while True:
            try:
                refresh(nvml)
            except Exception as e:      # /proc unreadable, NVML gone: try again later
                log.debug("process metrics: %s", e)
            time.sleep(period_s)
    refresh(nvml)
    thread = threading.Thread(target=loop, name="process-metrics", daemon=True)
    thread.start()
    _started[pid] = thread
