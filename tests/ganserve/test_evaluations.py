"""Evaluation records beside a version, and the model card's metrics (torch-free)."""

import datetime as dt
import json
import logging
import subprocess
import sys

import pytest

from ganserve.evaluations import (
    EVALUATIONS_DIR,
    EvaluationRecord,
    ExtractorInfo,
    ReferenceInfo,
    effective_metrics,
    evaluated_by,
    evaluations_dir,
    kind_for,
    list_records,
    new_record_id,
    write_record,
)
from ganserve.manifest import Manifest, list_versions, next_version, write_manifest

CREATED = "2026-01-01T00:00:00+00:00"
SHIPPED = {"extractor": "x", "n": 10000, "psi": 1.0, "reference_n": 10000,
           "fid": 0.9, "kid": 0.011, "kid_std": 0.008, "precision": 0.88, "recall": 0.55,
           "memorization": {"memorized_share": 0.002}, "floor": {"fid": 0.09},
           "seconds": 42.0, "evaluated_at": "2026-01-02T00:00:00+00:00"}


@pytest.fixture
def vdir(tmp_path):
    """A store with one version, m/1, shipping metrics for extractor 'x'."""
    d = tmp_path / "models" / "m" / "1"
    d.mkdir(parents=True)
    write_manifest(d, Manifest(name="m", version="1", family="dcgan", resolution=32,
                               channels=1, z_dim=8, graphs={}, created_at=CREATED,
                               metrics={"x": dict(SHIPPED)}))
    return d


def _manifest(vdir) -> Manifest:
    return Manifest.model_validate_json((vdir / "manifest.json").read_text())


def _record(metrics: dict, n: int, minute: int, *, psi: float = 1.0,
            created_at: str = CREATED, data_free: bool = False) -> EvaluationRecord:
    when = dt.datetime(2026, 2, 1, 12, minute, tzinfo=dt.UTC)
    return EvaluationRecord(
        id=new_record_id(when), kind=kind_for("x", psi), model="m", version="1",
        version_created_at=created_at, evaluated_at=when.isoformat(timespec="seconds"),
        evaluated_by="tester@host", ganserve_version="0.1.0", n=n, seed=0, psi=psi,
        extractor=ExtractorInfo(name="x", spec="x.json", spec_sha256="0" * 64, file="x.onnx",
                                file_sha256="1" * 64, floor={"fid": 0.1}),
        reference=ReferenceInfo(fid_against="extractor stats", stats="ref.npz",
                                stats_sha256="2" * 64, stats_n=10000),
        data_free=data_free, metrics=metrics)


def test_effective_metrics_without_records_is_the_shipped_metrics(vdir):
    card = effective_metrics(vdir, _manifest(vdir))["x"]
    assert card["fid"] == 0.9 and card["kid"] == 0.011 and card["floor"] == {"fid": 0.09}
    assert set(card["sources"].values()) == {"manifest"}
    assert card["evaluations"]["manifest"]["n"] == 10000
    assert card["evaluations"]["manifest"]["record"] is None
    # run descriptions (n, psi, seconds, ...) are provenance, never metrics
    assert "n" not in card and "seconds" not in card and "n" not in card["sources"]


def test_effective_metrics_partial_record_keeps_older_metrics(vdir):
    rec = _record({"fid": 1.27, "class_entropy_bits": 3.3}, n=500, minute=0, data_free=True)
    write_record(vdir, rec)
    card = effective_metrics(vdir, _manifest(vdir))["x"]
    assert card["fid"] == 1.27 and card["sources"]["fid"] == rec.id
    assert card["kid"] == 0.011 and card["sources"]["kid"] == "manifest"
    assert card["recall"] == 0.55 and card["memorization"] == {"memorized_share": 0.002}
    assert card["evaluations"][rec.id]["n"] == 500
    assert card["evaluations"][rec.id]["data_free"] is True
    assert card["evaluations"]["manifest"]["n"] == 10000
    assert card["floor"] == {"fid": 0.1}


def test_effective_metrics_latest_record_wins_by_time_not_write_order(vdir):
    newer = _record({"fid": 2.0, "kid": 0.02}, n=2000, minute=30)
    older = _record({"fid": 1.0}, n=1000, minute=10)
    write_record(vdir, newer)
    write_record(vdir, older)
    assert [r.id for r in list_records(vdir)] == [older.id, newer.id]
    card = effective_metrics(vdir, _manifest(vdir))["x"]
    assert (card["fid"], card["kid"]) == (2.0, 0.02)
    assert card["sources"]["fid"] == card["sources"]["kid"] == newer.id
    # evaluations that no longer contribute a metric are not listed
    assert older.id not in card["evaluations"]


def test_effective_metrics_ignores_records_of_another_export(vdir):
    write_record(vdir, _record({"fid": 5.0}, n=100, minute=0,
                               created_at="2025-01-01T00:00:00+00:00"))
    assert effective_metrics(vdir, _manifest(vdir))["x"]["fid"] == 0.9


def test_effective_metrics_keeps_other_psi_as_its_own_kind(vdir):
    write_record(vdir, _record({"fid": 3.0}, n=100, minute=0, psi=0.5))
    cards = effective_metrics(vdir, _manifest(vdir))
    assert cards["x"]["fid"] == 0.9
    assert cards["x@psi=0.5"]["fid"] == 3.0 and cards["x@psi=0.5"]["extractor"] == "x"


def test_list_records_skips_unreadable_and_temp_files(vdir, caplog):
    good = _record({"fid": 1.0}, n=10, minute=0)
    write_record(vdir, good)
    folder = evaluations_dir(vdir)
    (folder / "20260201T000000.000Z-bad.json").write_text("{not json")
    (folder / ".20260201T000000.000Z-x.json.abc.tmp").write_text("{}")
    with caplog.at_level(logging.WARNING):
        assert [r.id for r in list_records(vdir)] == [good.id]
    assert "bad.json" in caplog.text


def test_write_record_is_atomic_json_and_never_overwrites(vdir):
    rec = _record({"fid": 1.0}, n=10, minute=0)
    path = write_record(vdir, rec)
    assert path == vdir.parent / EVALUATIONS_DIR / "1" / f"{rec.id}.json"
    assert json.loads(path.read_text())["metrics"] == {"fid": 1.0}
    assert [p.name for p in path.parent.iterdir()] == [path.name]      # no temp file left
    with pytest.raises(FileExistsError):
        write_record(vdir, rec)


def test_record_ids_sort_by_utc_time():
    a = new_record_id(dt.datetime(2026, 1, 1, 23, 59, 59, 999000, tzinfo=dt.UTC))
    b = new_record_id(dt.datetime(2026, 1, 2, 0, 0, 0, tzinfo=dt.UTC))
    assert a.startswith("20260101T235959.999Z-") and a < b


def test_evaluated_by_env_overrides_user_at_host(monkeypatch):
    monkeypatch.setenv("GANSERVE_EVALUATED_BY", "ci-nightly")
    assert evaluated_by() == "ci-nightly"
    monkeypatch.delenv("GANSERVE_EVALUATED_BY")
    assert "@" in evaluated_by()


def test_records_folder_is_not_a_version_or_a_model(vdir):
    from ganserve.service.registry import Registry
    from ganserve.service.settings import Settings

    write_record(vdir, _record({"fid": 1.0}, n=10, minute=0))
    model_dir, store = vdir.parent, vdir.parent.parent
    assert (model_dir / EVALUATIONS_DIR / "1").is_dir()
    assert list_versions(model_dir) == ["1"] and next_version(model_dir) == "2"
    plan = Registry(Settings(models_dir=store, poll_interval_s=0))._plan()
    assert [(name, v) for name, v, _ in plan] == [("m", "1")]


def test_evaluations_module_imports_no_torch_or_training():
    code = ("import sys, ganserve.evaluations\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'training')]\n"
            "assert not bad, bad[:5]\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
