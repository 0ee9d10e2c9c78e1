"""The OpenAPI docs page (``/docs``, Swagger UI served offline) in a real headless browser.

The promise checked here: the page renders offline without resolver errors, and every
operation runs as-is from it: expand, "Try it out", "Execute" without typing anything, 200.
Path parameters come prefilled from the served document's examples (a loaded model that
supports the operation), bodies from the first request example.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from tests.service import crafted
from tests.service.conftest import ServerProcess

# every operation of the served document, by operationId (the docs page's block ids end in it)
OPERATIONS = [
    "list_models_v1_models_get",
    "get_model_v1_models__name__get",
    "sample_v1_models__name__sample_post",
    "conditional_v1_models__name__conditional_post",
    "interpolate_v1_models__name__interpolate_post",
    "style_mix_v1_models__name__style_mix_post",
    "sample_png_v1_models__name__sample_png_get",
    "project_v1_models__name__project_post",
    "directions_v1_models__name__directions_get",
    "edit_v1_models__name__edit_post",
    "live_v2_health_live_get",
    "ready_v2_health_ready_get",
    "model_ready_v2_models__name__ready_get",
    "server_metadata_v2_get",
    "model_metadata_v2_models__name__get",
    "version_metadata_v2_models__name__versions__version__get",
    "model_config_v2_models__name__config_get",
    "version_config_v2_models__name__versions__version__config_get",
    "version_ready_v2_models__name__versions__version__ready_get",
    "infer_v2_models__name__infer_post",
    "infer_version_v2_models__name__versions__version__infer_post",
    "submit_fine_tune_v1_jobs_fine_tune_post",
    "submit_evaluate_v1_jobs_evaluate_post",
    "submit_project_v1_jobs_project_post",
    "list_jobs_v1_jobs_get",
    "get_job_v1_jobs__job_id__get",
    "cancel_job_v1_jobs__job_id__cancel_post",
    "job_samples_v1_jobs__job_id__samples_png_get",
    "job_events_v1_jobs__job_id__events_get",
    "list_versions_v1_models__name__versions_get",
    "put_default_v1_models__name__default_put",
    "delete_model_version_v1_models__name__versions__version__delete",
    "upload_v1_datasets_post",
    "list_datasets_v1_datasets_get",
    "get_dataset_v1_datasets__id__get",
    "preview_v1_datasets__id__preview_png_get",
    "delete_dataset_v1_datasets__id__delete",
]
# operations that need a file chosen before Execute (the one thing a user must pick)
UPLOADS = {"upload_v1_datasets_post"}
# what Execute as-is answers where it is not 200: a submission is accepted (202; the test
# server has no job worker, so it stays queued); a job id cannot have an example that exists,
# so the per-job operations answer the documented 404 in the error shape
EXPECTED_STATUS = {"submit_fine_tune_v1_jobs_fine_tune_post": "202",
                   "submit_evaluate_v1_jobs_evaluate_post": "202",
                   "submit_project_v1_jobs_project_post": "202",
                   "get_job_v1_jobs__job_id__get": "404",
                   "cancel_job_v1_jobs__job_id__cancel_post": "404",
                   "job_samples_v1_jobs__job_id__samples_png_get": "404",
                   "job_events_v1_jobs__job_id__events_get": "404",
                   # the example model's only version: never removed (409, in the shape)
                   "delete_model_version_v1_models__name__versions__version__delete": "409",
                   # a new dataset (the chosen file); the example id is not one
                   "upload_v1_datasets_post": "201",
                   "get_dataset_v1_datasets__id__get": "404",
                   "preview_v1_datasets__id__preview_png_get": "404",
                   "delete_dataset_v1_datasets__id__delete": "404"}
STATUS = ".live-responses-table tbody .response-col_status"
VALIDATION = ".validation-errors"
EXECUTE_TIMEOUT_MS = 20_000
# each top-level schema's expander (OpenAPI 3.1 renders JSON Schema 2020-12; 3.0 model boxes)
SCHEMA_TOGGLES = (".model-box-control, [data-json-schema-level='0'] > .json-schema-2020-12-head"
                  " > .json-schema-2020-12-accordion")


@dataclass
class DocsPage:
    """The loaded /docs page and what it fetched."""

    page: Any
    server: ServerProcess
    requests: list[Any] = field(default_factory=list, repr=False)
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def is_api(self, url: str) -> bool:
        """A request Swagger UI sent to the API (not the page's own assets or image blobs)."""
        assets = ("/docs", "/openapi.json", "/static-offline-docs/")
        return url.startswith(self.server.url + "/") and not urlsplit(url).path.startswith(assets)

    def api_requests(self) -> list[Any]:
        return [r for r in self.requests if self.is_api(r.url)]

    def operation(self, operation_id: str) -> Any:
        return self.page.locator(f'.opblock[id$="-{operation_id}"]').first


@dataclass
class Execution:
    status: str                   # the live response code the page shows ("" if none)
    request: Any                  # the request the page sent (None if it sent none)
    shown: str                    # validation errors or the response the page showed


@pytest.fixture(scope="module")
def document(server) -> dict[str, Any]:
    with urllib.request.urlopen(server.url + "/openapi.json", timeout=10) as r:
        return json.load(r)


@pytest.fixture
def docs(context, server) -> Iterator[DocsPage]:
    page = context.new_page()
    d = DocsPage(page, server)
    page.on("request", lambda r: d.requests.append(r))
    page.on("requestfailed", lambda r: d.failed.append(f"{r.url}: {r.failure}"))

    def on_response(response: Any) -> None:
        if response.status >= 400 and not d.is_api(response.url):
            d.failed.append(f"{response.url}: HTTP {response.status}")

    page.on("response", on_response)
    page.on("pageerror", lambda e: d.errors.append(str(e)))
    page.goto(server.url + "/docs")
    page.locator(".opblock").first.wait_for()
    yield d
    page.close()


def operations_of(doc: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    return {op["operationId"]: (method.upper(), path, op)
            for path, item in doc["paths"].items() for method, op in item.items()}


def resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Follow local ``$ref``s (``#/components/...``)."""
    while "$ref" in node:
        target: Any = doc
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def first_example(doc: dict[str, Any], node: dict[str, Any]) -> Any:
    """The example Swagger UI preselects: the first of ``examples``, else ``example``."""
    if node.get("examples"):
        ex = node["examples"]
        return ex[0] if isinstance(ex, list) else resolve(doc, next(iter(ex.values())))["value"]
    if "example" in node:
        return node["example"]
    schema = resolve(doc, node.get("schema", {}))
    if schema is not node and ("examples" in schema or "example" in schema):
        return first_example(doc, schema)
    return None


def expand(op: Any) -> None:
    if "is-open" not in (op.get_attribute("class") or ""):
        op.locator(".opblock-summary-control").click()
    op.locator(".opblock-body").wait_for()


def execute(docs: DocsPage, operation_id: str, upload: Path | None = None) -> Execution:
    """Expand the operation, "Try it out", "Execute" without typing anything (but choosing
    ``upload`` where the operation takes a file)."""
    op = docs.operation(operation_id)
    if not op.count():
        pytest.fail(f"{operation_id} is not on the docs page", pytrace=False)
    expand(op)
    op.locator(".try-out__btn").click()
    if upload is not None:
        op.locator("input[type=file]").set_input_files(str(upload))
    sent = len(docs.api_requests())
    op.locator(".execute").click()
    op.locator(f"{STATUS}, {VALIDATION}").first.wait_for(timeout=EXECUTE_TIMEOUT_MS)
    requests = docs.api_requests()[sent:]
    if op.locator(VALIDATION).count():
        return Execution("", None, op.locator(VALIDATION).inner_text())
    status = op.locator(STATUS).first.inner_text().split()
    body = op.locator(".live-responses-table tbody .response-col_description").first
    return Execution(status[0] if status else "", requests[-1] if requests else None,
                     re.sub(r"\s+", " ", body.inner_text())[:600])


def expected_url_path(doc: dict[str, Any], path: str, op: dict[str, Any]) -> str:
    for param in op.get("parameters", []):
        if param["in"] == "path":
            path = path.replace(f"{{{param['name']}}}", str(first_example(doc, param)))
    return path


# ---------------------------------------------------------------- the page itself

def test_docs_page_lists_every_operation_of_the_document(docs, document):
    assert sorted(operations_of(document)) == sorted(OPERATIONS), \
        "the served document's operations changed: update OPERATIONS so each one is executed"
    for operation_id in OPERATIONS:
        assert docs.operation(operation_id).count(), f"{operation_id} is not on the docs page"


def test_docs_page_loads_offline_without_failed_requests(docs, server):
    docs.page.wait_for_load_state("networkidle")
    outside = [r.url for r in docs.requests
               if urlsplit(r.url).scheme in ("http", "https")
               and not r.url.startswith(server.url + "/")]
    assert not outside, f"the docs page fetches from outside the service: {outside}"
    assert not docs.failed, f"failed requests on the docs page: {docs.failed}"
    assert not docs.errors, f"JavaScript errors on the docs page: {docs.errors}"


def test_docs_page_has_no_resolver_error_with_every_operation_open(docs):
    for operation_id in OPERATIONS:
        expand(docs.operation(operation_id))
    models = docs.page.locator("section.models")   # "Schemas": resolved when opened, too
    if models.count():
        if "is-open" not in (models.get_attribute("class") or ""):
            models.locator("h4").first.click()
        models.locator(SCHEMA_TOGGLES).evaluate_all("els => els.forEach(e => e.click())")
    docs.page.wait_for_load_state("networkidle")
    shown = [re.sub(r"\s+", " ", t).strip()
             for t in docs.page.locator(".errors-wrapper").all_inner_texts()]
    if shown or docs.page.get_by_text("Resolver error").count():
        pytest.fail(f"the docs page shows errors: {shown}", pytrace=False)
    assert not docs.errors, f"JavaScript errors on the docs page: {docs.errors}"


# ---------------------------------------------------------------- try it out

@pytest.mark.parametrize("operation_id", OPERATIONS)
def test_try_it_out_runs_every_operation_as_is(docs, document, operation_id, tmp_path):
    if operation_id not in operations_of(document):
        pytest.fail(f"{operation_id} is not in the served document", pytrace=False)
    method, path, op = operations_of(document)[operation_id]
    upload = None
    if operation_id in UPLOADS:
        upload = tmp_path / "bags.zip"
        upload.write_bytes(crafted.classes_zip({"Bag": 2}))
    run = execute(docs, operation_id, upload)
    where = f"{method} {path} ({operation_id})"
    if run.status != EXPECTED_STATUS.get(operation_id, "200"):
        shot = tmp_path / f"{operation_id}.png"
        docs.operation(operation_id).screenshot(path=str(shot))
        pytest.fail(f"{where}: Execute as-is gave {run.status or 'no request'}; the page "
                    f"showed: {run.shown!r} (screenshot: {shot})", pytrace=False)

    # what was sent is the document's example, not something Swagger UI made up
    assert run.request is not None and run.request.method == method, where
    assert unquote(urlsplit(run.request.url).path) == expected_url_path(document, path, op)
    body = op.get("requestBody")
    if body is not None:
        media = body["content"].get("application/json") or next(iter(body["content"].values()))
        example = first_example(document, media)
        if example is not None:
            assert json.loads(run.request.post_data) == example, where

    response = run.request.response()
    if operation_id in UPLOADS:         # the form's fields are the examples, not "string"
        assert json.loads(response.body())["name"] == "my bags", response.body()
    if run.status in ("404", "409"):
        code = json.loads(response.body())["error"]["code"]
        missing = "dataset_not_found" if "/datasets/" in path else "job_not_found"
        assert code == (missing if run.status == "404" else "conflict"), where
        return
    if response is not None and response.headers.get("content-type", "").startswith("image/"):
        img = docs.operation(operation_id).locator(".live-responses-table tbody img")
        assert img.count(), f"{where}: the image response does not show on the page"
        width = img.first.evaluate("i => i.decode().then(() => i.naturalWidth, () => 0)")
        assert width > 0, f"{where}: the image response does not show on the page (broken)"
