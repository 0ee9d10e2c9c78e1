"""The job API without a worker: submissions checked at once, records, idempotency, listing,
cancel of a queued job, jobs switched off. (Embedded mode's SQLite broker takes the messages.)"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest

from tests.jobs.conftest import fine_tune_body
from tests.service import crafted
from tests.service.conftest import error, make_client, upload, wait_ready


@pytest.fixture
def api(job_models, data_dir):
    with make_client(job_models, data_dir=data_dir) as c:
        wait_ready(c)
        yield c


def submit(api, body: dict, kind: str = "fine-tune", **headers):
    return api.post(f"/v1/jobs/{kind}", json=body, headers=headers)


def test_fine_tune_submission_queued_with_location(api):
    r = submit(api, fine_tune_body())
    assert r.status_code == 202, r.text
    job = r.json()
    assert r.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["state"] == "queued" and job["version"] == "1" and job["attempts"] == 0
    assert job["request"]["dataset"] == {"name": None, "id": None, "path": "idx",
                                         "classes": ["class3"], "limit": None}
    assert api.get(job["links"]["self"]).json()["id"] == job["id"]


@pytest.mark.parametrize(("body", "status", "code", "field"), [
    (fine_tune_body(model="nope"), 404, "model_not_found", "name"),
    (fine_tune_body(version="9"), 404, "version_not_found", "version"),
    (fine_tune_body(dataset={"path": "idx", "classes": ["Bagg"]}), 422, "invalid_input",
     "dataset"),
    (fine_tune_body(dataset={"path": "../../etc"}), 422, "invalid_input", "dataset"),
    (fine_tune_body(dataset={"path": "/etc"}), 422, "invalid_input", "dataset"),
    (fine_tune_body(dataset={"path": "missing"}), 422, "invalid_input", "dataset"),
    (fine_tune_body(dataset={"path": "a\u0000b"}), 422, "invalid_input", "dataset.path"),
    (fine_tune_body(dataset={"name": "fashion-mnist", "path": "idx"}), 422, "invalid_input",
     "dataset"),
    (fine_tune_body(dataset={"name": "imagenet"}), 422, "invalid_input", "dataset.name"),
    (fine_tune_body(steps=0), 422, "invalid_input", "steps"),
    (fine_tune_body(steps=10_000_001), 422, "invalid_input", "steps"),
    (fine_tune_body(steps=200_000), 422, "invalid_input", "steps"),   # over the setting
    (fine_tune_body(lr_g=0), 422, "invalid_input", "lr_g"),
    (fine_tune_body(freeze_d=3), 422, "invalid_input", "freeze_d"),
    (fine_tune_body(name="Bad Name"), 422, "invalid_input", "name"),
    (fine_tune_body(name="baby-cgan"), 422, "invalid_input", "name"),  # another family
    (fine_tune_body(stpes=5), 422, "invalid_input", "stpes"),
])
def test_fine_tune_bad_submission_rejected(api, body, status, code, field):
    body = error(submit(api, body), status, code, field)
    assert api.get("/v1/jobs").json()["jobs"] == [], body


def test_fine_tune_unknown_field_suggests_the_right_one(api):
    body = error(submit(api, fine_tune_body(stpes=5)), 422, "invalid_input", "stpes")
    assert "did you mean 'steps'" in body["message"]


def test_fine_tune_conditional_model_needs_its_classes(api, data_dir):
    npz = data_dir / "datasets" / "other.npz"
    rng = np.random.default_rng(0)
    np.savez(npz, x=rng.integers(0, 255, (20, 28, 28), dtype=np.uint8),
             y=np.arange(20) % 2, class_names=np.array(["cat", "dog"]))
    body = fine_tune_body(model="baby-cgan", dataset={"path": "other.npz"})
    msg = error(submit(api, body), 422, "invalid_input", "dataset")["message"]
    assert "class0" in msg and "cat" in msg


def test_fine_tune_wrong_channels_rejected(api, data_dir):
    folder = data_dir / "datasets" / "rgb"
    folder.mkdir()
    from PIL import Image

    for i in range(3):
        Image.fromarray(np.full((20, 20, 3), i * 60, np.uint8)).save(folder / f"{i}.png")
    # a 1-channel model takes RGB images only through the documented conversion: accepted
    assert submit(api, fine_tune_body(dataset={"path": "rgb"})).status_code == 202


def test_non_json_submission_is_415(api):
    r = api.post("/v1/jobs/fine-tune", content=b"model=x",
                 headers={"content-type": "application/x-www-form-urlencoded"})
    error(r, 415, "unsupported_media_type")


def test_idempotency_key_returns_the_same_job(api):
    first = submit(api, fine_tune_body(), **{"Idempotency-Key": "abc-1"})
    again = submit(api, fine_tune_body(), **{"Idempotency-Key": "abc-1"})
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert len(api.get("/v1/jobs").json()["jobs"]) == 1


def test_idempotency_key_reused_for_another_request_is_409(api):
    submit(api, fine_tune_body(), **{"Idempotency-Key": "abc-2"})
    body = error(submit(api, fine_tune_body(steps=13), **{"Idempotency-Key": "abc-2"}), 409,
                 "conflict", "Idempotency-Key")
    assert body["details"]["job"]


def test_evaluate_submission_and_bad_input(api):
    ok = submit(api, {"model": "baby-dcgan", "n": 64, "reference": {"path": "idx"}},
                "evaluate")
    assert ok.status_code == 202, ok.text
    assert ok.json()["type"] == "evaluate" and ok.json()["links"]["samples"] is None
    error(submit(api, {"model": "baby-dcgan", "n": 8}, "evaluate"), 422, "invalid_input", "n")
    error(submit(api, {"model": "baby-dcgan", "n": 60_000, "reference": {"path": "idx"}},
                 "evaluate"), 422, "invalid_input", "n")
    error(submit(api, {"model": "baby-dcgan", "reference": {"path": "idx", "limit": 5}},
                 "evaluate"), 422, "invalid_input", "reference")
    error(submit(api, {"model": "baby-dcgan", "extractor": "inception",
                       "reference": {"path": "idx"}}, "evaluate"), 422, "invalid_input",
          "extractor")
    error(submit(api, {"model": "baby-dcgan", "metrics": ["fid", "fidd"],
                       "reference": {"path": "idx"}}, "evaluate"), 422, "invalid_input")


def test_list_filters_newest_first_and_pages(api):
    ids = [submit(api, fine_tune_body(seed=i)).json()["id"] for i in range(5)]
    submit(api, {"model": "baby-dcgan", "n": 64, "reference": {"path": "idx"}}, "evaluate")
    page = api.get("/v1/jobs", params={"type": "fine-tune", "limit": 2}).json()
    assert [j["id"] for j in page["jobs"]] == ids[::-1][:2]
    seen = [j["id"] for j in page["jobs"]]
    while page["next"]:
        page = api.get("/v1/jobs", params={"type": "fine-tune", "limit": 2,
                                           "cursor": page["next"]}).json()
        seen += [j["id"] for j in page["jobs"]]
    assert seen == ids[::-1]
    assert len(api.get("/v1/jobs", params={"state": "queued"}).json()["jobs"]) == 6
    assert api.get("/v1/jobs", params={"model": "baby-cgan"}).json()["jobs"] == []
    error(api.get("/v1/jobs", params={"cursor": "zzz"}), 422, "invalid_input", "cursor")
    error(api.get("/v1/jobs", params={"state": "done"}), 422, "invalid_input", "state")
    error(api.get("/v1/jobs", params={"limit": 201}), 422, "invalid_input", "limit")


def _cancelled_queued(api) -> float:
    for line in api.get("/metrics").text.splitlines():
        if line.startswith('ganserve_jobs_cancelled_queued_total{type="fine-tune"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_cancel_queued_job_never_starts(api):
    job = submit(api, fine_tune_body()).json()
    before = _cancelled_queued(api)
    r = api.post(f"/v1/jobs/{job['id']}/cancel")
    assert r.status_code == 202 and r.json()["state"] == "cancelled"
    error(api.post(f"/v1/jobs/{job['id']}/cancel"), 409, "conflict")
    assert _cancelled_queued(api) == before + 1


def test_unknown_job_is_404(api):
    for path in ("", "/cancel", "/samples.png", "/events"):
        method = api.post if path == "/cancel" else api.get
        error(method(f"/v1/jobs/0123abcd{path}"), 404, "job_not_found")


def test_samples_before_any_is_404(api):
    job = submit(api, fine_tune_body()).json()
    error(api.get(f"/v1/jobs/{job['id']}/samples.png"), 404, "no_samples_yet")


def test_events_of_a_finished_job_end_at_once(api):
    job = submit(api, fine_tune_body()).json()
    api.post(f"/v1/jobs/{job['id']}/cancel")
    with api.stream("GET", f"/v1/jobs/{job['id']}/events") as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["cache-control"] == "no-cache"
        text = "".join(r.iter_text())
    assert "event: state" in text and "event: end" in text and '"cancelled"' in text


def test_jobs_off_without_training_extras_is_503(job_models, data_dir, monkeypatch):
    installed = {"train": False}
    monkeypatch.setattr("ganserve.service.jobs.training_installed", lambda: installed["train"])
    with make_client(job_models, data_dir=data_dir) as c:
        wait_ready(c)
        r = c.post("/v1/jobs/fine-tune", json=fine_tune_body())
        body = error(r, 503, "jobs_unavailable")
        assert "ganserve[train]" in body["message"] and "GANSERVE_BROKER_URL" in body["message"]
        assert "make run" in body["message"] and r.headers["retry-after"] == "30"
        assert c.get("/v1/jobs").status_code == 200          # reads still work
        assert c.post("/v1/models/baby-dcgan/sample", json={"seeds": [1]}).status_code == 200
        # installed while the service runs (make run does so in the background): taken
        installed["train"] = True
        assert c.post("/v1/jobs/fine-tune", json=fine_tune_body()).status_code == 202


def test_training_installed_is_every_package_of_the_train_extra(monkeypatch):
    from ganserve import extras

    assert extras.training_installed()              # the test environment has it all
    requires = ['torch>=2.3; extra == "train"', 'no-such-dist-ganserve; extra == "train"',
                'pytest>=8; extra == "dev"']
    monkeypatch.setattr(extras.importlib.metadata, "requires", lambda name: requires)
    monkeypatch.setattr(extras, "_FOUND", set())    # forget the answer above
    assert not extras.training_installed()          # one package still missing
    assert extras.installed("dev", "pytest")


def test_job_metrics_count_submissions_and_queues(api):
    submit(api, fine_tune_body())
    text = api.get("/metrics").text
    assert 'ganserve_jobs{queue="train",state="queued"} 1.0' in text
    assert 'ganserve_jobs_submitted_total{type="fine-tune"}' in text


def test_records_survive_an_api_restart(job_models, data_dir):
    with make_client(job_models, data_dir=data_dir) as c:
        wait_ready(c)
        jid = submit(c, fine_tune_body()).json()["id"]
    with make_client(job_models, data_dir=data_dir) as c:
        wait_ready(c)
        assert c.get(f"/v1/jobs/{jid}").json()["state"] == "queued"
    assert Path(data_dir / "jobs.sqlite").is_file()


def test_steps_over_the_setting_cites_the_setting(api):
    body = error(submit(api, fine_tune_body(steps=10**30)), 422, "invalid_input", "steps")
    assert "100000" in body["message"] and "64" not in body["message"]


def test_duplicate_classes_are_kept_once(api):
    job = submit(api, fine_tune_body(dataset={"path": "idx", "classes": ["class3"] * 50}))
    assert job.json()["request"]["dataset"]["classes"] == ["class3"]


def test_full_queue_is_429(job_models, data_dir):
    with make_client(job_models, data_dir=data_dir, max_queued_jobs=2) as c:
        wait_ready(c)
        for seed in range(2):
            assert submit(c, fine_tune_body(seed=seed)).status_code == 202
        r = submit(c, fine_tune_body(seed=9))
        error(r, 429, "too_many_jobs")
        assert r.headers["retry-after"]


def test_job_records_down_is_503_not_500(api, monkeypatch):
    import sqlalchemy as sa

    def broken(*a, **k):
        raise sa.exc.OperationalError("INSERT", {}, Exception("disk I/O error"))
    monkeypatch.setattr(api.app.state.jobs.store, "create", broken)
    r = submit(api, fine_tune_body())
    error(r, 503, "jobs_unavailable")
    assert r.headers["retry-after"]
    assert api.post("/v1/models/baby-dcgan/sample", json={"seeds": [1]}).status_code == 200


# ------------------------------------------------------------------ uploaded datasets
def test_fine_tune_on_an_uploaded_dataset_by_id(api):
    ds = upload(api, crafted.classes_zip({"class3": 4})).json()
    r = submit(api, fine_tune_body(model="baby-cgan", dataset={"id": ds["id"]}))
    assert r.status_code == 202, r.text
    assert r.json()["request"]["dataset"]["id"] == ds["id"]
    # a queued job reads it: no removal until the job is gone
    body = error(api.delete(f"/v1/datasets/{ds['id']}"), 409, "conflict")
    assert r.json()["id"] in body["message"] and body["details"]["jobs"] == [r.json()["id"]]
    assert api.post(f"/v1/jobs/{r.json()['id']}/cancel").status_code == 202
    assert api.delete(f"/v1/datasets/{ds['id']}").status_code == 204
    error(submit(api, fine_tune_body(model="baby-cgan", dataset={"id": ds["id"]})), 422,
          "invalid_input", "dataset")


def test_fine_tune_classes_must_match_a_conditional_model_by_name(api):
    ds = upload(api, crafted.classes_zip({"class3": 2, "Bagz": 2})).json()
    body = error(submit(api, fine_tune_body(model="baby-cgan", dataset={"id": ds["id"]})),
                 422, "invalid_input", "dataset")
    assert "'Bagz'" in body["message"] and "class3" in body["message"]
    # narrowed to a class the model has, the same dataset is fine
    r = submit(api, fine_tune_body(model="baby-cgan", dataset={"id": ds["id"],
                                                                "classes": ["class3"]}))
    assert r.status_code == 202, r.text


def test_fine_tune_unlabelled_upload_on_a_conditional_model_is_refused(api):
    ds = upload(api, crafted.zip_of({"a.png": crafted.image(seed=1),
                                     "b.png": crafted.image(seed=2)})).json()
    body = error(submit(api, fine_tune_body(model="baby-cgan", dataset={"id": ds["id"]})),
                 422, "invalid_input", "dataset")
    assert "no labels" in body["message"]
    r = submit(api, fine_tune_body(dataset={"id": ds["id"]}))       # unconditional: fine
    assert r.status_code == 202, r.text


@pytest.mark.parametrize("dataset", [{"id": "0123456789abcdef"}, {"id": "../etc"},
                                     {"id": "0123456789abcdef", "name": "fashion-mnist"}])
def test_fine_tune_bad_dataset_id_rejected(api, dataset):
    error(submit(api, fine_tune_body(dataset=dataset)), 422, "invalid_input")


@pytest.mark.parametrize("raw", [
    "0001-01-01T00:00:00+05:00|" + "a" * 32,            # overflows when moved to UTC
    "2026-01-01T00:00:00+00:00|a\x00b",                  # a NUL: PostgreSQL refuses it
    "2026-01-01T00:00:00|" + "a" * 32,                   # no zone: not one we wrote
    "9999-12-31T23:59:59-05:00|" + "a" * 32,
])
def test_crafted_cursor_is_a_422_never_a_5xx(api, raw):
    cursor = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
    error(api.get("/v1/jobs", params={"cursor": cursor}), 422, "invalid_input", "cursor")


def test_submission_checks_read_no_pixels_in_the_api(api, data_dir, monkeypatch):
    """The API judges a submission from metadata (an upload's record, a dataset's labels and
    headers); loading the images is the worker's. Every pixel reader fails here, and every
    kind of dataset is still checked: accepted when right, refused with the reason when not."""
    import ganserve.data.load

    ds = upload(api, crafted.classes_zip({"class3": 3, "Bagz": 2})).json()
    np.savez(data_dir / "datasets" / "set.npz", x=np.zeros((6, 1, 8, 8), np.uint8),
             y=np.array([0, 0, 1, 1, 3, 3]),
             class_names=np.array(["class0", "class1", "class2", "class3"]))
    folder = data_dir / "datasets" / "folder"
    for cls in ("class1", "class2"):
        (folder / cls).mkdir(parents=True)
        (folder / cls / "a.png").write_bytes(crafted.image(seed=3))

    def no_pixels(*a, **k):
        raise AssertionError("the API read a dataset's images")
    for reader in ("read_idx_folder", "read_npz", "read_image_folder"):  # as load_images
        monkeypatch.setattr(ganserve.data.load, reader, no_pixels)       # finds them
    api.app.state.jobs.datasets._cache.clear()
    for ref in ({"path": "idx"}, {"path": "idx", "classes": ["class3"], "limit": 5},
                {"path": "set.npz"}, {"path": "folder"}, {"id": ds["id"], "classes":
                                                          ["class3"]}):
        r = submit(api, fine_tune_body(model="baby-cgan", dataset=ref))
        assert r.status_code == 202, (ref, r.text)
    for ref, words in (({"id": ds["id"]}, "'Bagz'"), ({"path": "set.npz", "classes":
                       ["class2"]}, "no images left"), ({"path": "folder", "classes": ["x"]},
                                                        "no class 'x'")):
        body = error(submit(api, fine_tune_body(model="baby-cgan", dataset=ref)), 422,
                     "invalid_input", "dataset")
        assert words in body["message"], body


def test_full_queue_refuses_before_reading_the_dataset(job_models, data_dir, monkeypatch):
    with make_client(job_models, data_dir=data_dir, max_queued_jobs=1) as c:
        wait_ready(c)
        assert submit(c, fine_tune_body()).status_code == 202
        monkeypatch.setattr(c.app.state.jobs.datasets, "load",
                            lambda *a, **k: pytest.fail("the dataset was read"))
        error(submit(c, fine_tune_body(seed=5)), 429, "too_many_jobs")


def test_submission_refuses_what_the_worker_would_refuse_from_metadata(api, data_dir):
    """The header and listing checks hold the reader's own rules: non-square images, a
    wrong array shape, an empty class folder, a folder of mostly other files."""
    d = data_dir / "datasets"
    np.savez(d / "wide.npz", x=np.zeros((4, 8, 10), np.uint8))
    np.savez(d / "flat.npz", x=np.zeros((4, 64), np.uint8))
    for name, files in (("empty-class", {"a/x.png": True, "b/readme.txt": False}),
                        ("mostly-text", {"a/x.png": True, "a/1.txt": False,
                                         "a/2.txt": False})):
        for rel, is_image in files.items():
            (d / name / rel).parent.mkdir(parents=True, exist_ok=True)
            (d / name / rel).write_bytes(crafted.image(seed=1) if is_image else b"text")
    for path, words in (("wide.npz", "square"), ("flat.npz", "[N,H,W]"),
                        ("empty-class", "hold no images"), ("mostly-text",
                                                            "not an image dataset")):
        body = error(submit(api, fine_tune_body(dataset={"path": path})), 422,
                     "invalid_input", "dataset")
        assert words in body["message"], (path, body)


def test_freeze_d_is_judged_by_the_blocks_the_manifest_records(api, job_models, data_dir):
    """The API reads D's block count from the manifest (the export records it); a manifest
    from before the record gets the built-in families' rule, never a free pass."""
    import json

    from ganserve.manifest import load_manifest

    m = load_manifest(job_models / "baby-stylegan" / "1")
    assert m.d_blocks and m.d_blocks > 0
    body = error(submit(api, fine_tune_body(model="baby-stylegan", freeze_d=m.d_blocks)),
                 422, "invalid_input", "freeze_d")
    assert f"freeze at most {m.d_blocks - 1}" in body["message"]
    assert submit(api, fine_tune_body(model="baby-stylegan",
                                      freeze_d=m.d_blocks - 1)).status_code == 202
    m_dc = load_manifest(job_models / "baby-dcgan" / "1")
    path = job_models / "baby-dcgan" / "1" / "manifest.json"
    raw = json.loads(path.read_text())
    raw.pop("d_blocks")
    path.write_text(json.dumps(raw))
    legacy = load_manifest(job_models / "baby-dcgan" / "1")
    assert legacy.d_blocks is None
    with make_client(job_models, data_dir=data_dir) as c:
        wait_ready(c)
        body = error(submit(c, fine_tune_body(freeze_d=40)), 422, "invalid_input", "freeze_d")
        assert f"freeze at most {m_dc.d_blocks - 1}" in body["message"]
