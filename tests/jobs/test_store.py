"""Job records on both backends (SQLite in a folder, the machine's PostgreSQL): migrations,
idempotency, the lease that makes a duplicate delivery a no-op, stale jobs, cancel."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import sqlalchemy as sa

from ganserve.jobs.migrate import current_revision, upgrade
from ganserve.jobs.records import IdempotencyConflict, JobState, jobs
from ganserve.jobs.store import JobStore


@pytest.fixture
def store(records):
    """The job records (conftest's ``records``, on both backends) under this file's name."""
    return records


def new(store, key=None, spec=None):
    return store.create("fine-tune", "train", "m", "1", spec or {"steps": 1}, key,
                        str(spec or {"steps": 1}))


def test_migrations_run_once_and_are_idempotent(store):
    upgrade(store.engine)
    assert current_revision(store.engine) == "0001"
    assert sa.inspect(store.engine).has_table("jobs")


def test_concurrent_migrations_do_not_collide(tmp_path):
    url = f"sqlite:///{tmp_path / 'race.sqlite'}"
    errors = []

    def run():
        try:
            upgrade(JobStore.from_url(url).engine)
        except Exception as e:         # pragma: no cover - what the test looks for
            errors.append(e)
    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert current_revision(JobStore.from_url(url).engine) == "0001"


def test_create_returns_aware_timestamps(store):
    job, created = new(store)
    assert created and job.state == JobState.QUEUED
    assert job.created_at.tzinfo is not None
    assert abs((dt.datetime.now(dt.UTC) - job.created_at).total_seconds()) < 60


def test_idempotency_key_same_request_same_job(store):
    a, created_a = new(store, key="k")
    b, created_b = new(store, key="k")
    assert created_a and not created_b and a.id == b.id


def test_idempotency_key_other_request_conflicts(store):
    new(store, key="k")
    with pytest.raises(IdempotencyConflict):
        new(store, key="k", spec={"steps": 2})


def test_second_claim_of_a_leased_job_fails(store):
    job, _ = new(store)
    assert store.claim(job.id, "w1", lease_s=30).state == JobState.RUNNING
    assert store.claim(job.id, "w2", lease_s=30) is None      # a duplicate delivery
    assert store.get(job.id).attempts == 1


def test_racing_claims_have_one_winner(store):
    job, _ = new(store)
    wins = []
    barrier = threading.Barrier(6)

    def claim(i):
        barrier.wait()
        if store.claim(job.id, f"w{i}", lease_s=30) is not None:
            wins.append(i)
    threads = [threading.Thread(target=claim, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1


def test_stale_lease_is_taken_over(store):
    job, _ = new(store)
    store.claim(job.id, "dead", lease_s=30)
    with store.engine.begin() as c:
        c.execute(jobs.update().values(heartbeat_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)))
    assert [j.id for j in store.stale(lease_s=30)] == [job.id]
    assert store.heartbeat(job.id, "dead") == (True, False)   # its own beat still works...
    with store.engine.begin() as c:
        c.execute(jobs.update().values(heartbeat_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)))
    took = store.claim(job.id, "w2", lease_s=30)
    assert took is not None and took.attempts == 2 and took.lease_owner == "w2"
    assert store.heartbeat(job.id, "dead") == (False, False)  # ...until someone took over


def test_requeue_stale_once(store):
    job, _ = new(store)
    store.claim(job.id, "dead", lease_s=30)
    with store.engine.begin() as c:
        c.execute(jobs.update().values(heartbeat_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)))
    stale = store.stale(lease_s=30)[0]
    assert store.requeue_stale(stale, lease_s=30)
    assert not store.requeue_stale(stale, lease_s=30)         # a second reaper: no
    assert store.get(job.id).state == JobState.QUEUED
    assert store.claim(job.id, "w3", lease_s=30) is not None


def test_finish_only_by_the_lease_holder(store):
    job, _ = new(store)
    store.claim(job.id, "w1", lease_s=30)
    assert not store.finish(job.id, "w2", JobState.SUCCEEDED, result={})
    assert store.finish(job.id, "w1", JobState.SUCCEEDED, result={"v": "2"})
    done = store.get(job.id)
    assert done.state == JobState.SUCCEEDED and done.result == {"v": "2"} and done.finished_at
    assert store.claim(job.id, "w3", lease_s=0) is None       # over: never runs again


def test_cancel_queued_at_once_running_by_flag(store):
    queued, _ = new(store)
    after, now_cancelled = store.request_cancel(queued.id)
    assert after.state == JobState.CANCELLED and now_cancelled
    assert store.request_cancel(queued.id)[1] is False        # a second cancel: not again
    running, _ = new(store)
    store.claim(running.id, "w1", lease_s=30)
    after, now_cancelled = store.request_cancel(running.id)
    assert after.state == JobState.RUNNING and after.cancel_requested and not now_cancelled
    assert store.heartbeat(running.id, "w1") == (True, True)


def test_list_newest_first_with_cursor(store):
    made = [new(store)[0] for _ in range(5)]
    page = store.list(limit=3)
    assert [j.id for j in page] == [j.id for j in made[::-1][:3]]
    rest = store.list(limit=3, before=(page[-1].created_at, page[-1].id))
    assert [j.id for j in rest] == [j.id for j in made[::-1][3:]]
    assert store.counts() == {("train", "queued"): 5}


def test_migrations_build_exactly_the_declared_table(store):
    """The migration is a frozen copy of records.jobs: autogenerate finds nothing to add."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from ganserve.jobs.records import metadata

    with store.engine.connect() as c:
        assert compare_metadata(MigrationContext.configure(c), metadata) == []
