"""The web playground at ``/`` in a real headless Chromium, against ``ganserve serve`` on the
shipped models: it samples, re-renders as psi moves, brings new seeds, picks a class,
reproduces a shared URL, shows the API's errors, and fetches nothing from outside.

Timings (first grid after opening the page, a psi move until the grid is re-rendered) are
measured and printed as a table (``pytest -s``); the issue's targets are 1 s and 200 ms on
this project's machine, which a test does not assert (the machines are noisy): only a
generous bound that catches a page that hangs."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image

import ganserve.service.playground as playground
from ganserve.images import SNEAKER_PNG
from tests.browser.conftest import shoot

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


def rendered_after(page, action, target: str = "grid") -> float:
    """ms from ``action`` until the element ``target`` (an id) is rendered again."""
    before = page.locator(f"#{target}").get_attribute("data-rendered")
    t0 = time.perf_counter()
    action()
    page.wait_for_function(
        "([id, b]) => document.getElementById(id).dataset.rendered !== b "
        "&& document.getElementById(id).getAttribute('aria-busy') === 'false'",
        arg=[target, before])
    return (time.perf_counter() - t0) * 1e3



def test_first_grid_shows_eight_samples_with_alt_text(context, server, watched):
    for _ in range(3):
        page, ms = open_page(context, server.url + "/?model=fashion-dcgan")
        TIMINGS.setdefault("first grid after opening the page", []).append(ms)
        assert ms < HANG_S * 1e3
        alts = page.locator("#grid img").evaluate_all("els => els.map(e => e.alt)")
        assert len(alts) == 8 and all("fashion-dcgan sample, seed" in a for a in alts)
        assert page.get_by_label("Truncation ψ").count() == 1
        shoot(page, "sample")
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
    rendered_after(page, lambda: page.locator("#model").select_option("fashion-cgan"))
    assert page.locator("#class-label").is_visible()
    rendered_after(page, lambda: page.locator("#class").select_option("Sandal"))
    captions = page.locator("#grid figcaption").all_inner_texts()
    assert len(captions) == 8 and all(c.startswith("Sandal, seed") for c in captions)
    assert "model=fashion-cgan" in page.url and "class=Sandal" in page.url
    rendered_after(page, lambda: page.locator("#class").select_option("one row per class"))
    captions = page.locator("#grid figcaption").all_inner_texts()
    assert len(captions) == 80 and captions[0].startswith("T-shirt/top, seed 0")
    assert captions[79].startswith("Ankle boot, seed 7")
    shoot(page, "classes")
    page.close()


def test_a_shared_url_reproduces_the_view(context, server, watched):
    page, _ = open_page(context, server.url + "/?model=fashion-cgan&seeds=0-7")
    rendered_after(page, lambda: page.locator("#class").select_option("Bag"))
    rendered_after(page, lambda: page.locator("#psi").fill("0.6"))
    page.locator("#grid button").nth(2).click()             # pin a seed
    shared, shown = page.url, sources(page)
    page.close()
    again, _ = open_page(context, shared)
    assert sources(again) == shown
    assert again.locator("#class").input_value() == "Bag"
    assert again.locator("#grid button").nth(2).get_attribute("aria-pressed") == "true"
    again.close()


def test_api_errors_are_shown_as_the_apis_message(browser, server):
    # its own context: Chromium logs the refused request (422) to the console, which the
    # other tests' context must not see
    context = browser.new_context()
    page, _ = open_page(context, server.url + "/?model=fashion-dcgan&seeds=0-7")
    page.locator("#seeds").fill("7-3")
    page.locator("#seeds").press("Enter")
    page.locator("#seeds").blur()
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
    assert page.headers["vary"] == "Accept"            # one URL, two answers
    assert httpx.head(server.url + "/", headers={"accept": "text/html"}).status_code == 200
    for path in ("/playground/__init__.py", "/playground/%2e%2e%2fmain.py",
                 "/playground/index.html"):        # only the modules and styles, by name
        r = httpx.get(server.url + path)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", path


def test_the_pages_own_assets_are_under_300_kb():
    folder = Path(playground.__file__).parent
    total = sum(p.stat().st_size for p in folder.iterdir()
                if p.suffix in (".html", ".js", ".css"))
    assert total < 300 * 1024, total


def frame_src(page) -> str:
    return page.locator("#frame").get_attribute("src")


def test_interpolation_scrubs_prefetched_frames_and_downloads(context, server, watched):
    page = context.new_page()
    posts = []
    page.on("request", lambda r: r.method == "POST" and posts.append(r.url))
    page.goto(server.url + "/?model=fashion-dcgan&mode=interpolate&from=1&to=2&frames=12")
    page.wait_for_function("document.getElementById('frame').dataset.rendered")
    assert [u.rsplit("/", 1)[1] for u in posts] == ["interpolate"]    # every frame at once
    first = frame_src(page)
    for t in ("5", "11", "3"):
        t0 = time.perf_counter()
        page.locator("#scrub").fill(t)
        page.wait_for_function("t => document.getElementById('frame').dataset.frame === t", arg=t)
        TIMINGS.setdefault("scrub to a frame, DCGAN", []).append((time.perf_counter() - t0) * 1e3)
    assert frame_src(page) != first and len(posts) == 1 and "t=3" in page.url
    assert page.locator("#frame-no").inner_text() == "4 / 12"
    page.get_by_role("button", name="Play").click()
    page.wait_for_function("document.getElementById('frame').dataset.frame !== '3'")
    page.get_by_role("button", name="Pause").click()
    shoot(page, "interpolate")
    for fmt, magic in (("GIF", b"GIF89a"), ("WebP", b"RIFF")):
        with page.expect_download() as dl:
            page.get_by_role("button", name=f"Download {fmt}").click()
        assert Path(dl.value.path()).read_bytes()[:len(magic)] == magic
    page.close()


def test_interpolation_of_a_conditional_model_morphs_classes(context, server, watched):
    page = context.new_page()
    page.goto(server.url + "/?model=fashion-cgan&mode=interpolate&class=Sneaker&from=3&to=3")
    page.wait_for_function("document.getElementById('frame').dataset.rendered")
    first = frame_src(page)
    rendered_after(page, lambda: page.get_by_label("To class").select_option("Sandal"), "frame")
    page.locator("#scrub").fill("15")
    assert frame_src(page) != first and "tclass=Sandal" in page.url
    page.close()


def test_style_mix_grid_follows_presets_and_the_layer_range(context, server, watched):
    page = context.new_page()
    page.goto(server.url + "/?model=fashion-stylegan&mode=mix&rows=85,100&cols=55,821,293")
    page.wait_for_function("document.getElementById('mix-grid').dataset.rendered")
    size = page.locator("#mix-grid").evaluate("i => [i.naturalWidth, i.naturalHeight]")
    assert size == [4 * 64, 3 * 64]                 # (cols + 1) x (rows + 1) cells, scale 2
    middle = page.locator("#mix-grid").get_attribute("src")
    rendered_after(page, lambda: page.get_by_label("Columns' styles").select_option("coarse"),
                   "mix-grid")
    assert "styles=coarse" in page.url and page.locator("#layers-value").inner_text() \
        == "layers 0–3 of 0–7"
    coarse = page.locator("#mix-grid").get_attribute("src")
    rendered_after(page, lambda: page.get_by_label("To layer").fill("7"), "mix-grid")
    assert "styles=0-7" in page.url and page.get_by_label("Columns' styles").input_value() \
        == "custom"
    assert len({middle, coarse, page.locator("#mix-grid").get_attribute("src")}) == 3
    shoot(page, "style-mix")
    page.close()


def test_style_mix_tab_is_offered_for_stylegan_only(context, server, watched):
    page, _ = open_page(context, server.url + "/?model=fashion-dcgan&seeds=0-7")
    assert page.get_by_role("tab", name="Style mix").is_hidden()
    rendered_after(page, lambda: page.locator("#model").select_option("fashion-stylegan"))
    assert page.get_by_role("tab", name="Style mix").is_visible()
    page.close()


@pytest.fixture(scope="module")
def sneaker(tmp_path_factory) -> Path:
    """A Fashion-MNIST test image (a Sneaker) no model or encoder trained on, as a PNG."""
    path = tmp_path_factory.mktemp("image") / "sneaker.png"
    path.write_bytes(base64.b64decode(SNEAKER_PNG))
    return path


def psnr_of(page) -> float:
    return float(page.locator("#image-scores").inner_text().split("PSNR ")[1].split(" dB")[0])


def test_project_an_image_refine_it_and_edit_it(context, server, watched, sneaker):
    page = context.new_page()
    page.goto(server.url + "/?model=fashion-stylegan&mode=image")
    page.wait_for_function("document.getElementById('edited').dataset.rendered")
    page.locator("#image-file").set_input_files(str(sneaker))
    page.wait_for_function("document.getElementById('image-scores').textContent"
                           ".startsWith('encoder')")
    encoder = psnr_of(page)
    assert page.locator("#edit-start").input_value() == "image"
    page.locator("#refine-steps").fill("40")
    page.get_by_role("button", name="Refine (a project job)").click()
    page.wait_for_function("document.getElementById('refine-status').textContent"
                           ".startsWith('done')", timeout=120_000)
    assert page.locator("#image-scores").inner_text().startswith("refined (40 steps)")
    assert psnr_of(page) >= encoder and page.locator("#refine-chart svg").count() == 1
    before = page.locator("#edited").get_attribute("src")
    rendered_after(page, lambda: page.locator("[data-direction=pc0]").fill("1.5"), "edited")
    assert page.locator("#edited").get_attribute("src") != before and "pc0%3A1.5" in page.url
    assert "your image" in page.locator("#edited").get_attribute("alt")
    shoot(page, "your-image")
    # the projection feeds the other modes: interpolate from it (in w), style-mix it
    page.get_by_role("button", name="Interpolate it to a seed").click()
    page.wait_for_function("document.getElementById('frame').dataset.rendered")
    assert "from=image" in page.url and page.locator("#space").input_value() == "w"
    page.get_by_role("tab", name="Style mix").click()
    page.wait_for_function("document.getElementById('mix-grid').dataset.rendered")
    rows = len(page.locator("#mix-rows").input_value().split(","))
    height = page.locator("#mix-grid").evaluate("i => i.naturalHeight")
    assert height == (rows + 2) * 64                # the image's row above the seeds' rows
    # a second image: interpolate from the first to it
    page.get_by_role("tab", name="Your image").click()
    flipped = sneaker.with_name("flipped.png")
    Image.open(sneaker).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(flipped)
    page.locator("#image-file").set_input_files(str(flipped))
    page.wait_for_function("document.getElementById('image-scores').textContent"
                           ".startsWith('encoder')")
    page.get_by_role("tab", name="Interpolate").click()
    page.wait_for_function("document.getElementById('frame').dataset.rendered")
    rendered_after(page, lambda: page.locator("#to").fill("image") or page.locator("#to")
                   .press("Enter"), "frame")
    rendered_after(page, lambda: page.locator("#from").fill("previous") or page.locator(
        "#from").press("Enter"), "frame")
    assert page.locator("#interp-error").is_hidden()
    assert "from=previous" in page.url and "to=image" in page.url
    assert "from previous to image" in page.locator("#frame").get_attribute("alt")
    page.close()


@pytest.mark.parametrize("model", ["fashion-dcgan", "fashion-cgan"])
def test_direction_sliders_rerender_the_edit(context, server, watched, model):
    page = context.new_page()
    page.goto(server.url + f"/?model={model}&mode=image&eseed=7")
    page.wait_for_function("document.getElementById('edited').dataset.rendered")
    assert page.locator("#edit-start").input_value() == "seed"
    start = page.locator("#edited").get_attribute("src")
    for v in ("1", "2", "-1", "-2.5", "0.5"):
        ms = rendered_after(page, lambda v=v: page.locator("[data-direction=pc0]").fill(v),
                            "edited")
        TIMINGS.setdefault(f"direction slider to new image, {model}", []).append(ms)
    rendered_after(page, lambda: page.locator("#pair-amount").fill("1"), "edited")
    assert page.locator("#edited").get_attribute("src") != start
    assert "eseed=7" in page.url and "-%3E" in page.url      # the class pair is in the URL
    page.close()


def test_a_bad_image_shows_the_apis_message(browser, server, tmp_path):
    context = browser.new_context()           # the refused upload (422) is logged: own context
    page = context.new_page()
    page.goto(server.url + "/?model=fashion-dcgan&mode=image")
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"this is not a PNG")
    page.locator("#image-file").set_input_files(str(bad))
    alert = page.locator("#image-error")
    alert.wait_for()
    assert "is not a PNG, JPEG or WebP image" in alert.inner_text(), alert.inner_text()
    context.close()


def test_quality_shows_figures_as_charts_and_a_table(context, server, watched):
    page = context.new_page()
    page.goto(server.url + "/?model=fashion-dcgan&mode=quality")
    page.locator("#quality svg").first.wait_for()
    assert page.locator("#quality svg[role=img]").count() == 3
    fid = page.locator("#quality tr", has_text="FID").inner_text()
    assert "3.588" in fid                                    # the shipped version's FID
    assert "real images (floor)" in page.locator("#quality thead").inner_text()
    overview = page.locator("#models-overview tbody tr").all_inner_texts()
    assert [r.split()[0] for r in overview] == ["fashion-cgan", "fashion-dcgan",
                                                "fashion-stylegan"]
    shoot(page, "quality")
    page.close()


def test_tabs_work_from_the_keyboard(context, server, watched):
    page, _ = open_page(context, server.url + "/?model=fashion-dcgan&seeds=0-7")
    page.get_by_role("tab", name="Sample").focus()
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.id") == "tab-interpolate"
    assert page.get_by_role("tabpanel").get_attribute("id") == "panel-interpolate"
    assert "mode=interpolate" in page.url
    page.keyboard.press("End")
    assert page.evaluate("document.activeElement.id") == "tab-jobs"
    page.close()


def test_api_key_stays_in_the_tab_and_goes_as_a_bearer_token(context, server, watched):
    page, _ = open_page(context, server.url + "/?model=fashion-dcgan&seeds=0-7")
    with page.expect_request(lambda r: r.url.endswith("/sample")) as sampled:
        page.get_by_label("API key").fill("k-123")
        page.get_by_label("API key").press("Enter")
    assert sampled.value.headers.get("authorization") == "Bearer k-123"
    assert "k-123" not in page.url
    page.get_by_role("button", name="Copy as curl").click()
    assert '-H "authorization: Bearer $API_KEY"' in page.locator("#curl").inner_text()
    assert "k-123" not in page.locator("#curl").inner_text()
    assert page.evaluate("sessionStorage.getItem('ganserve-api-key')") == "k-123"
    assert page.evaluate("localStorage.length") == 0
    page.evaluate("sessionStorage.clear()")
    page.close()


def test_the_page_fits_a_phone(browser, server):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    for mode in ("sample", "interpolate", "mix", "image", "quality", "jobs"):
        page.goto(server.url + f"/?model=fashion-stylegan&mode={mode}")
        page.wait_for_load_state("networkidle")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, mode
        if mode == "sample":
            shoot(page, "phone")
    context.close()


def test_dropping_an_image_projects_it(context, server, watched):
    page = context.new_page()
    page.goto(server.url + "/?model=fashion-dcgan&mode=image")
    page.wait_for_function("document.getElementById('edited').dataset.rendered")
    page.evaluate("""async (b64) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const data = new DataTransfer();
        data.items.add(new File([bytes], "dropped.png", { type: "image/png" }));
        document.getElementById("drop").dispatchEvent(
            new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true }));
    }""", SNEAKER_PNG)
    page.wait_for_function("document.getElementById('image-scores').textContent"
                           ".startsWith('encoder')")
    assert page.locator("#drop .drop-name").inner_text() == "dropped.png"
    assert page.locator("#image-input").is_visible()
    page.close()


def test_a_projection_belongs_to_its_model(browser, server, sneaker, tmp_path):
    context = browser.new_context()          # the refused file (422) is logged: own context
    page = context.new_page()
    page.goto(server.url + "/?model=fashion-dcgan&mode=image")
    page.wait_for_function("document.getElementById('edited').dataset.rendered")
    page.locator("#image-file").set_input_files(str(sneaker))
    page.wait_for_function("document.getElementById('image-scores').textContent"
                           ".startsWith('encoder')")
    scores = page.locator("#image-scores").inner_text()
    # a refused file leaves the last projection in place, with the API's message
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"this is not a PNG")
    page.locator("#image-file").set_input_files(str(bad))
    page.locator("#image-error").wait_for()
    assert page.locator("#image-scores").inner_text() == scores
    assert page.locator("#image-pair").is_visible()
    # another model: the DCGAN's latent is not offered to it anywhere
    rendered_after(page, lambda: page.locator("#model").select_option("fashion-stylegan"),
                   "edited")
    assert page.locator("#image-pair").is_hidden() and page.locator("#refine-form").is_hidden()
    assert page.locator("#edit-start").input_value() == "seed"
    page.get_by_role("tab", name="Style mix").click()
    page.wait_for_function("document.getElementById('mix-grid').dataset.rendered")
    assert page.locator("#mix-image-label").is_hidden()
    # back to the DCGAN: the projection is there again
    page.locator("#model").select_option("fashion-dcgan")        # Style mix -> Sample
    assert page.get_by_role("tabpanel").get_attribute("id") == "panel-sample"
    page.get_by_role("tab", name="Your image").click()
    assert page.locator("#image-pair").is_visible()
    context.close()


def test_a_hand_edited_link_is_brought_into_range(context, server, watched):
    page = context.new_page()
    page.goto(server.url + "/?model=fashion-dcgan&mode=interpolate&psi=9&t=2.5&pinned=abc,4"
              "&frames=500")
    page.wait_for_function("document.getElementById('frame').dataset.rendered")
    assert page.locator("#psi").input_value() == "1.5" and page.locator(
        "#psi-value").inner_text() == "1.50"
    assert page.locator("#frame-no").inner_text() == "1 / 64"
    assert "pinned=4" in page.url and "psi=1.5" in page.url
    page.goto(server.url + "/?model=fashion-dcgan&mode=mix")       # no Style mix for a DCGAN
    page.locator("#grid img").first.wait_for()
    assert "mode=mix" not in page.url
    page.close()


def test_one_row_per_class_keeps_each_class_on_its_row(context, server, watched):
    page = context.new_page()
    page.goto(server.url + "/?model=fashion-cgan&seeds=1,2,3&class=*")
    page.locator("#grid img").nth(29).wait_for()
    columns = page.locator("#grid").evaluate(
        "g => getComputedStyle(g).gridTemplateColumns.split(' ').length")
    assert columns == 3
    assert page.locator("#grid figcaption").nth(3).inner_text() == "Trouser, seed 1"
    page.get_by_role("button", name="Copy as curl").click()
    assert page.locator("#curl").inner_text().count("curl -s") == 10
    page.close()


def test_style_mix_custom_range_and_empty_seeds(context, server, watched):
    page = context.new_page()
    page.goto(server.url + "/?model=fashion-stylegan&mode=mix&rows=1,2&cols=3,4")
    page.wait_for_function("document.getElementById('mix-grid').dataset.rendered")
    rendered_after(page, lambda: page.get_by_label("Columns' styles").select_option("custom"),
                   "mix-grid")
    assert "styles=4-5" in page.url                      # the middle preset's range, as shown
    page.locator("#mix-rows").fill("")
    page.locator("#mix-rows").press("Enter")
    assert page.locator("#mix-error").inner_text() == "Row seeds: give at least one seed"
    assert "stale" in page.locator("#mix-grid").get_attribute("class")
    page.close()


def test_a_link_to_a_missing_job_says_so(browser, server):
    context = browser.new_context()          # the refused request (404) is logged
    page = context.new_page()
    page.goto(server.url + "/?mode=jobs&job=0123456789abcdef0123456789abcdef")
    page.locator("#job-error").wait_for()
    assert page.locator("#job-error").inner_text().startswith("job 0123456789abcdef")
    assert page.locator("#job").is_hidden() and "job=" not in page.url
    context.close()


UNNAMED = """() => {
    const shown = (e) => e.offsetParent !== null;
    const controls = [...document.querySelectorAll("input, select, button")].filter(shown);
    const unnamed = controls.filter((e) => !(e.labels?.length || e.getAttribute("aria-label")
        || (e.tagName === "BUTTON" && e.textContent.trim())));
    const images = [...document.querySelectorAll("img")].filter(shown);
    return [...unnamed.map((e) => e.outerHTML.slice(0, 80)),
            ...images.filter((i) => !i.alt).map((i) => i.outerHTML.slice(0, 80))];
}"""


@pytest.mark.parametrize("mode", ["sample", "interpolate", "mix", "image", "quality", "jobs"])
def test_every_control_has_a_label_and_every_image_alt_text(context, server, watched, mode):
    page = context.new_page()
    page.goto(server.url + f"/?model=fashion-stylegan&mode={mode}")
    page.wait_for_load_state("networkidle")
    assert page.evaluate(UNNAMED) == []
    page.close()
