"""The uploaded datasets under ``DATA_DIR/datasets``: each one a folder that appears whole
or not at all.

    datasets/uploads/<id>/data.npz        x [N,C,S,S] uint8, y, class_names (the training
                                           package's array format, read by load_images)
    datasets/uploads/<id>/dataset.json    what GET /v1/datasets/<id> shows
    datasets/uploads/<id>/preview.png     a few images per class
    datasets/.incoming/<random>/          an upload being received and checked

An upload is received and converted inside ``.incoming/`` (the same filesystem), then one
``rename`` publishes it. Its id is the start of its content hash, so the same images uploaded
twice land on the same folder: the second rename finds it there and the upload is a duplicate.
A failed upload's folder is removed at once, and any left by a killed process are swept at
start. Removal renames the folder out of ``uploads/`` first, so readers see it or nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ganserve.data.ingest import Ingested, content_hash
from ganserve.images import encode_png, make_grid, upscale
from ganserve.locks import file_lock

log = logging.getLogger(__name__)
ID_PATTERN = r"^[0-9a-f]{16}$"
_ID = re.compile(ID_PATTERN)
DATA_FILE, META_FILE, PREVIEW_FILE = "data.npz", "dataset.json", "preview.png"
PREVIEW_PER_CLASS, PREVIEW_CLASSES, PREVIEW_CELL_PX = 8, 16, 64
STALE_INCOMING_S = 3600.0


@dataclass(frozen=True)
class Stored:
    meta: dict[str, Any]
    created: bool               # False: the same content was already stored


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

    def commit(self, work: Path, data: Ingested, name: str, source: dict[str, Any]) -> Stored:
        """Write the dataset's files in ``work`` and publish them with one rename."""
        digest = content_hash(data)
        ds_id = digest[:16]
        existing = self.get(ds_id)
        if existing is not None:
            return Stored(existing, False)
        final = work / "dataset"
        final.mkdir()
        arrays: dict[str, Any] = {"x": data.images}
        if data.labels is not None:
            arrays |= {"y": data.labels, "class_names": np.array(data.class_names)}
        np.savez(final / DATA_FILE, **arrays)
        (final / PREVIEW_FILE).write_bytes(preview_png(data))
        meta = self._meta(ds_id, digest, data, name, source, final)
        (final / META_FILE).write_text(json.dumps(meta, indent=1))
        with self.locked():             # not between a removal's check and its rename
            existing = self.get(ds_id)
            if existing is not None:    # the same content won a race to the same folder
                return Stored(existing, False)
            os.rename(final, self.uploads / ds_id)
        log.info("dataset %s stored: %d images, %s", ds_id, len(data.images), name)
        return Stored(meta, True)

    @staticmethod
    def _meta(ds_id: str, digest: str, data: Ingested, name: str, source: dict[str, Any],
              folder: Path) -> dict[str, Any]:
        n, c, s, _ = data.images.shape
        counts = data.counts()
        return {"id": ds_id, "name": name, "images": int(n), "channels": int(c),
                "resolution": int(s), "conditional": data.labels is not None,
                "classes": [{"name": k, "count": int(v)}
                            for k, v in zip(data.class_names, counts)],
                "sha256": digest,
                "bytes": sum(p.stat().st_size for p in folder.iterdir()),
                "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                "source": source}

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


def preview_png(data: Ingested) -> bytes:
    """Up to 8 images of each of the first 16 classes, one class per row (or 8 x 8 of an
    unlabelled dataset), upscaled so a cell is at least 64 px."""
    n, c, s, _ = data.images.shape
    if data.labels is None:
        cells = np.asarray(data.images[:PREVIEW_PER_CLASS ** 2]).transpose(0, 2, 3, 1)
    else:
        blocks = []
        for k in range(min(len(data.class_names), PREVIEW_CLASSES)):
            idx = np.flatnonzero(data.labels == k)[:PREVIEW_PER_CLASS]
            block = np.zeros((PREVIEW_PER_CLASS, s, s, c), np.uint8)
            block[:len(idx)] = np.asarray(data.images[idx]).transpose(0, 2, 3, 1)
            blocks.append(block)
        cells = np.concatenate(blocks)
    grid = make_grid(cells, cols=PREVIEW_PER_CLASS, pad=2)
    return encode_png(upscale(grid, max(1, PREVIEW_CELL_PX // s)))
