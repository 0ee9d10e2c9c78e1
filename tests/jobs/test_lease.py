"""The lease as a fence: a worker that lost its job (taken over, cancelled, or cut off from
the database) publishes nothing and stops; the holder publishes exactly one version."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import threading
import time
import types

import pytest
import sqlalchemy as sa

from ganserve.jobs.records import jobs
from ganserve.manifest import list_versions, load_manifest
from ganserve.worker import fine_tune
from ganserve.worker.lease import Lease, Stopped
from tests.jobs.test_store import new


def _take_over(store, job_id: str, owner: str):
    """What another worker does once the first one's heartbeat is stale."""
    with store.engine.begin() as c:
        c.execute(jobs.update().values(heartbeat_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)))
    took = store.claim(job_id, owner, lease_s=30)
    assert took is not None and took.lease_owner == owner


def _lease(store, job_id: str, owner: str) -> Lease:
    return Lease(store, job_id, owner, heartbeat_s=1, shutdown=threading.Event(), lease_s=30)


def test_lease_confirm_refuses_a_worker_whose_job_was_taken_over(records):
    store = records
    job, _ = new(store)
    store.claim(job.id, "a:1:first", lease_s=30)
    first = _lease(store, job.id, "a:1:first")
    first.confirm()                                  # still the holder: no exception
    _take_over(store, job.id, "b:2:second")
    with pytest.raises(Stopped) as e:
        first.confirm()
    assert e.value.reason == "lost"
    _lease(store, job.id, "b:2:second").confirm()    # the new holder passes


def test_lease_confirm_refuses_a_cancelled_job(records):
    store = records
    job, _ = new(store)
    store.claim(job.id, "a", lease_s=30)
    store.request_cancel(job.id)
    with pytest.raises(Stopped) as e:
        _lease(store, job.id, "a").confirm()
    assert e.value.reason == "cancelled"


class _Unreachable:
    """A job store whose database does not answer."""

    def heartbeat(self, *_):
        raise sa.exc.OperationalError("SELECT 1", {}, Exception("connection refused"))

    get = confirm_lease = heartbeat


def test_worker_that_cannot_renew_stops_before_its_lease_can_be_taken():
    lease = Lease(_Unreachable(), "job", "a", heartbeat_s=0.05, shutdown=threading.Event(),
                  lease_s=0.6)
    t0 = time.monotonic()
    with lease:
        assert not lease.lost.wait(0.3)              # a blip is ridden out...
        assert lease.lost.wait(2)                    # ...a long outage stops it
        gave_up = time.monotonic() - t0
        with pytest.raises(Stopped):
            lease.should_stop()
    assert 0.5 <= gave_up < 0.6 + 0.3, gave_up       # before lease_s, plus a beat's slack
    with pytest.raises(Stopped):                     # and a fencing check cannot pass
        _lease(_Unreachable(), "job", "a").confirm()


def test_worker_cut_off_from_the_store_hands_the_message_back(monkeypatch):
    """A delivery that cannot read its job is requeued, not acked away (it was lost before,
    and the job sat queued until the lost-message sweep sent it again)."""
    from celery.exceptions import Reject

    from ganserve.worker import runner

    monkeypatch.setattr(runner, "HAND_BACK_PAUSE_S", 0.01)
    ctx = types.SimpleNamespace(store=_Unreachable(), shutdown=threading.Event())
    ran = []
    with pytest.raises(Reject) as e:
        runner.run_job(ctx, "job", lambda *a: ran.append(a))
    assert e.value.requeue and not ran and not runner.busy()


def _staged(store_dir, tmp_path, job_id: str, version: str = "2"):
    """A staged export of ``job_id`` (a copy of baby-dcgan/1 with the job's record)."""
    staged = tmp_path / "staging" / job_id / "baby-dcgan" / version
    shutil.copytree(store_dir / "baby-dcgan" / "1", staged)
    m = json.loads((staged / "manifest.json").read_text())
    m["version"] = version
    m["training"]["job"] = {"id": job_id}
    (staged / "manifest.json").write_text(json.dumps(m))
    return staged


def test_publish_by_a_worker_that_lost_the_lease_leaves_no_version(records, job_models,
                                                                   tmp_path):
    store = records
    job, _ = new(store)
    store.claim(job.id, "a", lease_s=30)
    first = _lease(store, job.id, "a")
    _take_over(store, job.id, "b")
    model_dir = job_models / "baby-dcgan"
    parent = load_manifest(model_dir / "1")
    with pytest.raises(Stopped):
        fine_tune._publish_staged(job, first, model_dir, _staged(job_models, tmp_path / "a",
                                                                 job.id), parent)
    assert list_versions(model_dir) == ["1"]
    # the holder publishes; a version that appeared meanwhile makes it the next number
    shutil.copytree(model_dir / "1", model_dir / "2")
    m = json.loads((model_dir / "2" / "manifest.json").read_text())
    (model_dir / "2" / "manifest.json").write_text(json.dumps(m | {"version": "2"}))
    final = fine_tune._publish_staged(job, _lease(store, job.id, "b"), model_dir,
                                      _staged(job_models, tmp_path / "b", job.id), parent)
    assert final == model_dir / "3" and load_manifest(final).version == "3"
    # an attempt after that (its worker died before recording success) adopts it
    again = fine_tune._publish_staged(job, _lease(store, job.id, "b"), model_dir,
                                      _staged(job_models, tmp_path / "c", job.id), parent)
    assert again == final and list_versions(model_dir) == ["1", "2", "3"]


class _Hanging(_Unreachable):
    """A database call that hangs (a dead network without resets)."""

    def heartbeat(self, *_):
        time.sleep(1.5)
        return True, False

    def get(self, *_):
        time.sleep(1.5)
        return types.SimpleNamespace(cancel_requested=False)


def test_worker_stops_even_when_its_renewal_hangs():
    lease = Lease(_Hanging(), "job", "a", heartbeat_s=0.05, shutdown=threading.Event(),
                  lease_s=0.6)
    t0 = time.monotonic()
    with pytest.raises(Stopped):
        while time.monotonic() - t0 < 3:
            lease.should_stop()              # the loop's check judges the lease's age itself
            time.sleep(0.05)
    lease._stop.set()
