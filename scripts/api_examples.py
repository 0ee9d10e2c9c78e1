"""Run the README's curl examples against a live ganserve and keep their outputs.

    python scripts/api_examples.py [--models models] [--out docs/api]

Starts ``ganserve serve`` on the store, runs every ```bash block between the
``<!-- api-examples -->`` markers of README.md in ``--out`` (so the files they write with
``-o`` land there: the README's pictures), and fails if any command fails. This keeps the
README's examples runnable as written.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]


def examples(readme: str) -> list[str]:
    section = readme.split("<!-- api-examples -->")[1].split("<!-- /api-examples -->")[0]
    return re.findall(r"```bash\n(.*?)```", section, re.S)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="models")
    ap.add_argument("--out", default="docs/api")
    args = ap.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    # the job examples publish a version and write records: on a copy, never the store
    scratch = Path(tempfile.mkdtemp(prefix="ganserve-examples-"))
    shutil.copytree(Path(args.models).resolve(), scratch / "models")
    env = {**os.environ, "GANSERVE_MODELS_DIR": str(scratch / "models"),
           "GANSERVE_DATA_DIR": str(scratch / "data"), "GANSERVE_LOG_LEVEL": "WARNING",
           "GANSERVE_WORKER_METRICS_PORT": "0",
           # the blocks' python3 is the project's (numpy, Pillow), as in an activated venv
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.Popen([sys.executable, "-m", "ganserve", "serve", "--port", "8000"],
                            cwd=REPO, env=env)
    try:
        for _ in range(300):
            try:
                if httpx.get("http://127.0.0.1:8000/v2/health/ready").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        for block in examples((REPO / "README.md").read_text()):
            print("$", block.strip().replace("\n", "\n  "))
            r = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=out, env=env,
                               capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit(f"example failed ({r.returncode}): {r.stderr or r.stdout}")
            if r.stdout.strip():
                print(r.stdout.strip()[:400])
    finally:
        proc.terminate()
        proc.wait(90)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
