"""``JobStore``: every read and write of job rows, each one short transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ganserve.jobs.records import (
    ACTIVE,
    IdempotencyConflict,
    Job,
    JobState,
    jobs,
    new_job_id,
    now,
)


def make_engine(url: str) -> Engine:
    """An engine for ``url``. SQLite, shared by the API's processes and a worker, gets WAL
    (readers never wait for the writer) and a busy timeout instead of "database is locked"."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(conn: Any, _record: Any) -> None:
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()
        return engine
    # a database behind a dead network must fail calls, not hang them: a worker judges its
    # lease by how long renewals have failed (TCP keepalives notice a silent peer)
    args = ({"connect_timeout": 5, "keepalives": 1, "keepalives_idle": 5,
             "keepalives_interval": 2, "keepalives_count": 3}
            if url.startswith("postgresql") else {})
    return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5,
                            connect_args=args)


class JobStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    @classmethod
    def from_url(cls, url: str) -> JobStore:
        return cls(make_engine(url))

    def after_fork(self) -> None:
        """In a forked child: drop the parent's pooled connections without closing them."""
        self.engine.dispose(close=False)

    # -- creating and reading ------------------------------------------------------------
    def create(self, type: str, queue: str, model: str, version: str | None,
               spec: dict[str, Any], idempotency_key: str | None = None,
               request_hash: str | None = None) -> tuple[Job, bool]:
        """Insert a queued job -> (job, created). With an idempotency key already used for
        the same request: (that job, False); for another request: IdempotencyConflict."""
        if idempotency_key is not None:
            found = self.by_idempotency_key(idempotency_key)
            if found is not None:
                return self._same_request(found, request_hash), False
        t = now()
        row = dict(id=new_job_id(), type=type, state=JobState.QUEUED.value, queue=queue,
                   model=model, version=version, spec=spec, idempotency_key=idempotency_key,
                   request_hash=request_hash, created_at=t, updated_at=t,
                   cancel_requested=False, attempts=0)
        try:
            with self.engine.begin() as c:
                c.execute(jobs.insert().values(**row))
        except sa.exc.IntegrityError:       # the same key raced us in another process
            found = self.by_idempotency_key(idempotency_key or "")
            if found is None:
                raise
            return self._same_request(found, request_hash), False
        return self.get(row["id"]), True

    @staticmethod
    def _same_request(job: Job, request_hash: str | None) -> Job:
        if job.request_hash != request_hash:
            raise IdempotencyConflict(job)
        return job

    def get(self, job_id: str) -> Job | None:
        with self.engine.connect() as c:
            row = c.execute(jobs.select().where(jobs.c.id == job_id)).first()
        return Job.from_row(row) if row is not None else None

    def by_idempotency_key(self, key: str) -> Job | None:
        with self.engine.connect() as c:
            row = c.execute(jobs.select().where(jobs.c.idempotency_key == key)).first()
        return Job.from_row(row) if row is not None else None

    def list(self, *, state: str | None = None, type: str | None = None,
             model: str | None = None, limit: int = 50,
             before: tuple[dt.datetime, str] | None = None) -> list[Job]:
        """Newest first; ``before`` = (created_at, id) of the last job of the previous page."""
        q = jobs.select()
        for col, value in ((jobs.c.state, state), (jobs.c.type, type), (jobs.c.model, model)):
            if value is not None:
                q = q.where(col == value)
        if before is not None:
            t, jid = before
            q = q.where(sa.or_(jobs.c.created_at < t,
                               sa.and_(jobs.c.created_at == t, jobs.c.id < jid)))
        q = q.order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(limit)
        with self.engine.connect() as c:
            return [Job.from_row(r) for r in c.execute(q)]

    def active_for(self, model: str, version: str) -> list[Job]:
        """Queued or running jobs that read ``model/version`` (its base or its subject)."""
        q = jobs.select().where(sa.and_(jobs.c.model == model, jobs.c.version == version,
                                        jobs.c.state.in_([s.value for s in ACTIVE])))
        with self.engine.connect() as c:
            return [Job.from_row(r) for r in c.execute(q)]

    def active(self) -> list[Job]:
        """Every queued or running job."""
        q = jobs.select().where(jobs.c.state.in_([s.value for s in ACTIVE]))
        with self.engine.connect() as c:
            return [Job.from_row(r) for r in c.execute(q)]

    def delete(self, job_id: str) -> None:
        with self.engine.begin() as c:
            c.execute(jobs.delete().where(jobs.c.id == job_id))

    def counts(self) -> dict[tuple[str, str], int]:
        """(queue, state) -> jobs, for the active states: the queue-length gauges."""
        q = (sa.select(jobs.c.queue, jobs.c.state, sa.func.count())
             .where(jobs.c.state.in_([s.value for s in ACTIVE]))
             .group_by(jobs.c.queue, jobs.c.state))
        with self.engine.connect() as c:
            return {(qn, st): n for qn, st, n in c.execute(q)}

    # -- the lease -----------------------------------------------------------------------
    def claim(self, job_id: str, owner: str, lease_s: float) -> Job | None:
        """Take the job's lease if it is active, not cancelled, and nobody holds a fresh
        one: -> the job (now running, attempts + 1), or None (someone else runs it, or it
        is over). One conditional UPDATE, so two deliveries cannot both win."""
        t = now()
        stale = t - dt.timedelta(seconds=lease_s)
        cond = sa.and_(jobs.c.id == job_id,
                       jobs.c.state.in_([s.value for s in ACTIVE]),
                       jobs.c.cancel_requested.is_(False),
                       sa.or_(jobs.c.lease_owner.is_(None), jobs.c.lease_owner == owner,
                              jobs.c.heartbeat_at.is_(None), jobs.c.heartbeat_at < stale))
        with self.engine.begin() as c:
            n = c.execute(jobs.update().where(cond).values(
                state=JobState.RUNNING.value, lease_owner=owner, heartbeat_at=t,
                attempts=jobs.c.attempts + 1, updated_at=t,
                started_at=sa.func.coalesce(jobs.c.started_at, t))).rowcount
        return self.get(job_id) if n == 1 else None

    def heartbeat(self, job_id: str, owner: str) -> tuple[bool, bool]:
        """Refresh the lease -> (still ours, cancel requested)."""
        t = now()
        with self.engine.begin() as c:
            n = c.execute(jobs.update().where(
                sa.and_(jobs.c.id == job_id, jobs.c.lease_owner == owner,
                        jobs.c.state == JobState.RUNNING.value))
                .values(heartbeat_at=t)).rowcount
            cancel = c.execute(sa.select(jobs.c.cancel_requested)
                               .where(jobs.c.id == job_id)).scalar()
        return n == 1, bool(cancel)

    def confirm_lease(self, job_id: str, owner: str) -> tuple[bool, bool]:
        """The fencing check before a side effect outside the database (publishing a
        version): renew the lease only if ``owner`` still holds it, the job still runs and
        nobody asked to cancel it -> whether all of that held. ``owner`` is unique per claim
        (host:pid:random), so it is the lease's fencing token: a worker that lost the job,
        even to a later claim of its own process, fails this check. -> (confirmed, cancel
        requested)."""
        t = now()
        with self.engine.begin() as c:
            n = c.execute(jobs.update().where(
                sa.and_(jobs.c.id == job_id, jobs.c.lease_owner == owner,
                        jobs.c.state == JobState.RUNNING.value,
                        jobs.c.cancel_requested.is_(False)))
                .values(heartbeat_at=t)).rowcount
            cancel = c.execute(sa.select(jobs.c.cancel_requested)
                               .where(jobs.c.id == job_id)).scalar()
        return n == 1, bool(cancel)

    def stale(self, lease_s: float) -> list[Job]:
        """Running jobs whose worker stopped heartbeating: to be redelivered."""
        cutoff = now() - dt.timedelta(seconds=lease_s)
        q = jobs.select().where(sa.and_(jobs.c.state == JobState.RUNNING.value,
                                        jobs.c.heartbeat_at < cutoff))
        with self.engine.connect() as c:
            return [Job.from_row(r) for r in c.execute(q)]

    def requeue_stale(self, job: Job, lease_s: float) -> bool:
        """Hand a dead worker's job back to the queue (state queued, no lease) if it is still
        stale -> whether this caller did it (and must publish its message)."""
        cutoff = now() - dt.timedelta(seconds=lease_s)
        with self.engine.begin() as c:
            n = c.execute(jobs.update().where(sa.and_(
                jobs.c.id == job.id, jobs.c.state == JobState.RUNNING.value,
                jobs.c.heartbeat_at < cutoff))
                .values(state=JobState.QUEUED.value, lease_owner=None, heartbeat_at=None,
                        updated_at=now())).rowcount
        return n == 1

    def waiting(self, queues: list[str], older_than_s: float) -> list[Job]:
        """Queued jobs of ``queues`` untouched for ``older_than_s``: candidates for a lost
        message (the reaper asks only while its worker is idle)."""
        cutoff = now() - dt.timedelta(seconds=older_than_s)
        q = jobs.select().where(sa.and_(jobs.c.state == JobState.QUEUED.value,
                                        jobs.c.queue.in_(queues), jobs.c.updated_at < cutoff,
                                        jobs.c.cancel_requested.is_(False)))
        with self.engine.connect() as c:
            return [Job.from_row(r) for r in c.execute(q.order_by(jobs.c.created_at))]

    def touch_if_unchanged(self, job: Job) -> bool:
        """Bump ``updated_at`` if nobody changed the row since ``job`` was read -> whether
        this caller did (and so is the one to resend its message)."""
        with self.engine.begin() as c:
            n = c.execute(jobs.update().where(sa.and_(
                jobs.c.id == job.id, jobs.c.state == JobState.QUEUED.value,
                jobs.c.updated_at == job.updated_at)).values(updated_at=now())).rowcount
        return n == 1

    def mark_stale(self, job_id: str) -> None:
        """Undo ``requeue_stale`` when its message could not be sent: the next sweep retries."""
        with self.engine.begin() as c:
            c.execute(jobs.update().where(sa.and_(jobs.c.id == job_id,
                                                  jobs.c.state == JobState.QUEUED.value,
                                                  jobs.c.lease_owner.is_(None)))
                      .values(state=JobState.RUNNING.value,
                              heartbeat_at=dt.datetime(1970, 1, 1, tzinfo=dt.UTC)))

    def release(self, job_id: str, owner: str) -> None:
        """Give the lease up without finishing (a worker shutting down): the job stays
        running with a stale heartbeat, so the next worker takes it over and resumes. A
        clean release does not count as an attempt (attempts cap worker deaths)."""
        with self.engine.begin() as c:
            c.execute(jobs.update().where(sa.and_(jobs.c.id == job_id,
                                                  jobs.c.lease_owner == owner))
                      .values(lease_owner=None, attempts=jobs.c.attempts - 1,
                              heartbeat_at=dt.datetime(1970, 1, 1, tzinfo=dt.UTC)))

    # -- progress and the end ------------------------------------------------------------
    def set_progress(self, job_id: str, owner: str, progress: dict[str, Any]) -> None:
        t = now()
        with self.engine.begin() as c:
            c.execute(jobs.update().where(sa.and_(jobs.c.id == job_id,
                                                  jobs.c.lease_owner == owner))
                      .values(progress=progress, updated_at=t, heartbeat_at=t))

    def finish(self, job_id: str, owner: str | None, state: JobState,
               result: dict[str, Any] | None = None, error: str | None = None) -> bool:
        """Move an active job to a final state (only its lease holder may, when ``owner``
        is given) -> whether it moved."""
        t = now()
        cond = sa.and_(jobs.c.id == job_id, jobs.c.state.in_([s.value for s in ACTIVE]))
        if owner is not None:
            cond = sa.and_(cond, jobs.c.lease_owner == owner)
        with self.engine.begin() as c:
            n = c.execute(jobs.update().where(cond).values(
                state=state.value, result=result, error=error, finished_at=t, updated_at=t,
                lease_owner=None)).rowcount
        return n == 1

    def request_cancel(self, job_id: str) -> tuple[Job | None, bool]:
        """A queued job is cancelled at once (it will never start); a running one gets the
        flag its worker checks at each step. -> (the job after the change or None if
        unknown, whether this call cancelled a queued job)."""
        t = now()
        with self.engine.begin() as c:
            n = c.execute(jobs.update().where(sa.and_(
                jobs.c.id == job_id, jobs.c.state == JobState.QUEUED.value,
                sa.or_(jobs.c.lease_owner.is_(None), jobs.c.heartbeat_at.is_(None))))
                .values(state=JobState.CANCELLED.value, cancel_requested=True, finished_at=t,
                        updated_at=t, error="cancelled before it started")).rowcount
            c.execute(jobs.update().where(sa.and_(
                jobs.c.id == job_id, jobs.c.state.in_([s.value for s in ACTIVE])))
                .values(cancel_requested=True, updated_at=t))
        return self.get(job_id), n == 1

    def ids(self, states: Iterable[str]) -> list[str]:
        with self.engine.connect() as c:
            return list(c.execute(sa.select(jobs.c.id).where(jobs.c.state.in_(list(states))))
                        .scalars())
