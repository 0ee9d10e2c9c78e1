"""The web playground at ``/`` in a real headless Chromium, against ``ganserve serve`` on the
shipped models: it samples, re-renders as psi moves, brings new seeds, picks a class,
reproduces a shared URL, shows the API's errors, and fetches nothing from outside.

Timings (first grid after opening the page, a psi move until the grid is re-rendered) are
measured and printed as a table (``pytest -s``); the issue's targets are 1 s and 200 ms on
this project's machine, which a test does not assert (the machines are noisy): only a
generous bound that catches a page that hangs."""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

import ganserve.service.playground as playground

pytestmark = pytest.mark.slow
TIMINGS: dict[str, list[float]] = {}
HANG_S = 10.0


@pytest.fixture(scope="module")
def watched(context, server):
    """Console errors, page errors and every request URL of the module's pages."""
    seen = {"errors": [], "requests": []}
    context.on("console", lambda m: m.type == "error" and seen["errors"].append(m.text))
    context.on("weberror", lambda e: seen["errors"].append(str(e.error)))
    context.on("request", lambda r: seen["requests"].append(r.url))
    yield seen
    if TIMINGS:
        print("\n| playground | n | median ms | max ms |\n|---|---:|---:|---:|")
        for what, ms in TIMINGS.items():
            print(f"| {what} | {len(ms)} | {sorted(ms)[len(ms) // 2]:.0f} | {max(ms):.0f} |")
    outside = [u for u in seen["requests"] if urlsplit(u).scheme in ("http", "https")
               and not u.startswith(server.url + "/")]
    assert not outside, f"the playground fetched from outside the service: {outside}"
    assert not seen["errors"], f"console errors: {seen['errors']}"


def open_page(context, url: str, images: int = 8):
    page = context.new_page()
    t0 = time.perf_counter()
    page.goto(url)
    page.locator("#grid img").nth(images - 1).wait_for()
    return page, (time.perf_counter() - t0) * 1e3


def sources(page) -> list[str]:
    return page.locator("#grid img").evaluate_all("els => els.map(e => e.src)")


def rendered_after(page, action) -> float:
    """ms from ``action`` until the grid is rendered again."""
    before = page.locator("#grid").get_attribute("data-rendered")
    t0 = time.perf_counter()
    action()
    page.wait_for_function(
        "b => document.getElementById('grid').dataset.rendered !== b "
        "&& document.getElementById('grid').getAttribute('aria-busy') === 'false'", arg=before)
    return (time.perf_counter() - t0) * 1e3


def test_first_grid_shows_eight_samples_with_alt_text(context, server, watched):
    for _ in range(3):
        page, ms = open_page(context, server.url + "/?model=fashion-dcgan")
        TIMINGS.setdefault("first grid after opening the page", []).append(ms)
        assert ms < HANG_S * 1e3
        alts = page.locator("#grid img").evaluate_all("els => els.map(e => e.alt)")
        assert len(alts) == 8 and all("fashion-dcgan sample, seed" in a for a in alts)
        assert page.get_by_label("Truncation ψ").count() == 1
        page.close()


def test_new_seeds_bring_new_images(context, server, watched):
    page, _ = open_page(context, server.url + "/?model=fashion-dcgan&seeds=1,2,3,4,5,6,7,8")
    first = sources(page)
    rendered_after(page, lambda: page.get_by_role("button", name="New seeds").click())
    assert sources(page) != first and "seeds=1%2C2" not in page.url
    page.close()


@pytest.mark.parametrize("model", ["fashion-dcgan", "fashion-cgan"])
def test_psi_slider_rerenders_the_grid(context, server, watched, model):
    page, _ = open_page(context, server.url + f"/?model={model}&seeds=0-7")
    before = sources(page)
    for psi in ("0.7", "0.5", "0.3", "0.9", "1.2"):
        ms = rendered_after(page, lambda p=psi: page.locator("#psi").fill(p))
        TIMINGS.setdefault(f"psi move to new grid, {model}", []).append(ms)
        assert ms < HANG_S * 1e3
    assert sources(page) != before and "psi=1.2" in page.url
    page.close()


def test_switching_model_and_picking_a_class(context, server, watched):
    page, _ = open_page(context, server.url + "/?model=fashion-dcgan&seeds=0-7")
    assert page.locator("#class-label").is_hidden()
    rendered_after(page, lambda: page.get_by_label("Model").select_option("fashion-cgan"))
    assert page.locator("#class-label").is_visible()
    rendered_after(page, lambda: page.get_by_label("Class").select_option("Sandal"))
    captions = page.locator("#grid figcaption").all_inner_texts()
    assert len(captions) == 8 and all(c.startswith("Sandal, seed") for c in captions)
    assert "model=fashion-cgan" in page.url and "class=Sandal" in page.url
    page.close()


def test_a_shared_url_reproduces_the_view(context, server, watched):
    page, _ = open_page(context, server.url + "/?model=fashion-cgan&seeds=0-7")
    rendered_after(page, lambda: page.get_by_label("Class").select_option("Bag"))
    rendered_after(page, lambda: page.locator("#psi").fill("0.6"))
    page.locator("#grid button").nth(2).click()             # pin a seed
    shared, shown = page.url, sources(page)
    page.close()
    again, _ = open_page(context, shared)
    assert sources(again) == shown
    assert again.get_by_label("Class").input_value() == "Bag"
    assert again.locator("#grid button").nth(2).get_attribute("aria-pressed") == "true"
    again.close()


def test_api_errors_are_shown_as_the_apis_message(browser, server):
    # its own context: Chromium logs the refused request (422) to the console, which the
    # other tests' context must not see
    context = browser.new_context()
    page, _ = open_page(context, server.url + "/?model=fashion-dcgan&seeds=0-7")
    page.get_by_label("Seeds").fill("7-3")
    page.get_by_label("Seeds").press("Enter")
    page.get_by_label("Seeds").blur()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "runs backwards" in alert.inner_text()
    context.close()


def test_copy_as_curl_is_the_current_request(context, server, watched):
    page, _ = open_page(context, server.url + "/?model=fashion-dcgan&seeds=3,4&psi=0.5", 2)
    page.get_by_role("button", name="Copy as curl").click()
    text = page.locator("#curl").inner_text()
    body = json.loads(text.split("-d '")[1].split("'")[0])
    assert "/v1/models/fashion-dcgan/sample" in text
    assert body == {"seeds": "3,4", "truncation_psi": 0.5}
    page.close()


def test_root_answers_programs_json_and_unknown_assets_404(server):
    links = httpx.get(server.url + "/", headers={"accept": "application/json"}).json()
    assert links["docs"] == "/docs" and links["playground"] == "/"
    page = httpx.get(server.url + "/", headers={"accept": "text/html"})
    assert page.headers["content-type"].startswith("text/html") and "app.js" in page.text
    r = httpx.get(server.url + "/playground/../main.py")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_the_pages_own_assets_are_under_300_kb():
    folder = Path(playground.__file__).parent
    total = sum(p.stat().st_size for p in folder.iterdir()
                if p.suffix in (".html", ".js", ".css"))
    assert total < 300 * 1024, total
