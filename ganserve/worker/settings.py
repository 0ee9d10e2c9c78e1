"""The job worker's settings: the shared base and what only a worker reads (where it trains,
its /metrics address).

Namesakes, one concept at several layers (settings): ``ganserve.settings``: the base every
process shares; ``ganserve.service.settings``: the API's, which extends it;
``ganserve.worker.settings``: the job worker's, which extends it.
"""

from __future__ import annotations

from pydantic import Field

from ganserve.settings import SharedSettings


class WorkerSettings(SharedSettings):
    train_device: str = Field("cpu", pattern="^(cpu|cuda|auto)$", description="where "
                              "fine-tunes train: cpu, cuda (torch's CUDA build and a GPU; the "
                              "GPU worker image sets it) or auto (cuda when torch sees one)")
    worker_metrics_port: int = Field(9101, ge=0, le=65535, description="a worker's "
                                     "Prometheus /metrics port (0 = off)")
    worker_metrics_host: str = Field("127.0.0.1", min_length=1, description="the address "
                                     "a worker's /metrics listens on (the images set "
                                     "0.0.0.0: Prometheus scrapes from another container)")
