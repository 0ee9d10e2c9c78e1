"""Writing a checked dataset into the uploads store: its arrays, preview and record in the
upload's work folder, then one rename into ``uploads/`` (the layout:
``ganserve.data.uploads``)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ganserve.data.uploads import DATA_FILE, META_FILE, PREVIEW_FILE, DatasetStore
from ganserve.images import encode_png, make_grid, upscale
from ganserve.service.uploads.ingest import Ingested, content_hash

log = logging.getLogger(__name__)
PREVIEW_PER_CLASS, PREVIEW_CLASSES, PREVIEW_CELL_PX = 8, 16, 64


@dataclass(frozen=True)
class Stored:
    meta: dict[str, Any]
    created: bool               # False: the same content was already stored


def commit(store: DatasetStore, work: Path, data: Ingested, name: str,
           source: dict[str, Any]) -> Stored:
    """Write the dataset's files in ``work`` and publish them with one rename."""
    digest = content_hash(data)
    ds_id = digest[:16]
    existing = store.get(ds_id)
    if existing is not None:
        return Stored(existing, False)
    final = work / "dataset"
    final.mkdir()
    arrays: dict[str, Any] = {"x": data.images}
    if data.labels is not None:
        arrays |= {"y": data.labels, "class_names": np.array(data.class_names)}
    np.savez(final / DATA_FILE, **arrays)
    (final / PREVIEW_FILE).write_bytes(preview_png(data))
    meta = _meta(ds_id, digest, data, name, source, final)
    (final / META_FILE).write_text(json.dumps(meta, indent=1))
    with store.locked():            # not between a removal's check and its rename
        existing = store.get(ds_id)
        if existing is not None:    # the same content won a race to the same folder
            return Stored(existing, False)
        os.rename(final, store.uploads / ds_id)
    log.info("dataset %s stored: %d images, %s", ds_id, len(data.images), name)
    return Stored(meta, True)


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
