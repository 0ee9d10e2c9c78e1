"""With API keys on, the docs page's "Authorize" takes a key and "Execute" then sends it:
401 before, 200 after, in real Chromium."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import pytest

from ganserve.service.auth import new_key
from tests.browser.test_docs_page import STATUS, DocsPage, execute
from tests.service.conftest import REPO, ServerProcess

KEY, ENTRY = new_key("docs")
LIST_JOBS = "list_jobs_v1_jobs_get"


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("keyed")
    shutil.copytree(REPO / "models" / "fashion-dcgan", root / "models" / "fashion-dcgan")
    (root / "keys.json").write_text(json.dumps({"keys": [ENTRY]}))
    srv = ServerProcess(root / "models", GANSERVE_POLL_INTERVAL_S="0",
                        GANSERVE_API_KEYS_FILE=str(root / "keys.json"))
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


def test_authorize_sends_the_key(context, keyed_server):
    page = context.new_page()
    docs = DocsPage(page, keyed_server)
    page.on("request", lambda r: docs.requests.append(r))
    page.goto(keyed_server.url + "/docs")
    page.locator(".opblock").first.wait_for()
    assert execute(docs, LIST_JOBS).status == "401"
    page.locator(".auth-wrapper .authorize").first.click()
    page.locator(".modal-ux input").first.fill(KEY)
    page.locator(".modal-ux .modal-btn.auth").first.click()
    page.locator(".modal-ux .btn-done").first.click()
    op = docs.operation(LIST_JOBS)            # still in "Try it out" mode: Execute again
    sent = len(docs.api_requests())
    op.locator(".execute").click()
    op.locator(f"{STATUS}:text('200')").first.wait_for()
    request = docs.api_requests()[sent:][-1]
    assert request.headers["authorization"] == f"Bearer {KEY}"
    page.close()
