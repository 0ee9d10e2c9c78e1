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
