"""Linearizable model management under load: two API processes and a job worker on one
store, for a minute, with clients that delete versions, choose defaults, ask for images and
publish fine-tunes all at once. Afterwards: every model still has a version, no version
number ever named two sets of weights, every 200 carries the version it claims, and no
request after a job's ``succeeded`` got a 404 for the new version (unless a removal of that
version had been asked for before the 404 came back: the two then ran concurrently, and
either order is a linearizable one)."""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

import httpx

from ganserve.manifest import list_models, list_versions, load_manifest
from tests.jobs.conftest import fine_tune_body
from tests.jobs.test_workers import env_for

MODEL = "baby-dcgan"
SECONDS = float(os.environ.get("GANSERVE_STRESS_S", "60"))
OK = {"delete": {200, 404, 409}, "default": {200, 404, 409}, "sample": {200, 404}}


@dataclass
class Log:
    """What the clients saw, for the checks at the end."""
    bad: list = field(default_factory=list)                 # (op, status, body)
    images: dict = field(default_factory=lambda: defaultdict(set))  # (version, seed) -> sha
    deletes_asked: dict = field(default_factory=dict)       # version -> first ask time
    published: list = field(default_factory=list)           # (job id, version)
    late_404: list = field(default_factory=list)            # after succeeded, not deleted
    lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, op: str, r: httpx.Response) -> bool:
        if r.status_code not in OK[op]:
            with self.lock:
                self.bad.append((op, r.status_code, r.text[:300]))
        return r.status_code == 200


def _versions(url: str) -> list[str]:
    r = httpx.get(f"{url}/v1/models/{MODEL}/versions", timeout=30)
    return [v["version"] for v in r.json()["versions"]] if r.status_code == 200 else []


def _sample(url: str, log: Log, version: str | None, seed: int) -> httpx.Response:
    body = {"seeds": [seed]} | ({"version": version} if version else {})
    r = httpx.post(f"{url}/v1/models/{MODEL}/sample", json=body, timeout=60)
    if log.check("sample", r):
        served = r.headers["x-model-version"]
        if version is not None and served != version:
            log.bad.append(("sample", 200, f"asked for {version}, served {served}"))
        with log.lock:
            log.images[(served, seed)].add(hashlib.sha256(r.content).hexdigest())
    return r


def _deleter(urls, log: Log, stop: threading.Event, rng: random.Random) -> None:
    while not stop.is_set():
        url = rng.choice(urls)
        versions = _versions(url)
        if versions:
            v = rng.choice(versions)
            with log.lock:
                log.deletes_asked.setdefault(v, time.monotonic())
            log.check("delete", httpx.delete(f"{url}/v1/models/{MODEL}/versions/{v}",
                                             timeout=60))
        stop.wait(rng.uniform(0.5, 2.0))


def _defaulter(urls, log: Log, stop: threading.Event, rng: random.Random) -> None:
    while not stop.is_set():
        url = rng.choice(urls)
        v = rng.choice([*_versions(url), None])
        log.check("default", httpx.put(f"{url}/v1/models/{MODEL}/default",
                                       json={"version": v}, timeout=60))
        stop.wait(rng.uniform(0.2, 1.0))


def _requester(urls, log: Log, stop: threading.Event, rng: random.Random) -> None:
    while not stop.is_set():
        url = rng.choice(urls)
        v = rng.choice([*_versions(url), None])
        _sample(url, log, v, rng.randrange(4))


def _publisher(urls, log: Log, stop: threading.Event, rng: random.Random) -> None:
    seed = 0
    while not stop.is_set():
        seed += 1
        r = httpx.post(f"{rng.choice(urls)}/v1/jobs/fine-tune",
                       json=fine_tune_body(seed=seed), timeout=30)
        if r.status_code != 202:       # its base version was removed meanwhile: next one
            continue
        job = r.json()
        while not stop.is_set():
            job = httpx.get(f"{rng.choice(urls)}/v1/jobs/{job['id']}", timeout=30).json()
            if job["state"] in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(0.05)
        if job["state"] != "succeeded":
            continue
        v = job["result"]["version"]
        seen = time.monotonic()
        with log.lock:
            log.published.append((job["id"], v))
        for url in urls:                        # the instant it succeeded, on every replica
            r = _sample(url, log, v, 0)
            with log.lock:                      # read after the answer: any delete asked
                asked = log.deletes_asked.get(v)   # by now may have run before this request
            if r.status_code == 404 and asked is None:
                log.late_404.append((job["id"], v, url, round(time.monotonic() - seen, 2)))


def test_model_management_is_linearizable_under_concurrent_load(
        job_models, data_dir, redis_url, pg_url, job_server, worker_factory):
    env = env_for(job_models, data_dir, redis_url, pg_url,
                  GANSERVE_POLL_INTERVAL_S="5")  # slow polls: first requests must load
    apis = [job_server(job_models, env), job_server(job_models, env)]
    worker_factory(env, queues="train")
    urls = [a.url for a in apis]
    log, stop = Log(), threading.Event()
    clients = [(_deleter, 2), (_defaulter, 1), (_requester, 3), (_publisher, 1)]
    threads = [threading.Thread(target=fn, args=(urls, log, stop, random.Random(i * 10 + k)))
               for i, (fn, n) in enumerate(clients) for k in range(n)]
    for t in threads:
        t.start()
    time.sleep(SECONDS)
    stop.set()
    for t in threads:
        t.join(120)
    print(f"published {len(log.published)} versions, asked {len(log.deletes_asked)} "
          f"deletes, {sum(len(v) for v in log.images.values())} distinct images")
    assert not log.bad, log.bad[:10]
    assert len(log.published) >= 2, log.published      # the load did publish versions
    assert not log.late_404, log.late_404
    # every model has a version; no number was given to two jobs; one image per number
    models = job_models
    assert all(list_versions(models / m) for m in list_models(models))
    numbers = [v for _, v in log.published]
    assert len(numbers) == len(set(numbers)), log.published
    forked = {k: shas for k, shas in log.images.items() if len(shas) > 1}
    assert not forked, forked
    for job_id, v in log.published:                     # the survivors are the jobs' own
        if (models / MODEL / v).is_dir():
            assert load_manifest(models / MODEL / v).training.model_extra["job"]["id"] == job_id
    for a in apis:
        assert "Traceback" not in a.output(), a.output()[-3000:]
