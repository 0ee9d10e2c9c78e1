"""ganserve/worker/fine_tune.py's look for an earlier attempt's version: a time limit is not
swallowed."""

from __future__ import annotations

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from ganserve.worker import fine_tune


def test_published_by_lets_the_soft_time_limit_through(tmp_path, monkeypatch):
    (tmp_path / "m" / "1").mkdir(parents=True)
    monkeypatch.setattr(fine_tune, "list_versions", lambda _: ["1"])

    def time_up(_):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(fine_tune, "load_manifest", time_up)
    with pytest.raises(SoftTimeLimitExceeded):
        fine_tune.published_by(tmp_path, "m", "job")


def test_published_by_skips_an_unreadable_manifest(tmp_path, monkeypatch):
    monkeypatch.setattr(fine_tune, "list_versions", lambda _: ["1"])

    def broken(_):
        raise ValueError("not a manifest")

    monkeypatch.setattr(fine_tune, "load_manifest", broken)
    assert fine_tune.published_by(tmp_path, "m", "job") is None
