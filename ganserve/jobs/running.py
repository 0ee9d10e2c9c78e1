"""The jobs running now, as a Redis list beside Celery's queue lists, for autoscalers that
count list lengths (KEDA's Redis list scaler: k8s/overlays/keda). A started job has left its
queue's list, so the queue lists alone would let a busy worker be scaled away; the sum of the
queue lists and this one is the number of workers there is work for.

Each worker adds a job's id when it claims the job and removes it when the job ends, stops or
goes back to its queue; a worker that died leaves its ids behind until any worker's reaper
finds their rows no longer running. It is a scaling hint only: every failure is logged, never
raised, and nothing reads it to decide what a job does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis

log = logging.getLogger(__name__)

RUNNING_LIST = "ganserve:running"


class RunningList:
    """``RUNNING_LIST`` in the broker's Redis; does nothing for another broker (embedded
    mode's SQLite has no autoscaler to tell)."""

    def __init__(self, broker_url: str | None):
        self._client = (redis.Redis.from_url(broker_url, socket_timeout=2,
                                             socket_connect_timeout=2)
                        if broker_url and broker_url.startswith(("redis://", "rediss://"))
                        else None)

    def add(self, job_id: str) -> None:
        self._do("add", job_id, lambda c: c.pipeline().lrem(RUNNING_LIST, 0, job_id)
                 .lpush(RUNNING_LIST, job_id).execute())

    def remove(self, job_id: str) -> None:
        self._do("remove", job_id, lambda c: c.lrem(RUNNING_LIST, 0, job_id))

    def reconcile(self, running: Callable[[str], bool]) -> None:
        """Drop the ids whose job is no longer running (its worker died, the reaper
        requeued or ended it)."""
        def drop_finished(c: redis.Redis) -> None:
            for raw in c.lrange(RUNNING_LIST, 0, -1):
                job_id = raw.decode()
                if not running(job_id):
                    c.lrem(RUNNING_LIST, 0, job_id)
                    log.info("job %s: no longer running; dropped from %s", job_id,
                             RUNNING_LIST)

        self._do("reconcile", "-", drop_finished)

    def _do(self, what: str, job_id: str, op: Callable[[redis.Redis], object]) -> None:
        if self._client is None:
            return
        try:
            op(self._client)
        except redis.RedisError as e:
            log.warning("job %s: %s in %s failed (scaling hint only): %s", job_id, what,
                        RUNNING_LIST, e)
