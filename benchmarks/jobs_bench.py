"""Jobs benchmark, one run, side by side (ratios, not absolute times).

    python benchmarks/jobs_bench.py [--steps 200] [--repeats 2] [--duration 15]

  (a) job overhead: a fine-tune of fashion-dcgan (1,000 Bags, the job's default settings)
      run by calling the plan directly vs the same plan through a Redis-mode job and a real
      `ganserve worker` (images/s over the training loop's wall time: progress writes, the
      lease heartbeat and cancel checks included); target <= 5%;
  (b) submit-to-start latency (job created -> lease taken by an idle worker), Redis mode and
      embedded mode (SQLite broker, polled);
  (c) inference p99 at 8 connections (wrk, POST /sample n=1, `--workers 2` as `make run`)
      while a StyleGAN fine-tune runs in the embedded worker vs idle; target <= 3x.
Runs on a temporary copy of the store; its own redis-server on a free port. Needs `wrk`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from serve_bench import free_port, wrk  # noqa: E402

BAGS = {"name": "fashion-mnist", "classes": ["Bag"], "limit": 1000}


def store_copy(root: Path) -> Path:
    models = root / "models"
    for name in ("fashion-dcgan", "fashion-stylegan", "_evaluators"):
        shutil.copytree(REPO / "models" / name, models / name)
    return models


class Proc:
    def __init__(self, argv: list[str], env: dict[str, str], log: Path):
        self.log = open(log, "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(argv, cwd=REPO, env={**os.environ, **env},
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def serve(env: dict[str, str], root: Path, workers: int = 1) -> tuple[Proc, str]:
    port = free_port()
    p = Proc([sys.executable, "-m", "ganserve", "serve", "--port", str(port), "--workers",
              str(workers)], env, root / f"serve-{port}.log")
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/v2/health/ready", timeout=1).status_code == 200:
                return p, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server did not start; see {root}")


def wait_job(url: str, job_id: str, states=("succeeded", "failed", "cancelled"),
             until=None, timeout: float = 1800, every: float = 2.0) -> dict:
    """Poll the job (rarely: the API's work must not compete with the training measured)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        job = httpx.get(f"{url}/v1/jobs/{job_id}", timeout=10).json()
        if job["state"] in states and (until is None or until(job)):
            return job
        time.sleep(every)
    raise TimeoutError(job_id)


def submit(url: str, kind: str, body: dict) -> dict:
    r = httpx.post(f"{url}/v1/jobs/{kind}", json=body, timeout=60)
    r.raise_for_status()
    return r.json()


def direct_fine_tune(models: Path, steps: int, out: Path) -> float:
    """The fine-tune job's plan, called in this process: images/s over the loop's wall."""
    from ganserve.jobs.datasets import load_dataset
    from ganserve.jobs.specs import DatasetRef, FineTuneSpec
    from ganserve.manifest import load_manifest
    from ganserve.training.in_training import make_class_share_evaluator
    from ganserve.training.plan import TrainOptions, plan_training, run_plan
    from ganserve.worker.fine_tune import base_preset, train_overrides

    base = models / "fashion-dcgan" / "1"
    m = load_manifest(base)
    spec = FineTuneSpec(model="fashion-dcgan", dataset=DatasetRef(**BAGS), steps=steps)
    data = load_dataset(spec.dataset, out, resolution=m.resolution, channels=m.channels)
    shutil.rmtree(out / "run", ignore_errors=True)
    plan = plan_training(TrainOptions(family=m.family, out=out / "run", preset=base_preset(m),
                                      train=train_overrides(spec, m.family), init_from=base,
                                      images=data))
    # the job's in-training figure too: the same plan, only the job machinery differs
    plan.train_cfg.eval_every = spec.sample_every
    evaluator = make_class_share_evaluator(models / "_evaluators" / "fashion-mnist",
                                           BAGS["classes"], m.class_names)
    r = run_plan(plan, evaluator=evaluator)
    return r.step * plan.train_cfg.batch / r.wall_seconds


def job_fine_tune(url: str, steps: int) -> float:
    job = submit(url, "fine-tune", {"model": "fashion-dcgan", "version": "1",
                                    "dataset": BAGS, "steps": steps})
    done = wait_job(url, job["id"])
    assert done["state"] == "succeeded", done
    r = done["result"]
    return r["steps"] * r["batch"] / r["wall_seconds"]


def latency(url: str, n: int = 5) -> list[float]:
    """Created -> started, one job at a time on an idle worker (evaluate, n = 64)."""
    out = []
    for i in range(n):
        job = submit(url, "evaluate", {"model": "fashion-dcgan", "version": "1", "n": 64,
                                       "seed": i, "metrics": ["fid"]})
        done = wait_job(url, job["id"], every=0.5)
        assert done["state"] == "succeeded", done
        out.append((dt.datetime.fromisoformat(done["started_at"])
                    - dt.datetime.fromisoformat(done["created_at"])).total_seconds())
        time.sleep(1.0)      # the next one finds the worker idle, waiting on its broker
    return out


def inference(url: str, seconds: float) -> dict[str, float]:
    return wrk(f"{url}/v1/models/fashion-dcgan/sample", {"seeds": [7]}, 8, seconds)


def part_a_b(root: Path, models: Path, args: argparse.Namespace) -> dict:
    redis_port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--save", "",
                              "--appendonly", "no"], stdout=subprocess.DEVNULL)
    env = {"GANSERVE_MODELS_DIR": str(models), "GANSERVE_DATA_DIR": str(root / "redis-data"),
           "GANSERVE_BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
           "GANSERVE_LOG_LEVEL": "WARNING", "GANSERVE_WORKER_METRICS_PORT": "0"}
    server, url = serve(env, root)
    worker = Proc([sys.executable, "-m", "ganserve", "worker"], env, root / "worker.log")
    try:
        direct, job = [], []
        for _ in range(args.repeats):
            direct.append(direct_fine_tune(models, args.steps, root / "direct"))
            job.append(job_fine_tune(url, args.steps))
            print(f"  direct {direct[-1]:.1f} images/s, job {job[-1]:.1f} images/s",
                  flush=True)
        return {"direct": direct, "job": job, "redis_latency": latency(url)}
    finally:
        worker.stop()
        server.stop()
        redis.kill()


def part_b_c(root: Path, models: Path, args: argparse.Namespace) -> dict:
    env = {"GANSERVE_MODELS_DIR": str(models), "GANSERVE_DATA_DIR": str(root / "emb-data"),
           "GANSERVE_LOG_LEVEL": "WARNING", "GANSERVE_WORKER_METRICS_PORT": "0"}
    server, url = serve(env, root, workers=2)
    try:
        time.sleep(5)                           # the embedded worker up and polling
        out = {"embedded_latency": latency(url)}
        inference(url, 3)                       # warm-up
        out["idle"] = inference(url, args.duration)
        job = submit(url, "fine-tune", {"model": "fashion-stylegan", "dataset": BAGS,
                                        "steps": 100_000})
        wait_job(url, job["id"], ("running",),
                 until=lambda j: (j["progress"] or {}).get("step", 0) > 5)
        out["training"] = inference(url, args.duration)
        out["training_job"] = httpx.get(f"{url}/v1/jobs/{job['id']}", timeout=10).json()
        httpx.post(f"{url}/v1/jobs/{job['id']}/cancel", timeout=10)
        wait_job(url, job["id"])
        return out
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=300, help="fine-tune steps per run in (a)")
    ap.add_argument("--repeats", type=int, default=3, help="direct/job pairs in (a)")
    ap.add_argument("--duration", type=float, default=15, help="seconds per wrk run in (c)")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ganserve-jobs-bench-"))
    try:
        models = store_copy(root)
        ab = part_a_b(root, models, args)
        bc = part_b_c(root, models, args)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    report(ab, bc)


def report(ab: dict, bc: dict) -> None:
    d, j = statistics.median(ab["direct"]), statistics.median(ab["job"])
    idle, busy = bc["idle"], bc["training"]
    prog = bc["training_job"]["progress"] or {}
    print("\n| measure | value |\n|---|--:|")
    print(f"| (a) fine-tune images/s, plan called directly (median of "
          f"{len(ab['direct'])}) | {d:.1f} |")
    print(f"| (a) the same through a Redis-mode job and worker | {j:.1f} |")
    print(f"| (a) **job overhead** (target <= 5%) | **{(1 - j / d) * 100:+.1f}%** |")
    for mode in ("redis", "embedded"):
        lat = ab.get(f"{mode}_latency") or bc.get(f"{mode}_latency")
        print(f"| (b) submit-to-start, {mode} mode: median / max of {len(lat)} (s) | "
              f"{statistics.median(lat):.3f} / {max(lat):.3f} |")
    print(f"| (c) inference c=8 idle: req/s, p50 / p99 (ms) | {idle['rps']:.0f}, "
          f"{idle['p50']:.1f} / {idle['p99']:.1f} |")
    print(f"| (c) same while a StyleGAN fine-tune trains ({prog.get('images_per_s', 0):.0f} "
          f"images/s): req/s, p50 / p99 (ms) | {busy['rps']:.0f}, {busy['p50']:.1f} / "
          f"{busy['p99']:.1f} |")
    print(f"| (c) **p99 ratio training / idle** (target <= 3x) | "
          f"**{busy['p99'] / idle['p99']:.2f}x** |")
    print(f"| (c) non-2xx responses idle / training | {idle['errors']} / {busy['errors']} |")


if __name__ == "__main__":
    main()
