"""The playground's Jobs tab in a real headless Chromium, against ``ganserve serve`` in
embedded mode (no broker) on a baby store: a bad upload shows the API's error; a tiny
dataset is dropped in, a baby fine-tune runs on it to completion with live progress, the
new version opens in one click, and its evaluation is shown beside its parent's."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.browser.conftest import shoot
from tests.service.conftest import ServerProcess

pytestmark = pytest.mark.slow
JOB_TIMEOUT_MS = 180_000


@pytest.fixture(scope="module")
def job_server(baby_exports, extractor_dir, tmp_path_factory) -> Iterator[ServerProcess]:
    models = tmp_path_factory.mktemp("jobs") / "models"
    shutil.copytree(baby_exports["dcgan"], models / "baby-dcgan" / "1")
    shutil.copytree(extractor_dir, models / "_evaluators" / "fashion-mnist")
    srv = ServerProcess(models, GANSERVE_EMBEDDED_WORKER="true", GANSERVE_POLL_INTERVAL_S="0",
                        GANSERVE_WORKER_METRICS_PORT="0")
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


def bags_zip(n: int) -> bytes:
    """The first ``n`` Bags of Fashion-MNIST's test split as a zip of PNGs in Bag/."""
    import io
    import zipfile

    import numpy as np
    from PIL import Image

    from ganserve.data.base import DEFAULT_FASHION_DIR
    from ganserve.data.idx import read_idx_folder

    test = read_idx_folder(DEFAULT_FASHION_DIR, split="t10k")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for i, k in enumerate(np.flatnonzero(test.labels == 8)[:n]):
            png = io.BytesIO()
            Image.fromarray(test.images[k, 0]).save(png, "PNG")
            z.writestr(f"Bag/{i:03d}.png", png.getvalue())
    return out.getvalue()


def test_a_bad_upload_shows_the_apis_error(browser, job_server, tmp_path):
    context = browser.new_context()          # the refused upload (422) is logged: own context
    page = context.new_page()
    page.goto(job_server.url + "/?mode=jobs")
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 this is not a zip archive")
    page.locator("#dataset-file").set_input_files(str(broken))
    alert = page.locator("#dataset-error")
    alert.wait_for()
    assert alert.get_attribute("role") == "alert"
    assert alert.inner_text().startswith("broken.zip: not a readable zip archive")
    context.close()


def test_upload_fine_tune_open_and_evaluate(browser, job_server, tmp_path):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    context.set_default_timeout(20_000)
    errors, outside = [], []
    context.on("console", lambda m: m.type == "error" and errors.append(m.text))
    context.on("request", lambda r: r.url.startswith("http") and not r.url.startswith(
        job_server.url + "/") and outside.append(r.url))
    page = context.new_page()
    page.goto(job_server.url + "/?model=baby-dcgan&mode=jobs")
    zipped = tmp_path / "bags.zip"
    zipped.write_bytes(bags_zip(16))
    page.locator("#dataset-name").fill("bags")
    page.locator("#dataset-file").set_input_files(str(zipped))
    page.wait_for_function("document.getElementById('dataset-status').textContent"
                           ".startsWith('dataset ')")
    assert "16 images" in page.locator("#dataset-status").inner_text()
    assert page.locator("#dataset-preview").is_visible()
    assert page.locator("#ft-dataset").input_value() != "fashion-mnist"   # the upload, chosen
    page.locator("#ft-steps").fill("12")
    page.get_by_role("button", name="Start fine-tune").click()
    page.wait_for_function("document.getElementById('job').dataset.done",
                           timeout=JOB_TIMEOUT_MS)
    assert page.locator("#job").get_attribute("data-done") == "succeeded", \
        page.locator("#job-error").inner_text()
    assert page.locator("#job-state").inner_text() == "succeeded"
    assert page.locator("#job-chart svg").count() == 1            # the loss curves
    assert page.locator("#job-samples").is_visible()              # the latest progress grid
    assert "job=" in page.url
    shoot(page, "jobs")
    page.get_by_role("button", name="Open baby-dcgan/2").click()
    page.locator("#grid img").first.wait_for()
    assert "version=2" in page.url and page.locator("#version").input_value() == "2"
    # evaluate the new version: its numbers beside its parent's
    page.get_by_role("tab", name="Jobs").click()
    page.locator("#eval-n").fill("64")
    page.get_by_role("button", name="Start evaluation").click()
    page.wait_for_function("document.getElementById('job-result').hidden === false",
                           timeout=JOB_TIMEOUT_MS)
    heads = page.locator("#job-result thead").inner_text()
    assert "version 2 (this job)" in heads and "parent baby-dcgan/1" in heads
    fid = page.locator("#job-result tr", has_text="FID").inner_text().split()
    assert float(fid[fid.index("better)") + 1]) > 0
    assert not errors, errors
    assert not outside, outside
    context.close()
