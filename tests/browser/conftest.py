"""A real ``ganserve serve`` on the shipped store and a real headless Chromium (Playwright).

Playwright's own browser download is not used: the browser is Debian's ``chromium`` package.
Both are required, not optional: a machine without them fails these tests with the install
hint instead of skipping them.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service.conftest import REPO, ServerProcess

CHROMIUM = os.environ.get("GANSERVE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
INSTALL_HINT = ("the browser tests need Chromium and Playwright's Python package: run "
                "`apt-get install -y chromium` and `pip install playwright` "
                "(not `playwright install`; the tests use the system chromium at "
                f"{CHROMIUM}, override with GANSERVE_TEST_CHROMIUM)")


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[ServerProcess]:
    """``ganserve serve`` on a copy of the shipped ``models/`` store (Execute runs the
    management operations too), one worker and the embedded job worker, on a free loopback
    port."""
    models = tmp_path_factory.mktemp("docs") / "models"
    shutil.copytree(REPO / "models", models)
    srv = ServerProcess(models, workers=1, GANSERVE_POLL_INTERVAL_S="0",
                        GANSERVE_EMBEDDED_WORKER="true",       # the playground's project job
                        GANSERVE_INTRA_OP_THREADS="0", OMP_NUM_THREADS="2")
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


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


def shoot(page, name: str) -> None:
    """A screenshot for the README when GANSERVE_PLAYGROUND_SHOTS names a folder
    (``scripts/playground_screenshots.py`` sets it); nothing otherwise."""
    folder = os.environ.get("GANSERVE_PLAYGROUND_SHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / f"{name}.png"))
