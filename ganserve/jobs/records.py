"""Job records: one row per job, the source of truth for state, progress, result and error.

``JobStore`` wraps a SQLAlchemy engine (SQLite in the data dir by default, PostgreSQL when
configured). The row also carries the job's *lease*: the worker running it writes a
heartbeat; a delivered message first takes the lease with one conditional UPDATE, so a
message delivered twice runs the job once, and a job whose worker died (stale heartbeat) is
taken over and resumed from its checkpoint.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()


class UTCDateTime(sa.types.TypeDecorator):
    """Timestamps stored in UTC and read back timezone-aware on every backend (SQLite keeps
    no zone)."""
    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> Any:
        return None if value is None else value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> Any:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


jobs = sa.Table(
    "jobs", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("queue", sa.String(16), nullable=False),
    sa.Column("model", sa.String(128), nullable=False, index=True),
    sa.Column("version", sa.String(32)),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("idempotency_key", sa.String(255), unique=True),
    sa.Column("request_hash", sa.String(64)),
    sa.Column("created_at", UTCDateTime, nullable=False, index=True),
    sa.Column("started_at", UTCDateTime),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("progress", sa.JSON),
    sa.Column("result", sa.JSON),
    sa.Column("error", sa.Text),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, default=False),
    sa.Column("lease_owner", sa.String(128)),
    sa.Column("heartbeat_at", UTCDateTime),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
)


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE = (JobState.QUEUED, JobState.RUNNING)
TERMINAL = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


class JobType(enum.StrEnum):
    FINE_TUNE = "fine-tune"
    EVALUATE = "evaluate"
    PROJECT = "project"


# a projection is minutes of CPU at most, like an evaluation: the eval queue's workers
QUEUE_OF = {JobType.FINE_TUNE: "train", JobType.EVALUATE: "eval", JobType.PROJECT: "eval"}


SAMPLED = ("fine-tune", "project")         # job types that show a progress image


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_job_id() -> str:
    return uuid.uuid4().hex


@dataclass
class Job:
    id: str
    type: str
    state: str
    queue: str
    model: str
    version: str | None
    spec: dict[str, Any]
    idempotency_key: str | None
    request_hash: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    updated_at: dt.datetime
    progress: dict[str, Any] | None
    result: dict[str, Any] | None
    error: str | None
    cancel_requested: bool
    lease_owner: str | None
    heartbeat_at: dt.datetime | None
    attempts: int

    @classmethod
    def from_row(cls, row: Any) -> Job:
        return cls(**row._mapping)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    def public(self) -> dict[str, Any]:
        """The record as clients see it (GET /v1/jobs/ID, webhook bodies)."""
        base = f"/v1/jobs/{self.id}"
        return {"id": self.id, "type": self.type, "state": self.state, "model": self.model,
                "version": self.version, "request": self.spec,
                "created_at": _iso(self.created_at), "started_at": _iso(self.started_at),
                "finished_at": _iso(self.finished_at), "updated_at": _iso(self.updated_at),
                "cancel_requested": self.cancel_requested, "attempts": self.attempts,
                "progress": self.progress, "result": self.result, "error": self.error,
                "links": {"self": base, "events": f"{base}/events",
                          "cancel": f"{base}/cancel",
                          "samples": f"{base}/samples.png" if self.type in SAMPLED
                          else None}}


def _iso(t: dt.datetime | None) -> str | None:
    return t.isoformat(timespec="milliseconds") if t is not None else None


class IdempotencyConflict(Exception):
    """The Idempotency-Key was used before with a different request."""

    def __init__(self, job: Job):
        super().__init__(job.id)
        self.job = job
