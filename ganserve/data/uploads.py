"""The uploaded datasets under ``DATA_DIR/datasets``: each one a folder that appears whole
or not at all.

    datasets/uploads/<id>/data.npz        x [N,C,S,S] uint8, y, class_names (the training
                                           package's array format, read by load_images)
    datasets/uploads/<id>/dataset.json    what GET /v1/datasets/<id> shows
    datasets/uploads/<id>/preview.png     a few images per class
    datasets/.incoming/<random>/          an upload being received and checked

An upload is received and converted inside ``.incoming/`` (the same filesystem), then one
``rename`` publishes it (the writing is the API's: ``ganserve.service.uploads.writer``; this
module is the layout every process reads). Its id is the start of its content hash, so the
same images uploaded twice land on the same folder: the second rename finds it there and the
upload is a duplicate. A failed upload's folder is removed at once, and any left by a killed
process are swept at start. Removal renames the folder out of ``uploads/`` first, so readers
see it or nothing."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ganserve.locks import file_lock

log = logging.getLogger(__name__)
ID_PATTERN = r"^[0-9a-f]{16}$"
_ID = re.compile(ID_PATTERN)
DATA_FILE, META_FILE, PREVIEW_FILE = "data.npz", "dataset.json", "preview.png"
STALE_INCOMING_S = 3600.0


class DatasetStore:
    def __init__(self, datasets_dir: Path):
        self.root = datasets_dir
        self.uploads = datasets_dir / "uploads"
        self.incoming = datasets_dir / ".incoming"

    # -- receiving ---------------------------------------------------------------------
    @contextmanager
    def workspace(self) -> Iterator[Path]:
        """A fresh folder for one upload, removed when the block ends (whatever happens)."""
        self.incoming.mkdir(parents=True, exist_ok=True)
        work = self.incoming / uuid.uuid4().hex
        work.mkdir()
        try:
            yield work
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def sweep_incoming(self, older_than_s: float = STALE_INCOMING_S) -> int:
        """Remove upload folders left by processes killed mid-upload (and half-removed
        datasets); returns how many."""
        gone = 0
        now = time.time()
        for folder in (self.incoming, self.uploads):
            if not folder.is_dir():
                continue
            for p in folder.iterdir():
                stale = p.name.startswith("_deleted-") or (
                    folder == self.incoming and now - p.stat().st_mtime > older_than_s)
                if stale:
                    shutil.rmtree(p, ignore_errors=True)
                    gone += 1
        return gone

    # -- reading -----------------------------------------------------------------------
    def folder(self, ds_id: str) -> Path | None:
        return self.uploads / ds_id if _ID.fullmatch(ds_id) else None

    def data_file(self, ds_id: str) -> Path | None:
        folder = self.folder(ds_id)
        return folder / DATA_FILE if folder is not None else None

    def get(self, ds_id: str) -> dict[str, Any] | None:
        folder = self.folder(ds_id)
        if folder is None:
            return None
        try:
            return json.loads((folder / META_FILE).read_text())
        except (OSError, ValueError):
            return None

    def all(self) -> list[dict[str, Any]]:
        """Every stored dataset, newest first (id breaks ties)."""
        if not self.uploads.is_dir():
            return []
        metas = [m for p in self.uploads.iterdir() if (m := self.get(p.name)) is not None]
        return sorted(metas, key=lambda m: (m["created_at"], m["id"]), reverse=True)

    def total_bytes(self) -> tuple[int, int]:
        """(datasets, bytes stored) for the metrics."""
        metas = self.all()
        return len(metas), sum(int(m.get("bytes", 0)) for m in metas)

    # -- removing ----------------------------------------------------------------------
    @contextmanager
    def locked(self) -> Iterator[None]:
        """Held while a job is submitted on an uploaded dataset and while one is removed,
        so a removal never races a submission that reads it (a file lock: every replica
        on the shared data dir)."""
        self.uploads.mkdir(parents=True, exist_ok=True)
        with file_lock(self.uploads / ".lock"):
            yield

    def remove(self, ds_id: str) -> bool:
        """Remove a dataset (call under ``locked``): one rename out of sight, then the
        files. False if there was none."""
        folder = self.folder(ds_id)
        if folder is None or not folder.is_dir():
            return False
        trash = self.uploads / f"_deleted-{ds_id}-{uuid.uuid4().hex[:8]}"
        os.rename(folder, trash)
        shutil.rmtree(trash, ignore_errors=True)
        log.info("dataset %s removed", ds_id)
        return True
