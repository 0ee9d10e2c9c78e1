"""A newcomer's first minutes, timed: ``git clone`` of this repository into a fresh folder,
then ``make run`` from nothing (venv, serving install, store seeding, start) until the first
image comes back, then until the embedded job worker is up (torch installs behind the
server), then ``git status`` of the clone.

    python benchmarks/first_image.py            # warm: pip's cache as it is
    python benchmarks/first_image.py --cold     # cold: an empty pip cache (downloads)

Prints one table; every row is measured in this run on this machine. The clone is deleted.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
FIRST_IMAGE = "/v1/models/fashion-dcgan/sample.png?seed=1"
WORKER_READY = "worker ready"          # ganserve.jobs.queue.WORKER_READY


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, timeout_s: float, what: str) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if check():
            return time.monotonic()
        time.sleep(0.2)
    raise TimeoutError(f"{what} not within {timeout_s:.0f} s")


def image_served(url: str) -> bool:
    try:
        r = httpx.get(url + FIRST_IMAGE, timeout=2)
    except httpx.HTTPError:
        return False
    return r.status_code == 200 and r.headers["content-type"] == "image/png"


def run(cold: bool, timeout_s: float) -> list[tuple[str, str]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="ganserve-first-") as tmp:
        clone, log = Path(tmp) / "ganserve", Path(tmp) / "make-run.log"
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("GANSERVE_", "VIRTUAL_ENV"))}
        if cold:
            env["PIP_CACHE_DIR"] = str(Path(tmp) / "pip-cache")
        t0 = time.monotonic()
        subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
        rows.append(("git clone", f"{time.monotonic() - t0:.1f} s"))
        port = free_port()
        t1 = time.monotonic()
        with open(log, "w") as out:
            make = subprocess.Popen(["make", "run", f"PORT={port}"], cwd=clone, env=env,
                                    stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}"
            first = wait_for(lambda: image_served(url), timeout_s, "the first image")
            rows.append(("make run → first image", f"{first - t1:.1f} s"))
            rows.append(("clone → first image", f"{first - t0:.1f} s"))
            ready = wait_for(lambda: WORKER_READY in log.read_text(errors="replace"),
                             timeout_s, "the job worker")
            rows.append(("make run → job worker ready (torch installed)", f"{ready - t1:.1f} s"))
            line = next((x for x in log.read_text().splitlines()
                         if x.startswith("ganserve ready in")), "(no ready line)")
            rows.append(("ready line", line.split(" at ")[0]))
        finally:
            os.killpg(make.pid, signal.SIGINT)
            try:
                make.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(make.pid, signal.SIGKILL)
        status = subprocess.run(["git", "status", "--porcelain"], cwd=clone,
                                capture_output=True, text=True).stdout.strip()
        rows.append(("git status --porcelain after", repr(status) if status else "empty"))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cold", action="store_true", help="an empty pip cache")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per wait")
    args = ap.parse_args()
    rows = run(args.cold, args.timeout)
    print(f"| {'cold' if args.cold else 'warm'} pip cache | |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
