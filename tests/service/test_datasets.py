"""Dataset uploads: what is accepted and how it is stored, and every attack on the upload
refused with its code, leaving nothing behind (not in the data dir, not in the system temp
dir). The hostile files are made in tests/service/crafted.py."""

from __future__ import annotations

import errno
import io
import json
import os
import struct
import time
import unicodedata
import zipfile

import httpx
import numpy as np
import pytest
from PIL import Image

from ganserve.service.uploads.ingest import square, stored_side
from tests.service import crafted
from tests.service.conftest import data_files, error, upload


@pytest.fixture
def api(upload_client):
    return upload_client()


def assert_nothing_left(client) -> None:
    assert data_files(client.data_dir) == set(), data_files(client.data_dir)
    assert list(client.system_tmp.iterdir()) == []


def rejected(client, content: bytes, status: int, code: str, filename: str = "set.zip"):
    r = upload(client, content, filename)
    body = error(r, status, code)
    assert_nothing_left(client)
    return body


# ------------------------------------------------------------------ accepted uploads
def test_upload_zip_with_class_folders_is_stored(api):
    r = upload(api, crafted.classes_zip({"Bag": 3, "Sandal": 2}), "bags.zip")
    assert r.status_code == 201, r.text
    d = r.json()
    assert r.headers["location"] == f"/v1/datasets/{d['id']}"
    assert (d["name"], d["images"], d["channels"], d["resolution"]) == ("bags", 5, 1, 28)
    assert d["classes"] == [{"name": "Bag", "count": 3}, {"name": "Sandal", "count": 2}]
    assert d["conditional"] and d["sha256"].startswith(d["id"]) and d["bytes"] > 0
    assert d["source"] == {"filename": "bags.zip", "kind": "zip",
                           "bytes": d["source"]["bytes"]}
    stored = np.load(api.data_dir / "datasets" / "uploads" / d["id"] / "data.npz")
    assert stored["x"].shape == (5, 1, 28, 28) and stored["y"].tolist() == [0, 0, 0, 1, 1]
    assert api.get(f"/v1/datasets/{d['id']}").json() == d
    assert list(api.system_tmp.iterdir()) == []


def test_upload_same_content_twice_is_the_same_dataset(api):
    first = upload(api, crafted.classes_zip({"Bag": 3}), "a.zip", name="mine").json()
    # the same images in another order and compression: the same content
    entries = [(f"Bag/{i:03d}.png", crafted.image(seed=hash(("Bag", i)) % 1000))
               for i in (2, 0, 1)]
    r = upload(api, crafted.zip_of(entries, compression=0), "b.zip", name="other")
    assert r.status_code == 200, r.text
    assert r.json()["id"] == first["id"] and r.json()["name"] == "mine"
    assert len(api.get("/v1/datasets").json()["datasets"]) == 1


def test_upload_npz_of_the_same_arrays_is_the_same_dataset(api):
    first = upload(api, crafted.classes_zip({"Bag": 2, "Coat": 1})).json()
    x = np.load(api.data_dir / "datasets" / "uploads" / first["id"] / "data.npz")["x"]
    r = upload(api, crafted.npz_of(images=x[:, 0], labels=np.array([0, 0, 1], np.uint8),
                                   class_names=np.array(["Bag", "Coat"])), "set.npz")
    assert r.status_code == 200 and r.json()["id"] == first["id"]


def test_upload_npz_nchw_unlabelled(api):
    x = crafted.RNG.integers(0, 256, (6, 3, 16, 16), dtype=np.uint8)
    d = upload(api, crafted.npz_of(images=x), "rgb.npz").json()
    assert (d["images"], d["channels"], d["resolution"], d["conditional"]) == (6, 3, 16, False)
    assert d["classes"] == [] and d["source"]["kind"] == "npz"


def test_upload_mixed_sizes_follow_the_resize_rule(api):
    wide = crafted.image(size=(40, 30), seed=1)
    content = crafted.zip_of({"a.png": crafted.image(28, seed=2), "b.png": wide})
    d = upload(api, content).json()
    assert d["resolution"] == stored_side(28, 128) == 28 and not d["conditional"]
    x = np.load(api.data_dir / "datasets" / "uploads" / d["id"] / "data.npz")["x"]
    expected = square(np.asarray(Image.open(io.BytesIO(wide))), 28)     # crop 30x30, Lanczos
    assert np.array_equal(x[1, 0], expected)
    assert expected.shape == (28, 28)


def test_upload_large_images_are_capped_at_the_stored_side(upload_client):
    api = upload_client(dataset_side=32)
    d = upload(api, crafted.zip_of({"a.png": crafted.image(100), "b.png": crafted.image(
        size=(120, 90))})).json()
    assert d["resolution"] == 32


def test_upload_color_jpeg_webp_and_alpha(api):
    content = crafted.zip_of({"Coat/a.jpg": crafted.image(24, "JPEG", "RGB"),
                              "Coat/b.webp": crafted.image(24, "WEBP", "RGB"),
                              "Bag/c.png": crafted.image(24, "PNG", "RGBA")})
    d = upload(api, content).json()
    assert d["channels"] == 3 and d["images"] == 3 and d["resolution"] == 24


def test_upload_grayscale_rgb_is_stored_with_one_channel(api):
    gray = np.asarray(Image.open(io.BytesIO(crafted.image(20))).convert("RGB"))
    buf = io.BytesIO()
    Image.fromarray(gray).save(buf, "PNG")
    d = upload(api, crafted.zip_of({"x.png": buf.getvalue()})).json()
    assert d["channels"] == 1


def test_upload_inside_one_top_folder_and_os_junk(api):
    content = crafted.zip_of({"myset/Bag/0.png": crafted.image(seed=1),
                              "myset/Coat/0.png": crafted.image(seed=2),
                              "__MACOSX/myset/._0.png": b"junk", "myset/.DS_Store": b"junk"})
    d = upload(api, content).json()
    assert [c["name"] for c in d["classes"]] == ["Bag", "Coat"]


def test_upload_preview_is_a_png_grid(api):
    d = upload(api, crafted.classes_zip({"Bag": 3, "Coat": 9})).json()
    r = api.get(d["links"]["preview"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    im = Image.open(io.BytesIO(r.content))
    cell = 28 + 2                                   # 28 px images, 2 px padding
    assert im.size == ((8 * cell + 2) * 2, (2 * cell + 2) * 2)      # upscaled x2 to >= 64


def test_datasets_list_pages_newest_first(api):
    ids = [upload(api, crafted.classes_zip({f"C{i}": 1})).json()["id"] for i in range(3)]
    first = api.get("/v1/datasets", params={"limit": 2}).json()
    assert [d["id"] for d in first["datasets"]] == ids[::-1][:2] and first["next"]
    rest = api.get("/v1/datasets", params={"limit": 2, "cursor": first["next"]}).json()
    assert [d["id"] for d in rest["datasets"]] == ids[:1] and rest["next"] is None
    error(api.get("/v1/datasets", params={"limit": 100_000}), 422, "invalid_input", "limit")
    error(api.get("/v1/datasets", params={"cursor": "f" * 16}), 404, "dataset_not_found")


def test_dataset_not_found_and_bad_ids(api):
    error(api.get("/v1/datasets/0123456789abcdef"), 404, "dataset_not_found", "id")
    error(api.get("/v1/datasets/0123456789abcdef/preview.png"), 404, "dataset_not_found")
    error(api.get("/v1/datasets/..%2F..%2Fetc"), 404, "not_found")
    error(api.get("/v1/datasets/ZZZ"), 422, "invalid_input", "id")
    error(api.delete("/v1/datasets/0123456789abcdef"), 404, "dataset_not_found")


def test_delete_removes_the_files(api):
    d = upload(api, crafted.classes_zip({"Bag": 2})).json()
    assert api.delete(f"/v1/datasets/{d['id']}").status_code == 204
    error(api.get(f"/v1/datasets/{d['id']}"), 404, "dataset_not_found")
    assert_nothing_left(api)


def metric(text: str, name: str) -> float:
    return next((float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                 if line.startswith(name + " ")), 0.0)


def test_upload_counts_in_metrics(api):
    names = ['ganserve_dataset_uploads_total{outcome="accepted",reason=""}',
             'ganserve_dataset_uploads_total{outcome="duplicate",reason=""}',
             'ganserve_dataset_uploads_total{outcome="rejected",reason="unsafe_entry"}']
    before = api.get("/metrics").text
    upload(api, crafted.classes_zip({"Bag": 2}))
    upload(api, crafted.classes_zip({"Bag": 2}))
    upload(api, crafted.symlink_zip())
    text = api.get("/metrics").text
    assert [metric(text, n) - metric(before, n) for n in names] == [1, 1, 1]
    assert metric(text, "ganserve_datasets") == 1
    assert metric(text, "ganserve_dataset_bytes") > 0


def test_unfinished_uploads_are_swept_at_start(upload_client, tmp_path):
    stale = tmp_path / "data" / "datasets" / ".incoming" / "dead"
    stale.mkdir(parents=True)
    (stale / "upload").write_bytes(b"x" * 100)
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    upload_client()
    assert not stale.exists()


# ------------------------------------------------------------------ attacks: archives
@pytest.mark.parametrize("name", ["../evil.png", "Bag/../../evil.png", "/etc/evil.png",
                                  "C:/evil.png", "c:evil.png", "Bag\\evil.png",
                                  "Bag/\x01.png"])
def test_upload_path_traversal_is_refused(api, name):
    rejected(api, crafted.zip_of({"Bag/ok.png": crafted.image(), name: crafted.image()}),
             422, "unsafe_path")


def test_upload_symlink_is_refused(api):
    rejected(api, crafted.symlink_zip(), 422, "unsafe_entry")


def test_upload_special_file_is_refused(api):
    rejected(api, crafted.fifo_zip(), 422, "unsafe_entry")


@pytest.mark.parametrize("names", [
    ["Bag/a.png", "Bag/a.png"],
    ["Bag/a.png", "Bag/A.png"],
    ["Bag/a.png", "Bag/./a.png"],
    ["Bag/a.png", "Bag//a.png"],
    [unicodedata.normalize("NFC", "Bag/é.png"), unicodedata.normalize("NFD", "Bag/é.png")],
])
def test_upload_duplicate_names_are_refused(api, names):
    rejected(api, crafted.zip_of([(n, crafted.image(seed=i)) for i, n in enumerate(names)]),
             422, "duplicate_name")


@pytest.mark.parametrize("name", ["Bag/inner.zip", "Bag/more.tar.gz", "Bag/x.npz"])
def test_upload_nested_archive_is_refused(api, name):
    inner = crafted.classes_zip({"Bag": 1})
    rejected(api, crafted.zip_of({"Bag/ok.png": crafted.image(), name: inner}), 422,
             "nested_archive")


def test_upload_zip_bomb_by_ratio_is_refused(api):
    rejected(api, crafted.ratio_bomb_zip(), 422, "zip_bomb")


def test_upload_zip_bomb_lying_about_its_size_is_refused(api):
    rejected(api, crafted.lying_size_zip(), 422, "zip_bomb")


def test_upload_zip_bomb_declaring_gigabytes_is_refused(api):
    rejected(api, crafted.huge_declared_zip(), 413, "zip_bomb")


def test_upload_overlapping_members_are_refused(api):
    rejected(api, crafted.overlapping_zip(), 422, "zip_bomb")


def test_upload_more_uncompressed_than_the_limit_is_refused(upload_client):
    api = upload_client(upload_max_uncompressed_bytes=4096)
    rejected(api, crafted.classes_zip({"Bag": 8}), 413, "zip_bomb")


@pytest.mark.parametrize("content", [b"", crafted.zip_of({}),
                                     crafted.zip_of({"Bag/": b"", ".DS_Store": b"x"})])
def test_upload_empty_archive_is_refused(api, content):
    rejected(api, content, 422, "empty_dataset")


def test_upload_not_a_zip_is_refused(api):
    rejected(api, b"this is not a zip archive at all" * 10, 422, "invalid_archive")


def test_upload_mixed_depths_are_refused(api):
    rejected(api, crafted.zip_of({"a.png": crafted.image(), "Bag/b.png": crafted.image()}),
             422, "bad_layout")


# ------------------------------------------------------------------ attacks: images
def test_upload_non_image_file_is_refused(api):
    rejected(api, crafted.zip_of({"Bag/a.png": crafted.image(), "Bag/notes.txt": b"hi"}),
             422, "not_an_image")


def test_upload_image_lying_about_its_type_is_refused(api):
    rejected(api, crafted.zip_of({"Bag/a.png": crafted.image(fmt="JPEG")}), 422,
             "image_type_mismatch")


def test_upload_text_named_as_an_image_is_refused(api):
    rejected(api, crafted.zip_of({"Bag/a.png": b"<html>not an image</html>"}), 422,
             "not_an_image")


def test_upload_truncated_image_is_refused(api):
    png = crafted.image(64)
    rejected(api, crafted.zip_of({"Bag/a.png": png[:len(png) // 2]}), 422, "corrupt_image")


def test_upload_corrupt_image_is_refused(api):
    rejected(api, crafted.zip_of({"Bag/a.png": crafted.corrupt_png()}), 422, "corrupt_image")


def test_upload_decompression_bomb_image_is_refused_from_its_header(api):
    bomb = crafted.bomb_png()
    assert len(bomb) < 100_000                       # ~50 KB (~400 B zipped) for 400 M pixels
    t0 = time.monotonic()
    rejected(api, crafted.zip_of({"Bag/a.png": crafted.image(), "Bag/b.png": bomb}), 422,
             "image_too_large")
    assert time.monotonic() - t0 < 5                 # refused from the header, not decoded


def test_upload_too_many_pixels_is_refused(upload_client):
    api = upload_client(upload_max_total_pixels=2000)
    rejected(api, crafted.classes_zip({"Bag": 3}), 413, "too_many_pixels")


def test_upload_too_many_files_is_refused(upload_client):
    api = upload_client(upload_max_files=4)
    rejected(api, crafted.classes_zip({"Bag": 5}), 422, "too_many_files")


def test_upload_too_many_classes_is_refused(upload_client):
    api = upload_client(upload_max_classes=3)
    rejected(api, crafted.classes_zip({"A": 1, "B": 1, "C": 1, "D": 1}), 422,
             "too_many_classes")
    labels = np.arange(4, dtype=np.int64)
    rejected(api, crafted.npz_of(images=np.zeros((4, 8, 8), np.uint8), labels=labels), 422,
             "too_many_classes", "x.npz")


def test_upload_larger_than_the_limit_is_refused(upload_client):
    api = upload_client(upload_max_bytes=20_000)
    content = crafted.zip_of({f"Bag/{i}.png": crafted.image(64, seed=i) for i in range(8)})
    assert len(content) > 20_000
    rejected(api, content, 413, "payload_too_large")


# ------------------------------------------------------------------ attacks: npz
def test_upload_pickled_npz_is_refused(api):
    objects = np.array([{"evil": "pickle"}, None], dtype=object)
    rejected(api, crafted.npz_of(images=objects), 422, "pickled_npz", "x.npz")


@pytest.mark.parametrize("arrays", [
    {"images": np.zeros((2, 8, 8), np.float32)},                       # dtype
    {"images": np.zeros((2, 8, 8, 3), np.uint8)},                      # NHWC
    {"images": np.zeros((8, 8), np.uint8)},                            # 2-D
    {"images": np.zeros((2, 8, 8), np.uint8), "labels": np.zeros(3, np.int64)},
    {"images": np.zeros((2, 8, 8), np.uint8), "labels": np.zeros(2, np.float64)},
    {"images": np.zeros((2, 8, 8), np.uint8), "labels": np.array([0, 2]),
     "class_names": np.array(["a", "b"])},                             # label out of range
    {"images": np.zeros((2, 8, 8), np.uint8), "extra": np.zeros(2)},   # unknown array
    {"x": np.zeros((2, 8, 8), np.uint8)},                              # no images
])
def test_upload_npz_wrong_dtype_or_shape_is_refused(api, arrays):
    rejected(api, crafted.npz_of(**arrays), 422, "invalid_npz", "x.npz")


def test_upload_npz_with_empty_images_is_refused(api):
    rejected(api, crafted.npz_of(images=np.zeros((0, 8, 8), np.uint8)), 422, "empty_dataset",
             "x.npz")


# ------------------------------------------------------------------ the form itself
def test_upload_needs_multipart(api):
    error(api.post("/v1/datasets", content=crafted.classes_zip({"Bag": 1}),
                   headers={"content-type": "application/zip"}), 415,
          "unsupported_media_type")
    assert_nothing_left(api)


def test_upload_other_file_types_are_refused(api):
    rejected(api, b"x" * 100, 415, "unsupported_file", "set.tar")


def test_upload_without_a_file_part_is_refused(api):
    r = api.post("/v1/datasets", files={"other": ("a.zip", b"PK", "application/zip")})
    error(r, 422, "invalid_form")
    r = api.post("/v1/datasets", data={"name": "x"}, files={})
    assert r.status_code in (415, 422)
    assert_nothing_left(api)


def test_upload_name_is_cleaned(api):
    d = upload(api, crafted.classes_zip({"Bag": 1}), "../../etc/pass wd.zip").json()
    assert d["name"] == "pass wd"
    d2 = upload(api, crafted.classes_zip({"Coat": 1}), "x.zip", name="<b>evil</b>\n").json()
    assert "<" not in d2["name"] and "\n" not in d2["name"]


def test_dataset_record_is_json_on_disk(api):
    d = upload(api, crafted.classes_zip({"Bag": 1})).json()
    meta = json.loads((api.data_dir / "datasets" / "uploads" / d["id"] / "dataset.json")
                      .read_text())
    assert meta["id"] == d["id"] and meta["sha256"] == d["sha256"]


# ------------------------------------------------------------------ the review's cases
def test_upload_progressive_jpeg_cpu_bomb_is_refused(api):
    t0 = time.monotonic()
    rejected(api, crafted.zip_of({"Bag/a.jpg": crafted.progressive_jpeg(2000)}), 422,
             "image_too_complex")
    assert time.monotonic() - t0 < 2
    # an ordinary progressive JPEG is fine
    assert upload(api, crafted.zip_of({"Bag/a.jpg": crafted.progressive_jpeg(1)}),
                  ).status_code == 201


@pytest.mark.parametrize("header", [
    "{'descr': '|u1', 'fortran_order': False, 'shape': (" + "9" * 30 + ", 28, 28), }",
    "{'descr': '|u1', 'fortran_order': False, 'shape': (-1, 28, 28), }",
    "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 28), }",
])
def test_upload_npz_header_tricks_are_refused(api, header):
    rejected(api, crafted.npy_header_npz(header), 422, "invalid_npz", "x.npz")


def test_upload_npz_corrupt_deflate_is_refused(api):
    buf = io.BytesIO()
    np.save(buf, np.zeros((4, 8, 8), np.uint8))
    data = bytearray(crafted.zip_of({"images.npy": buf.getvalue()}))     # deflated
    name_len, extra_len = struct.unpack("<HH", data[26:30])
    start = 30 + name_len + extra_len
    data[start:start + 3] = b"\xff\xff\xff"         # the compressed stream's first bytes
    rejected(api, bytes(data), 422, "invalid_npz", "x.npz")


def test_upload_decoder_surprise_is_a_422_not_a_500(api, monkeypatch):
    from PIL import ImageOps

    def broken(im):
        raise struct.error("unpack requires a buffer of 4 bytes")
    monkeypatch.setattr(ImageOps, "exif_transpose", broken)
    rejected(api, crafted.zip_of({"Bag/a.jpg": crafted.image(fmt="JPEG")}), 422,
             "corrupt_image")


def test_upload_image_member_too_big_is_refused(upload_client):
    api = upload_client(upload_max_image_bytes=2048)
    rejected(api, crafted.zip_of({"Bag/a.png": crafted.image(64)}), 413, "image_too_large")


def test_upload_huge_directory_refused_before_it_is_parsed(upload_client):
    api = upload_client(upload_max_files=10)
    rejected(api, crafted.overlapping_zip(copies=5000), 422, "too_many_files")


def test_upload_npz_with_one_huge_class_name_is_refused_from_its_header(upload_client):
    """Refused before the names are read: the API's memory does not grow by the 80 MB the
    padded array would take (measured with tracemalloc, which sees NumPy's buffers)."""
    import tracemalloc

    api = upload_client()
    content = crafted.long_class_name_npz()
    tracemalloc.start()
    try:
        body = rejected(api, content, 422, "invalid_npz", filename="set.npz")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "names of up to 2000000 characters" in body["message"]
    assert peak < 8 * len(content) + (16 << 20), f"peak {peak >> 20} MB for {len(content)} B"


def test_upload_directory_behind_a_signature_in_its_own_record_is_refused(upload_client):
    """The entry-count guard reads the record zipfile will use, not the last lookalike."""
    api = upload_client(upload_max_files=10)
    rejected(api, crafted.hidden_directory_zip(copies=5000), 422, "too_many_files")


def test_upload_dataset_too_large_and_storage_full(upload_client):
    api = upload_client(dataset_max_bytes=2 * 28 * 28 * 3, datasets_max_total_bytes=20_000)
    rejected(api, crafted.classes_zip({"Bag": 3}), 413, "dataset_too_large")
    api2 = upload_client(datasets_max_total_bytes=4000)
    assert upload(api2, crafted.classes_zip({"Bag": 2})).status_code == 201
    body = error(upload(api2, crafted.classes_zip({"Coat": 3})), 413, "storage_full")
    assert "DELETE" in body["message"]


def test_upload_many_tiny_parts_stop_early(api):
    boundary = "b"
    parts = "".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nx\r\n"
                    for _ in range(20_000))
    body = (parts + f"--{boundary}--\r\n").encode()
    t0 = time.monotonic()
    r = api.post("/v1/datasets", content=body,
                 headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    error(r, 422, "invalid_form")
    assert time.monotonic() - t0 < 2
    assert_nothing_left(api)


def test_upload_concurrency_limit(upload_client):
    api = upload_client(upload_max_concurrent=1)
    api.app.state.datasets._receiving = 1           # one upload already streaming in
    r = upload(api, crafted.classes_zip({"Bag": 1}))
    error(r, 429, "too_many_uploads")
    assert r.headers["retry-after"]
    api.app.state.datasets._receiving = 0
    assert upload(api, crafted.classes_zip({"Bag": 1})).status_code == 201


def test_upload_npz_gray_rgb_and_class_order_match_the_zip(api):
    first = upload(api, crafted.classes_zip({"Bag": 2, "Coat": 2})).json()
    x = np.load(api.data_dir / "datasets" / "uploads" / first["id"] / "data.npz")["x"]
    # the same images as RGB (gray), Coats listed first: the same dataset
    rgb = np.repeat(x, 3, axis=1)[[2, 3, 0, 1]]
    r = upload(api, crafted.npz_of(images=rgb, labels=np.array([1, 1, 0, 0]),
                                   class_names=np.array(["Bag", "Coat"])), "set.npz")
    assert r.status_code == 200 and r.json()["id"] == first["id"], r.text


def test_upload_transparency_key_and_16_bit_png(api):
    from PIL import PngImagePlugin  # noqa: F401 (registers the encoder options)

    key = Image.fromarray(np.full((8, 8), 50, np.uint8))
    buf = io.BytesIO()
    key.save(buf, "PNG", transparency=50)
    deep = Image.fromarray(np.full((8, 8), 40000, np.uint16))
    buf16 = io.BytesIO()
    deep.save(buf16, "PNG")
    d = upload(api, crafted.zip_of({"a.png": buf.getvalue(), "b.png": buf16.getvalue()}))
    x = np.load(api.data_dir / "datasets" / "uploads" / d.json()["id"] / "data.npz")["x"]
    assert x[0].max() == 0                          # the keyed colour is transparent: black
    assert x[1].min() == x[1].max() == round(40000 * 255 / 65535)


def test_fine_tune_path_into_uploads_is_refused(upload_client):
    api = upload_client()
    d = upload(api, crafted.classes_zip({"Bag": 2})).json()
    body = {"model": "baby-dcgan", "steps": 5,
            "dataset": {"path": f"uploads/{d['id']}/data.npz"}}
    err = error(api.post("/v1/jobs/fine-tune", json=body), 422, "invalid_input", "dataset")
    assert "given by id" in err["message"]


# ------------------------------------------------------------------ the hostile pass's cases
def test_upload_bzip2_member_is_refused_before_inflating(api):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_BZIP2) as zf:
        zf.writestr("Bag/x.png", b"\x89PNG\r\n\x1a\n" + b"\0" * (4 << 20))
    body = rejected(api, buf.getvalue(), 422, "invalid_archive")
    assert "only stored and deflate" in body["message"]


def test_upload_nul_in_a_member_name_is_refused(api):
    data = crafted.zip_of({"Bag/a.pngZtxt": crafted.image(), "Bag/b.png": crafted.image()})
    rejected(api, data.replace(b"a.pngZtxt", b"a.png\x00txt"), 422, "unsafe_path")


def test_upload_directory_that_lies_about_its_count_is_refused(upload_client):
    api = upload_client(upload_max_files=10)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(20_000):
            zf.writestr(f"{i:x}", b"")
    data = bytearray(buf.getvalue())
    at = data.rfind(b"PK\x05\x06")
    data[at + 8:at + 12] = struct.pack("<HH", 1, 1)         # "one entry"
    body = rejected(api, bytes(data), 422, "too_many_files")
    assert "directory lists" in body["message"]             # refused before parsing


@pytest.mark.parametrize("name", ["B\x85ag", "\u202eBag", "Bag\u2028", "\u200b", "Bag\ufeff",
                                  " ", " Bag"])
def test_upload_class_folder_names_follow_one_rule(api, name):
    rejected(api, crafted.zip_of({f"{name}/a.png": crafted.image()}), 422, "bad_layout")
    rejected(api, crafted.npz_of(images=np.zeros((1, 8, 8), np.uint8),
                                 labels=np.zeros(1, np.int64), class_names=np.array([name])),
             422, "invalid_npz", "x.npz")


def test_upload_npz_over_long_header_is_invalid_not_pickled(api):
    header = "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 8, 8), }" + " " * 200_000
    rejected(api, crafted.npy_header_npz(header, zipfile.ZIP_STORED), 422, "invalid_npz",
             "x.npz")


@pytest.mark.parametrize("body", [
    # no closing boundary
    b'--B\r\nContent-Disposition: form-data; name="file"; filename="d.zip"\r\n\r\nPK',
    # a boundary of 5000 characters
    None,
])
def test_upload_broken_multipart_is_refused(api, body):
    boundary = "B" if body is not None else "x" * 5000
    if body is None:
        body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                f'filename="d.zip"\r\n\r\nPK\r\n--{boundary}--\r\n').encode()
    r = api.post("/v1/datasets", content=body,
                 headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    error(r, 422, "invalid_form")
    assert_nothing_left(api)


def test_upload_client_gone_mid_body_is_499_not_500(server_factory, store):
    import socket

    server = server_factory(store)
    content = crafted.classes_zip({"Bag": 40})
    body = (b'--B\r\nContent-Disposition: form-data; name="file"; filename="d.zip"\r\n\r\n'
            + content + b"\r\n--B--\r\n")
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(b"POST /v1/datasets HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data;"
                  b" boundary=B\r\nContent-Length: %d\r\n\r\n" % len(body)
                  + body[:len(body) // 2])
    deadline = time.monotonic() + 10
    text = ""
    while time.monotonic() < deadline:
        text = httpx.get(server.url + "/metrics").text
        if 'endpoint="/v1/datasets",model="",status="499"' in text:
            break
        time.sleep(0.1)
    assert 'endpoint="/v1/datasets",model="",status="499"' in text
    assert 'status="500"' not in text
    assert data_files(server.data_dir) == set()


def test_upload_over_the_quota_is_refused_before_anything_is_converted(upload_client,
                                                                       monkeypatch):
    """The quota is judged from the headers: no conversion array is even created."""
    from ganserve.service.uploads import ingest as ingest_module

    def no_conversion(*a, **k):
        raise AssertionError("converted before the quota was checked")
    monkeypatch.setattr(ingest_module.np.lib.format, "open_memmap", no_conversion)
    api = upload_client(datasets_max_total_bytes=1024)
    for content, filename in ((crafted.classes_zip({"Bag": 3}), "set.zip"),
                              (crafted.npz_of(images=np.zeros((4, 28, 28), np.uint8)),
                               "set.npz")):
        rejected(api, content, 413, "storage_full", filename=filename)


def test_upload_to_a_full_disk_is_a_507_not_a_crash(upload_client, monkeypatch, store):
    """A full disk fails the up-front allocation of the conversion's file (a sparse memmap
    would have died of SIGBUS at its first page the disk cannot hold)."""
    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "posix_fallocate", full)
    api = upload_client()
    body = rejected(api, crafted.classes_zip({"Bag": 3}), 507, "storage_full")
    assert "disk" in body["message"]
    assert api.post("/v1/models/baby-dcgan/sample", json={"seeds": [1]}).status_code == 200
