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
