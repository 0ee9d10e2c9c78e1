"""The Celery application both sides share: its configuration and the task names.

The API publishes "run job <id>" by task *name* (it never imports the torch-side tasks);
the workers register the same names. Settings follow Celery's guide for long jobs:
late acks and reject-on-worker-lost (a message is gone only once its job ended), prefetch 1
(a worker never sits on a job it cannot start), a visibility timeout above the longest job,
soft and hard time limits. The job row's lease, not the broker, stops a job from running twice.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from celery import Celery
from kombu import Exchange, Queue

from ganserve.jobs.records import QUEUE_OF, Job, JobType
from ganserve.settings import SharedSettings

log = logging.getLogger(__name__)
TASK_OF = {JobType.FINE_TUNE: "ganserve.fine_tune", JobType.EVALUATE: "ganserve.evaluate",
           JobType.PROJECT: "ganserve.project"}
QUEUES = tuple(dict.fromkeys(QUEUE_OF.values()))
WORKER_READY = "worker ready"     # a worker logs it once it takes jobs (Celery's line is quiet)


class QueueUnreachable(Exception):
    """The broker did not take the message."""


def celery_config(settings: SharedSettings) -> dict[str, Any]:
    url = settings.resolved_broker_url()
    if url.startswith("sqla+"):
        # Kombu's SQLAlchemy transport hands its options to create_engine; SQLite shared by
        # the API and a worker waits for a lock instead of failing
        transport: dict[str, Any] = {"connect_args": {"timeout": 30}}
    else:
        transport = {"visibility_timeout": settings.visibility_timeout_s}
    if url.startswith(("redis", "rediss")):
        transport |= {"socket_connect_timeout": settings.broker_timeout_s,
                      "socket_timeout": max(settings.broker_timeout_s, 5.0),
                      "retry_on_timeout": False}
    return {
        "broker_url": url,
        "broker_transport_options": transport,
        "broker_connection_timeout": settings.broker_timeout_s,
        "broker_connection_retry_on_startup": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_soft_time_limit": settings.job_soft_time_limit_s,
        "task_time_limit": settings.job_time_limit_s,
        "task_ignore_result": True,            # the job row holds results, not a backend
        "result_backend": None,
        "task_queues": tuple(Queue(q, Exchange(q), routing_key=q) for q in QUEUES),
        "task_default_queue": "eval",
        "task_routes": {TASK_OF[t]: {"queue": q, "routing_key": q} for t, q in QUEUE_OF.items()},
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
        "task_send_sent_event": False,
        "worker_enable_remote_control": not settings.embedded,   # the SQLite broker has none
        "worker_cancel_long_running_tasks_on_connection_loss": False,
    }


def make_celery(settings: SharedSettings) -> Celery:
    if settings.embedded:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = Celery("ganserve", set_as_current=False)
    app.conf.update(celery_config(settings))
    return app


def publish(app: Celery, job: Job) -> None:
    """Send job ``job.id`` to its queue, failing fast (QueueUnreachable) when the broker is
    down instead of retrying for minutes (the connect timeout is the transport's, from
    GANSERVE_BROKER_TIMEOUT_S)."""
    try:
        app.send_task(TASK_OF[JobType(job.type)], args=[job.id], queue=job.queue,
                      task_id=f"{job.id}-{uuid.uuid4().hex[:8]}", retry=False,
                      headers={"job_id": job.id})
    except Exception as e:          # kombu/redis raise many types for "broker unreachable"
        log.warning("job %s: the broker did not take it: %s", job.id, e)
        raise QueueUnreachable(f"the job queue is unreachable ({type(e).__name__}: "
                               f"{str(e)[:200]})") from e
