"""Fine-tune quality, the issue's use case: each shipped family tuned on 1,000 Fashion-MNIST
images of one class with the default fine-tune settings, through a real job.

    python benchmarks/fine_tune_quality.py [--class Bag] [--families dcgan,cgan,stylegan]

Runs `ganserve serve` in embedded mode (its own worker) on a temporary copy of the store and
prints one table row per family: wall time (job start to new version published, export and
scoring included), training images/s, and the job result's quality figures: the share of
samples the classifier puts in the class, precision / recall against the 1,000 images, and
near copies (closer to a tuning image than the 1st percentile of unseen test images of the
class). Targets: >= 80% of the class, precision >= 0.6, < 5% near copies, within 15 minutes
(StyleGAN) or 10 (DCGAN, cGAN).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from jobs_bench import serve, submit, wait_job  # noqa: E402

LIMIT_MIN = {"dcgan": 10, "cgan": 10, "stylegan": 15}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--class", dest="cls", default="Bag")
    ap.add_argument("--families", default="dcgan,cgan,stylegan")
    ap.add_argument("--json", help="also write the job results here")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ganserve-ft-quality-"))
    families = args.families.split(",")
    rows, results = [], {}
    try:
        models = root / "models"
        for fam in families:
            shutil.copytree(REPO / "models" / f"fashion-{fam}", models / f"fashion-{fam}")
        shutil.copytree(REPO / "models" / "_evaluators", models / "_evaluators")
        env = {"GANSERVE_MODELS_DIR": str(models), "GANSERVE_DATA_DIR": str(root / "data"),
               "GANSERVE_LOG_LEVEL": "WARNING", "GANSERVE_WORKER_METRICS_PORT": "0"}
        server, url = serve(env, root)
        try:
            for fam in families:
                job = submit(url, "fine-tune", {"model": f"fashion-{fam}", "dataset": {
                    "name": "fashion-mnist", "classes": [args.cls], "limit": 1000}})
                done = wait_job(url, job["id"], timeout=3600)
                results[fam] = done
                rows.append(row(fam, done))
                print(rows[-1], flush=True)
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"\n| family | steps × batch | wall (min, limit) | train images/s | {args.cls} share "
          "| precision | recall | near copies |\n|---|--:|--:|--:|--:|--:|--:|--:|")
    print("\n".join(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


def row(fam: str, job: dict) -> str:
    if job["state"] != "succeeded":
        return f"| {fam} | {job['state']}: {job['error']} |"
    r, q = job["result"], job["result"]["quality"]
    wall = (dt.datetime.fromisoformat(job["finished_at"])
            - dt.datetime.fromisoformat(job["started_at"])).total_seconds() / 60
    return (f"| {fam} | {r['steps']} × {r['batch']} | {wall:.1f} (≤ {LIMIT_MIN[fam]}) | "
            f"{r['images_per_s']:.0f} | {q['target_share']:.3f} | {q['precision']:.3f} | "
            f"{q['recall']:.3f} | {q['near_copy_share'] * 100:.1f}% |")


if __name__ == "__main__":
    main()
