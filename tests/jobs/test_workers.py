"""Jobs end to end with real processes: `ganserve serve` + `ganserve worker` on the
machine's Redis (or a redis-server of the test's own, which it stops), records in SQLite or
the machine's PostgreSQL; embedded mode with no Redis at all."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import pytest
import redis
import sqlalchemy as sa

from ganserve.jobs.queue import WORKER_READY, make_celery, publish
from ganserve.jobs.running import RUNNING_LIST
from ganserve.jobs.store import JobStore
from ganserve.manifest import list_versions, load_manifest
from ganserve.process_metrics import GPU_METRICS
from ganserve.training.fp16 import add_fp16_graphs
from ganserve.webhooks import verify
from ganserve.worker.settings import WorkerSettings
from tests.deploy.files import dashboard_metrics, sampled_names
from tests.jobs.conftest import FAST_LEASE, REPO, fine_tune_body, wait_job
from tests.service import crafted

pytestmark = pytest.mark.slow


def env_for(models, data, broker: str | None, db: str | None = None, **extra) -> dict:
    e = {"GANSERVE_MODELS_DIR": str(models), "GANSERVE_DATA_DIR": str(data), **extra}
    if broker:
        e["GANSERVE_BROKER_URL"] = broker
    if db:
        e["GANSERVE_DATABASE_URL"] = db
    return e


def submit(url: str, body: dict, kind: str = "fine-tune") -> dict:
    r = httpx.post(f"{url}/v1/jobs/{kind}", json=body, timeout=30)
    assert r.status_code == 202, r.text
    return r.json()


def sse_events(url: str, job_id: str, timeout: float = 120) -> list[tuple[str, dict]]:
    out = []
    with httpx.stream("GET", f"{url}/v1/jobs/{job_id}/events", timeout=timeout) as r:
        assert r.status_code == 200
        event = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event:
                out.append((event, json.loads(line[6:])))
                if event == "end":
                    break
    return out


def wait_version(url: str, name: str, version: str, timeout: float = 30) -> dict:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        info = httpx.get(f"{url}/v1/models/{name}", timeout=5).json()
        if any(v["version"] == version and v["status"] == "ready" for v in info["versions"]):
            return info
        time.sleep(0.2)
    raise TimeoutError(f"{name}/{version} not served")


def test_fine_tune_job_end_to_end_new_version_served(job_models, data_dir, redis_url,
                                                     job_server, worker_factory):
    env = env_for(job_models, data_dir, redis_url)
    server = job_server(job_models, env)
    worker = worker_factory(env)
    job = submit(server.url, fine_tune_body())
    events = sse_events(server.url, job["id"])
    kinds = [e for e, _ in events]
    assert kinds[0] == "state" and kinds[-1] == "end" and "progress" in kinds
    final = events[-1][1]
    assert final["state"] == "succeeded", final
    result = final["result"]
    assert result["model"] == "baby-dcgan" and result["version"] == "2"
    assert result["parent"] == "baby-dcgan/1" and result["steps"] == 12
    assert {"precision", "recall", "target_share", "near_copy_share"} <= set(result["quality"])
    assert final["progress"]["step"] == 12 and final["attempts"] == 1
    # before the first step an event says what the job is doing; after it, ETA and losses
    progress = [d for e, d in events if e == "progress"]
    assert all(d["stage"] == "starting" and d["activity"]
               for d in progress if d.get("step") == 0), progress
    stepped = [d for d in progress if d.get("step", 0) >= 1]
    assert stepped and all(d["eta_s"] is not None and d["losses"] for d in stepped), stepped
    assert 0 <= final["progress"]["quality"]["target_share"] <= 1   # the in-training figure
    # served with no restart, and it generates
    wait_version(server.url, "baby-dcgan", "2")
    r = httpx.post(f"{server.url}/v1/models/baby-dcgan/sample",
                   json={"seeds": [1, 2], "version": "2"}, timeout=10)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    m = load_manifest(job_models / "baby-dcgan" / "2")
    assert m.parent == "baby-dcgan/1"
    assert m.training.model_extra["job"]["id"] == job["id"]
    assert m.training.model_extra["job"]["dataset"] == {"path": "idx", "classes": ["class3"]}
    png = httpx.get(f"{server.url}/v1/jobs/{job['id']}/samples.png", timeout=5)
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (data_dir / "jobs" / job["id"] / "run" / "checkpoint.pt").exists()
    metrics = httpx.get(f"http://127.0.0.1:{worker.metrics_port}/metrics", timeout=5).text
    assert 'ganserve_jobs_finished_total{state="succeeded",type="fine-tune"} 1.0' in metrics
    assert "ganserve_job_duration_seconds_count" in metrics
    # the Grafana dashboard queries only metrics these processes export (GPU ones on a GPU)
    api_metrics = httpx.get(f"{server.url}/metrics", timeout=5).text
    exported = sampled_names(metrics) | sampled_names(api_metrics)
    missing = dashboard_metrics() - exported - set(GPU_METRICS)
    assert not missing, f"the dashboard queries metrics nobody exports: {sorted(missing)}"


def test_evaluate_job_equals_cli_numbers_on_postgresql(job_models, data_dir, redis_url,
                                                       pg_url, job_server, worker_factory):
    env = env_for(job_models, data_dir, redis_url, pg_url)
    server = job_server(job_models, env)
    worker_factory(env, queues="eval")
    job = submit(server.url, {"model": "baby-dcgan", "n": 64, "seed": 3,
                              "reference": {"path": "idx"}}, "evaluate")
    done = wait_job(server.url, job["id"], ("succeeded",))
    cli = subprocess.run([sys.executable, "-m", "ganserve", "evaluate",
                          str(job_models / "baby-dcgan" / "1"), "--n", "64", "--seed", "3",
                          "--data", str(data_dir / "datasets" / "idx"), "--json"],
                         cwd=REPO, capture_output=True, text=True, check=True)
    expected = json.loads(cli.stdout)
    for key in ("fid", "kid", "kid_std", "precision", "recall", "class_histogram",
                "memorization", "n", "seed"):
        assert done["result"][key] == expected[key], key
    assert (job_models / "baby-dcgan" / "_evaluations" / "1").is_dir()


def test_cancel_running_fine_tune_leaves_no_version(job_models, data_dir, redis_url,
                                                    job_server, worker_factory):
    env = env_for(job_models, data_dir, redis_url)
    server = job_server(job_models, env)
    worker_factory(env)
    job = submit(server.url, fine_tune_body(steps=90_000, checkpoint_every=50))
    wait_job(server.url, job["id"], ("running",),
             until=lambda j: (j["progress"] or {}).get("step", 0) > 20)
    t0 = time.monotonic()
    r = httpx.post(f"{server.url}/v1/jobs/{job['id']}/cancel", timeout=5)
    assert r.status_code == 202 and r.json()["cancel_requested"]
    done = wait_job(server.url, job["id"], ("cancelled",), timeout=30)
    assert time.monotonic() - t0 < 10
    assert done["result"] is None
    assert list_versions(job_models / "baby-dcgan") == ["1"]
    assert not (data_dir / "jobs" / job["id"]).exists()


def test_killed_worker_job_resumes_from_checkpoint_once(job_models, data_dir, redis_url,
                                                        job_server, worker_factory):
    env = env_for(job_models, data_dir, redis_url, **FAST_LEASE)
    server = job_server(job_models, env)
    first = worker_factory(env)
    job = submit(server.url, fine_tune_body(steps=500, checkpoint_every=50,
                                            sample_every=100))
    wait_job(server.url, job["id"], ("running",),
             until=lambda j: (j["progress"] or {}).get("step", 0) >= 120)
    first.kill()
    second = worker_factory(env)
    done = wait_job(server.url, job["id"], ("succeeded",), timeout=120)
    assert done["attempts"] == 2 and done["result"]["steps"] == 500
    assert "resumed" in second.output() and "at step 0" not in second.output()
    assert list_versions(job_models / "baby-dcgan") == ["1", "2"]


def test_worker_sigterm_checkpoints_and_next_worker_resumes(job_models, data_dir, redis_url,
                                                            job_server, worker_factory):
    env = env_for(job_models, data_dir, redis_url, **FAST_LEASE)
    server = job_server(job_models, env)
    first = worker_factory(env)
    job = submit(server.url, fine_tune_body(steps=400, checkpoint_every=1000))
    wait_job(server.url, job["id"], ("running",),
             until=lambda j: (j["progress"] or {}).get("step", 0) >= 60)
    broker = redis.Redis.from_url(redis_url)
    # what KEDA counts (k8s/overlays/keda): running jobs in their own list, waiting ones in
    # their queue's
    assert broker.lrange(RUNNING_LIST, 0, -1) == [job["id"].encode()]
    assert broker.llen("train") == 0
    assert first.stop(timeout=30) == 0          # warm shutdown: the job checkpointed
    assert "checkpoint kept" in first.output()
    # back in its queue's list, out of the running one, with no worker left to requeue it
    assert broker.llen("train") == 1 and broker.llen(RUNNING_LIST) == 0
    second = worker_factory(env)
    done = wait_job(server.url, job["id"], ("succeeded",), timeout=120)
    assert done["attempts"] == 1            # a clean hand-over is not a failed attempt
    assert "resumed" in second.output() and "at step 0" not in second.output()
    assert list_versions(job_models / "baby-dcgan") == ["1", "2"]


def test_duplicate_delivery_runs_the_job_once(job_models, data_dir, redis_url, job_server,
                                              worker_factory):
    env = env_for(job_models, data_dir, redis_url)
    server = job_server(job_models, env)
    job = submit(server.url, fine_tune_body(steps=40))
    settings = WorkerSettings(models_dir=job_models, data_dir=data_dir, broker_url=redis_url)
    record = JobStore.from_url(settings.resolved_database_url()).get(job["id"])
    publish(make_celery(settings), record)           # the same job, delivered twice
    worker = worker_factory(env, concurrency=2)
    done = wait_job(server.url, job["id"], ("succeeded",))
    time.sleep(1)
    assert done["attempts"] == 1
    assert "duplicate delivery dropped" in worker.output()
    assert list_versions(job_models / "baby-dcgan") == ["1", "2"]


def test_broker_down_inference_ok_submission_503_then_recovers(job_models, data_dir,
                                                              own_redis, job_server):
    env = env_for(job_models, data_dir, own_redis.url)
    server = job_server(job_models, env)
    assert submit(server.url, fine_tune_body())["state"] == "queued"
    own_redis.stop()
    sample = httpx.post(f"{server.url}/v1/models/baby-dcgan/sample", json={"seeds": [1]},
                        timeout=10)
    assert sample.status_code == 200
    t0 = time.monotonic()
    r = httpx.post(f"{server.url}/v1/jobs/fine-tune", json=fine_tune_body(), timeout=30)
    assert r.status_code == 503 and r.json()["error"]["code"] == "queue_unreachable"
    assert "unreachable" in r.json()["error"]["message"] and r.headers["retry-after"]
    assert time.monotonic() - t0 < 10
    listed = httpx.get(f"{server.url}/v1/jobs", timeout=5)
    assert listed.status_code == 200 and len(listed.json()["jobs"]) == 1
    own_redis.start()
    t0 = time.monotonic()
    while True:
        r = httpx.post(f"{server.url}/v1/jobs/fine-tune", json=fine_tune_body(), timeout=30)
        if r.status_code == 202 or time.monotonic() - t0 > 20:
            break
        time.sleep(0.5)
    assert r.status_code == 202, r.text


def test_embedded_mode_end_to_end_without_redis(job_models, data_dir, job_server,
                                                webhook_receiver):
    env = env_for(job_models, data_dir, None, GANSERVE_EMBEDDED_WORKER="true",
                  GANSERVE_WORKER_METRICS_PORT="0", GANSERVE_LOG_LEVEL="INFO",
                  GANSERVE_WEBHOOK_ALLOWED_HOSTS="127.0.0.1/32",
                  GANSERVE_WEBHOOK_SECRET="e2e-secret", GANSERVE_WEBHOOK_PROGRESS_INTERVAL_S="0")
    webhook_receiver.answers = [500]            # the first delivery is retried
    add_fp16_graphs(job_models / "baby-cgan" / "1")     # a parent with float16 twins
    server = job_server(job_models, env)
    # an uploaded dataset holding one of the conditional model's classes, by id
    r = httpx.post(f"{server.url}/v1/datasets", timeout=30, files={
        "file": ("c3.zip", crafted.classes_zip({"class3": 16}), "application/zip")})
    assert r.status_code == 201, r.text
    job = submit(server.url, fine_tune_body(model="baby-cgan", dataset={"id": r.json()["id"]},
                                            webhook={"url": webhook_receiver.url}))
    done = wait_job(server.url, job["id"], ("succeeded",), timeout=120)
    # the worker's webhooks: start (retried once), progress, completed; all signed
    t0 = time.monotonic()
    while "completed" not in webhook_receiver.events() and time.monotonic() - t0 < 20:
        time.sleep(0.1)
    events = webhook_receiver.events()
    assert events[:2] == ["start", "start"] and "progress" in events, events
    assert events[-1] == "completed"
    last = webhook_receiver.calls[-1]
    assert verify(b"e2e-secret", last["headers"]["X-Ganserve-Signature"], last["body"])
    assert json.loads(last["body"])["job"]["state"] == "succeeded"
    assert done["result"]["version"] == "2"
    child = load_manifest(job_models / "baby-cgan" / "2")
    assert child.class_names == load_manifest(job_models / "baby-cgan" / "1").class_names
    assert child.has_fp16 and child.parity_fp16                 # what its parent had
    wait_version(server.url, "baby-cgan", "2")
    assert (data_dir / "broker.sqlite").is_file() and (data_dir / "jobs.sqlite").is_file()
    assert server.stop() == 0
    out = server.output()
    assert "embedded mode" in out and "embedded worker stopped" in out


def test_idle_embedded_worker_stops_at_once_on_a_group_sigterm(job_models, data_dir,
                                                               job_server):
    """A stop sent to the whole process group (a terminal's Ctrl-C, a container stop) reaches
    the idle pool children too: they stop at once instead of waiting to be killed."""
    import os
    import signal

    env = env_for(job_models, data_dir, None, GANSERVE_EMBEDDED_WORKER="true",
                  GANSERVE_WORKER_METRICS_PORT="0", GANSERVE_LOG_LEVEL="INFO")
    server = job_server(job_models, env)
    t0 = time.monotonic()
    while WORKER_READY not in server.output() and time.monotonic() - t0 < 60:
        time.sleep(0.2)
    assert WORKER_READY in server.output(), server.output()[-2000:]
    t0 = time.monotonic()
    os.killpg(server.proc.pid, signal.SIGTERM)
    server.proc.wait(timeout=50)
    assert time.monotonic() - t0 < 30, "the stop waited for the worker to be killed"
    assert "did not stop in" not in server.output()


def test_worker_cut_off_from_the_database_leaves_one_version_to_the_lease_holder(
        job_models, data_dir, redis_url, pg_url, pg_link, job_server, worker_factory):
    """Fencing: the first worker reaches PostgreSQL through a link that is cut mid-job. It
    stops itself before its lease can be taken over; a second worker takes the job over
    and resumes it; the link comes back. Exactly one version is published, by the holder."""
    env = env_for(job_models, data_dir, redis_url, pg_url, **FAST_LEASE)
    server = job_server(job_models, env)
    through_link = sa.make_url(pg_url).set(port=pg_link.port).render_as_string(
        hide_password=False)
    first = worker_factory({**env, "GANSERVE_DATABASE_URL": through_link})
    # long enough that the first worker is still training when its lease runs out (lease
    # minus a beat, 4 s, after the cut): 400 steps could end within that on a fast CPU,
    # and a run that ends never logs the lease's loss
    job = submit(server.url, fine_tune_body(steps=1500, checkpoint_every=50,
                                            sample_every=100))
    wait_job(server.url, job["id"], ("running",),
             until=lambda j: (j["progress"] or {}).get("step", 0) >= 60)
    pg_link.cut()
    t_cut = time.monotonic()
    deadline = t_cut + 30
    while "lease not renewed" not in first.output():
        assert time.monotonic() < deadline, first.output()[-3000:]
        time.sleep(0.2)
    assert time.monotonic() - t_cut < float(FAST_LEASE["GANSERVE_JOB_LEASE_S"]) + 1
    worker_factory(env)                             # takes the stale job over and resumes
    wait_job(server.url, job["id"], ("running",), until=lambda j: j["attempts"] == 2)
    pg_link.mend()                                  # the first is back on the database
    done = wait_job(server.url, job["id"], ("succeeded",), timeout=180)
    assert done["attempts"] == 2 and done["result"]["version"] == "2"
    assert list_versions(job_models / "baby-dcgan") == ["1", "2"]
    assert load_manifest(job_models / "baby-dcgan" / "2").training.model_extra["job"][
        "id"] == job["id"]
    assert "published" not in first.output()
