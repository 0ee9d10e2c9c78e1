"""ganserve.locks.file_lock: exclusive, and never through a planted symlink."""

from __future__ import annotations

import threading

import pytest

from ganserve.locks import file_lock


def test_file_lock_refuses_a_symlink_and_leaves_its_target_alone(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    lock = tmp_path / "locks" / "train-device.lock"
    lock.parent.mkdir()
    lock.symlink_to(target)
    with pytest.raises(OSError, match="is a symlink; refusing to follow it"), file_lock(lock):
        pass
    assert target.read_text() == "keep me"


def test_file_lock_keeps_the_file_and_excludes_a_second_holder(tmp_path):
    lock = tmp_path / "a.lock"
    lock.write_text("left by someone")
    order: list[str] = []

    def second() -> None:
        with file_lock(lock):
            order.append("second")

    with file_lock(lock):
        t = threading.Thread(target=second)
        t.start()
        t.join(0.3)                         # it waits for the first holder
        order.append("first done")
    t.join(5)
    assert order == ["first done", "second"]
    assert lock.read_text() == "left by someone"        # never truncated
