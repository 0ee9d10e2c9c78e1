"""A job's dataset reference -> a folder or file, and its images narrowed by class and count."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ganserve.data import DEFAULT_FASHION_DIR, DataError, ImageData, load_images
from ganserve.jobs.specs import DatasetRef

BUILTIN = {"fashion-mnist": DEFAULT_FASHION_DIR}


def dataset_path(ref: DatasetRef, datasets_dir: Path) -> Path:
    """Where ``ref`` lives; a ``path`` must stay inside ``datasets_dir``."""
    if ref.name is not None:
        return BUILTIN[ref.name]
    rel = Path(ref.path or "")
    root = datasets_dir.resolve()
    try:
        p = (root / rel).resolve()
    except (ValueError, OSError) as e:        # a NUL byte, a symlink loop
        raise DataError(f"dataset path {ref.path!r} cannot be used: {e}") from None
    if rel.is_absolute() or ".." in rel.parts or not p.is_relative_to(root):
        raise DataError(f"dataset path {ref.path!r} must be relative to the datasets folder "
                        "and stay inside it")
    if not p.exists():
        raise DataError(f"no dataset {ref.path!r} in the datasets folder "
                        f"(GANSERVE_DATA_DIR/datasets)")
    return p


def selection(n: int, labels: np.ndarray | None, class_names: list[str], source: str,
              classes: list[str] | None, limit: int | None) -> np.ndarray:
    """Indices of the images kept by ``classes`` then ``limit`` (DataError if none are, or a
    class is unknown): needs only the labels, so a submission check reads no pixels twice."""
    keep = np.arange(n)
    if classes:
        if labels is None:
            raise DataError(f"{source} has no labels, so it cannot be narrowed to classes "
                            f"{', '.join(classes)}")
        unknown = [c for c in classes if c not in class_names]
        if unknown:
            raise DataError(f"{source} has no class {', '.join(map(repr, unknown))}; "
                            f"its classes: {', '.join(class_names)}")
        keep = np.flatnonzero(np.isin(labels, [class_names.index(c) for c in classes]))
    if limit is not None:
        keep = keep[:limit]
    if len(keep) == 0:
        raise DataError(f"{source}: no images left after narrowing")
    return keep


def narrow(data: ImageData, classes: list[str] | None, limit: int | None) -> ImageData:
    """Keep ``classes`` (labels and the class list stay as they are: a conditional model
    keeps all its classes), then the first ``limit`` images."""
    keep = selection(len(data), data.labels, data.class_names, data.source, classes, limit)
    labels = data.labels[keep] if data.labels is not None else None
    return ImageData(images=data.images[keep], labels=labels,
                     class_names=list(data.class_names), source=data.source,
                     skipped=data.skipped)


def load_dataset(ref: DatasetRef, datasets_dir: Path, *, resolution: int, channels: int,
                 split: str = "train") -> ImageData:
    """The images a job trains on (or compares against), at the model's size; DataError
    names what is wrong (missing, unknown class, wrong shape)."""
    path = dataset_path(ref, datasets_dir)
    data = load_images(path, resolution=resolution, channels=channels, split=split)
    return narrow(data, ref.classes, ref.limit)
