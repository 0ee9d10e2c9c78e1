"""``.npz`` archives: ``x`` images, optional ``y`` labels and ``class_names``."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ganserve.data.base import DataError, ImageData, to_nchw


def read_npz(path: Path) -> ImageData:
    try:
        with np.load(path, allow_pickle=False) as z:
            if "x" not in z.files:
                raise DataError(f"{path}: no array named 'x' (found: {', '.join(z.files)})")
            x = z["x"]
            y = z["y"] if "y" in z.files else None
            names = [str(s) for s in z["class_names"]] if "class_names" in z.files else []
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"{path}: cannot read .npz ({e})") from e
    images = to_nchw(x, str(path))
    labels = None
    if y is not None:
        y = np.asarray(y)
        if y.shape != (len(images),) or not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{path}: 'y' must be {len(images)} integer labels, "
                            f"got {y.dtype} {y.shape}")
        if y.min(initial=0) < 0:
            raise DataError(f"{path}: negative label {y.min()}")
        labels = y.astype(np.int64)
        n_classes = int(labels.max(initial=-1)) + 1
        if names and len(names) < n_classes:
            raise DataError(f"{path}: {len(names)} class_names for labels up to {n_classes - 1}")
        names = names or [str(i) for i in range(n_classes)]
    return ImageData(images=images, labels=labels, class_names=names, source=str(path))
