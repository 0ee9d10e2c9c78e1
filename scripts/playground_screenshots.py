"""Regenerate the README's playground screenshots from the browser tests themselves.

    python scripts/playground_screenshots.py [--out docs/playground]

Runs ``tests/browser/test_playground.py`` and ``test_playground_jobs.py`` (a live
``ganserve serve`` and Debian's Chromium, as ``make test`` does) with
GANSERVE_PLAYGROUND_SHOTS set, so each test that shows a view saves it there: the pictures
are what the tests saw, not hand-made. Fails if the tests fail or a picture is missing.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHOTS = ("sample", "classes", "interpolate", "style-mix", "your-image", "quality", "jobs",
         "phone")
log = logging.getLogger("playground_screenshots")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="docs/playground")
    out = Path(ap.parse_args().out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    for s in SHOTS:                          # a picture the tests did not save is missed
        (out / f"{s}.png").unlink(missing_ok=True)
    env = {**os.environ, "GANSERVE_PLAYGROUND_SHOTS": str(out)}
    tests = ["tests/browser/test_playground.py", "tests/browser/test_playground_jobs.py"]
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", *tests],
                          cwd=REPO, env=env, check=False)
    missing = [s for s in SHOTS if not (out / f"{s}.png").is_file()]
    if done.returncode or missing:
        sys.exit(f"the browser tests failed (rc {done.returncode}) or saved no {missing}")
    for s in SHOTS:
        log.info("%s: %d bytes", out / f"{s}.png", (out / f"{s}.png").stat().st_size)


if __name__ == "__main__":
    main()
