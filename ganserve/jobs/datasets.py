"""A job's dataset reference -> a folder or file, and its images narrowed by class and count."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ganserve.data import DEFAULT_FASHION_DIR, DataError, ImageData, load_images
from ganserve.data.uploads import DatasetStore
from ganserve.jobs.specs import DatasetRef
from ganserve.names import choices

BUILTIN = {"fashion-mnist": DEFAULT_FASHION_DIR}


def dataset_path(ref: DatasetRef, datasets_dir: Path) -> Path:
    """Where ``ref`` lives; a ``path`` must stay inside ``datasets_dir``."""
    if ref.name is not None:
        return BUILTIN[ref.name]
    if ref.id is not None:
        data = DatasetStore(datasets_dir).data_file(ref.id)
        if data is None or not data.is_file():
            raise DataError(f"no dataset {ref.id!r} (it was removed?); see GET /v1/datasets")
        return data
    rel = Path(ref.path or "")
    root = datasets_dir.resolve()
    try:
        p = (root / rel).resolve()
    except (ValueError, OSError) as e:        # a NUL byte, a symlink loop
        raise DataError(f"dataset path {ref.path!r} cannot be used: {e}") from None
    if rel.is_absolute() or ".." in rel.parts or not p.is_relative_to(root):
        raise DataError(f"dataset path {ref.path!r} must be relative to the datasets folder "
                        "and stay inside it")
    if p.is_relative_to(root / "uploads") or p.is_relative_to(root / ".incoming"):
        raise DataError(f"dataset path {ref.path!r}: uploaded datasets are given by id "
                        "({\"id\": ...}, see GET /v1/datasets), so a job that reads one "
                        "keeps it from being removed")
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
            raise DataError(f"{source} has no class {', '.join(map(repr, unknown))}"
                            f"{choices('class', unknown[0], class_names)}")
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


def class_mapping(class_names: list[str], labels: np.ndarray | None,
                  model_classes: list[str], source: str) -> np.ndarray:
    """For a conditional model: each dataset class's index among the model's classes,
    matched by name (-1 for a class no image has); DataError names the classes the images
    have that the model lacks."""
    if labels is None:
        raise DataError(f"{source} has no labels; a conditional model is tuned on images "
                        f"labelled with its classes ({', '.join(model_classes)})")
    present = [class_names[i] for i in np.unique(labels)]
    unknown = [c for c in present if c not in model_classes]
    if unknown:
        raise DataError(f"{source} has classes the model does not: "
                        f"{', '.join(map(repr, unknown[:10]))}; the model's classes: "
                        f"{', '.join(model_classes)} (class folders and class_names must use "
                        "these names)")
    return np.array([model_classes.index(c) if c in model_classes else -1
                     for c in class_names], np.int64)


def align_classes(data: ImageData, model_classes: list[str]) -> ImageData:
    """The dataset relabelled with the model's class indices (a dataset may hold some of a
    conditional model's classes: a Bag-only upload tunes the Bag class)."""
    if data.class_names == model_classes:
        return data
    mapping = class_mapping(data.class_names, data.labels, model_classes, data.source)
    assert data.labels is not None
    return ImageData(images=data.images, labels=mapping[data.labels],
                     class_names=list(model_classes), source=data.source,
                     skipped=data.skipped)


def load_dataset(ref: DatasetRef, datasets_dir: Path, *, resolution: int, channels: int,
                 split: str = "train", model_classes: list[str] | None = None) -> ImageData:
    """The images a job trains on (or compares against), at the model's size, narrowed,
    and relabelled with a conditional model's classes (``model_classes``); DataError names
    what is wrong (missing, unknown class, wrong shape)."""
    path = dataset_path(ref, datasets_dir)
    data = load_images(path, resolution=resolution, channels=channels, split=split)
    if ref.id is not None:
        data.source = f"dataset {ref.id}"
    data = narrow(data, ref.classes, ref.limit)
    return align_classes(data, model_classes) if model_classes else data
