"""A real ``ganserve serve`` on the shipped store and a real headless Chromium (Playwright).

Playwright's own browser download is not used: the browser is Debian's ``chromium`` package.
Both are required, not optional: a machine without them fails these tests with the install
hint instead of skipping them.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("GANSERVE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
INSTALL_HINT = ("the browser tests need Chromium and Playwright's Python package: run "
                "`apt-get install -y chromium` and `pip install playwright` "
                "(not `playwright install`; the tests use the system chromium at "
                f"{CHROMIUM}, override with GANSERVE_TEST_CHROMIUM)")
READY_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    log: Path

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/v2/health/ready", timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    """``ganserve serve`` on the shipped ``models/`` store, one worker, on a free loopback port."""
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "serve.log"
    env = {**os.environ, "GANSERVE_MODELS_DIR": "models", "GANSERVE_POLL_INTERVAL_S": "0"}
    cmd = [sys.executable, "-m", "ganserve", "serve", "--host", "127.0.0.1",
           "--port", str(port), "--workers", "1"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    srv = Server(f"http://127.0.0.1:{port}", proc, log)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not ready(srv.url):
            if proc.poll() is not None:
                pytest.fail(f"ganserve serve exited with {proc.returncode} before it was "
                            f"ready:\n{srv.log_tail()}")
            if time.monotonic() > deadline:
                pytest.fail(f"GET /v2/health/ready not 200 after {READY_TIMEOUT_S} s:\n"
                            f"{srv.log_tail()}")
            time.sleep(0.25)
        yield srv
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Headless Chromium (the system package) through Playwright's sync API."""
    if importlib.util.find_spec("playwright") is None:
        pytest.fail(f"playwright is not installed: {INSTALL_HINT}", pytrace=False)
    from playwright.sync_api import Error, sync_playwright

    if not Path(CHROMIUM).is_file():
        pytest.fail(f"no Chromium at {CHROMIUM}: {INSTALL_HINT}", pytrace=False)
    with sync_playwright() as pw:
        try:
            b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        except Error as e:
            pytest.fail(f"Chromium at {CHROMIUM} did not start: {e}\n{INSTALL_HINT}",
                        pytrace=False)
        yield b
        b.close()


@pytest.fixture(scope="module")
def context(browser) -> Iterator[object]:
    """One browser context per module, so the Swagger UI assets are fetched once."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 1000})
    ctx.set_default_timeout(15_000)
    yield ctx
    ctx.close()
