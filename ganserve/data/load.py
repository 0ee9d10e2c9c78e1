"""One entry point, ``load_images``, that turns any supported source into model-ready arrays."""

from __future__ import annotations

import logging
from pathlib import Path

from ganserve.data.base import (
    DEFAULT_FASHION_DIR,
    INSTALL_HINT,
    DataError,
    ImageData,
    fit_channels,
    fit_resolution,
)
from ganserve.data.folder import read_image_folder
from ganserve.data.idx import looks_like_idx_folder, read_idx_folder
from ganserve.data.npz import read_npz

log = logging.getLogger(__name__)


def load_images(path: str | Path | None = None, *, resolution: int = 32, channels: int = 1,
                split: str = "train", limit: int | None = None) -> ImageData:
    """Read a dataset and bring it to ``channels`` x ``resolution`` x ``resolution`` uint8.

    ``path`` may be an IDX folder (Fashion-MNIST/MNIST, gz or raw), an ``.npz`` file with
    ``x`` (and optional ``y``, ``class_names``) or a folder of PNG/JPEG images, whose class
    subfolders give the labels. ``split`` picks train/t10k files of an IDX folder.
    """
    p = Path(path) if path is not None else DEFAULT_FASHION_DIR
    if not p.exists():
        raise DataError(f"{p}: no such file or folder. {INSTALL_HINT}")
    if p.is_file():
        if p.suffix.lower() != ".npz":
            raise DataError(f"{p}: unsupported data file (expected an .npz with 'x', "
                            "an IDX folder or an image folder)")
        raw = read_npz(p)
    elif looks_like_idx_folder(p):
        raw = read_idx_folder(p, split=split)
    else:
        raw = read_image_folder(p, channels=channels)
    if limit is not None:
        raw.images = raw.images[:limit]
        raw.labels = None if raw.labels is None else raw.labels[:limit]
    raw.images = fit_resolution(fit_channels(raw.images, channels, raw.source), resolution,
                                raw.source)
    log.info("loaded %d images (%dx%dx%d, %d classes) from %s", len(raw), raw.channels,
             raw.resolution, raw.resolution, raw.num_classes, raw.source)
    return raw
