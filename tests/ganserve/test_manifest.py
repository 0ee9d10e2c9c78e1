import json

import pytest

from ganserve.manifest import (
    ManifestError,
    list_versions,
    load_manifest,
    next_version,
    resolve_version_dir,
)


def test_versions_sort_numerically(tmp_path):
    for v in ("1", "10", "2", "tmp", ".tmp-3-x"):
        (tmp_path / v).mkdir()
    assert list_versions(tmp_path) == ["1", "2", "10"]
    assert next_version(tmp_path) == "11"
    assert next_version(tmp_path / "none") == "1"


def test_invalid_manifest_is_clear(tmp_path):
    with pytest.raises(ManifestError, match="no manifest"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"family": "vae"}))
    with pytest.raises(ManifestError, match="invalid manifest"):
        load_manifest(tmp_path)


def test_resolve_latest_version(baby_exports):
    vdir = baby_exports["dcgan"]
    assert resolve_version_dir(vdir.parent) == vdir


def test_next_version_never_reuses_a_removed_number(tmp_path):
    from ganserve.model_store import remove_version

    for v in ("1", "2", "3"):
        (tmp_path / v).mkdir()
    remove_version(tmp_path, "3")
    assert list_versions(tmp_path) == ["1", "2"]
    assert next_version(tmp_path) == "4"          # not 3 again: a cache may hold the old 3
    remove_version(tmp_path, "2")                  # a lower one does not lower the mark
    assert next_version(tmp_path) == "4"


def test_placing_a_version_renumbers_or_refuses_a_used_number(tmp_path):
    from ganserve.model_store import place_version, remove_version

    def staged(version: str):
        d = tmp_path / "staging" / version
        d.mkdir(parents=True)
        (d / "manifest.json").write_text(json.dumps(
            {"name": "m", "version": version, "family": "dcgan", "resolution": 32,
             "channels": 1, "z_dim": 8, "graphs": {}}))
        return d
    model = tmp_path / "m"
    for v in ("1", "2", "3"):
        (model / v).mkdir(parents=True)
    remove_version(model, "3")
    with pytest.raises(ValueError, match="never reused"):
        place_version(model, staged("3"), "3")           # an explicit number once used
    final = place_version(model, staged("2"))            # staged as 2, 2 taken meanwhile
    assert final == model / "4" and load_manifest(final).version == "4"
