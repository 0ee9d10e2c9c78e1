"""IDX files (MNIST, Fashion-MNIST), gzip-compressed or raw."""

from __future__ import annotations

import gzip
import hashlib
import logging
from pathlib import Path

import numpy as np

from ganserve.data.base import DataError, ImageData

log = logging.getLogger(__name__)

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
SPLITS = {"train": "train", "test": "t10k", "t10k": "t10k"}


def find_split_file(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    # some mirrors use dots: train-images.idx3-ubyte
    for cand in sorted(folder.glob(stem.replace("-idx", ".idx") + "*")):
        return cand
    return None


def looks_like_idx_folder(folder: Path) -> bool:
    return any(folder.glob("*-images-idx3-ubyte*")) or any(folder.glob("*-images.idx3-ubyte*"))


def read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read IDX file ({e})") from e
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    if data[2] != 0x08:
        raise DataError(f"{path}: IDX type 0x{data[2]:02x} unsupported (only unsigned bytes)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    expected = int(np.prod(dims))
    if len(data) - header != expected:
        raise DataError(f"{path}: IDX body has {len(data) - header} bytes, header says "
                        f"{expected} (truncated or corrupt file)")
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims)


# IDX files carry no class names. Known data sets are recognized by their labels' content
# (sha256 of the label bytes, whatever the compression or the folder's name).
KNOWN_LABELS = {
    "657fbd221bfc9f4198cc14b5619cc33ec57c58dd0e47af4d99d6650759e869a7": FASHION_CLASSES,
    "3d0e6c6ea990b53b6f8f500a41cac93881d981b315f84578b7d915342ade01e9": FASHION_CLASSES,
}


def class_names_for(folder: Path, labels: np.ndarray) -> list[str]:
    """A ``classes.txt`` beside the files, else a known data set's names (by the labels'
    content), else "0".."K-1" with a warning: never a guess from the folder's path."""
    custom = folder / "classes.txt"
    if custom.is_file():
        return [ln.strip() for ln in custom.read_text().splitlines() if ln.strip()]
    known = KNOWN_LABELS.get(hashlib.sha256(labels.astype(np.uint8).tobytes()).hexdigest())
    if known is not None:
        return list(known)
    k = int(labels.max(initial=-1)) + 1
    log.warning("%s: the data names no classes; using 0..%d (put a classes.txt, one name a "
                "line, beside the IDX files to name them)", folder, k - 1)
    return [str(i) for i in range(k)]


def split_files(folder: Path, split: str) -> tuple[Path, Path | None]:
    """The images file of ``split`` (DataError if none) and its labels file, if any."""
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; use 'train' or 'test'")
    prefix = SPLITS[split]
    img_path = find_split_file(folder, f"{prefix}-images-idx3-ubyte")
    if img_path is None:
        raise DataError(f"{folder}: no {prefix}-images-idx3-ubyte[.gz] file for split {split!r}")
    return img_path, find_split_file(folder, f"{prefix}-labels-idx1-ubyte")


def read_idx_folder(folder: Path, split: str = "train") -> ImageData:
    img_path, lab_path = split_files(folder, split)
    images = read_idx(img_path)
    if images.ndim != 3:
        raise DataError(f"{img_path}: expected a 3-d image array, got {images.ndim}-d")
    labels = None
    names: list[str] = []
    if lab_path is not None:
        labels = read_idx(lab_path).astype(np.int64)
        if labels.shape != (len(images),):
            raise DataError(f"{lab_path}: {labels.shape[0]} labels for {len(images)} images")
        names = class_names_for(folder, labels)
        if labels.max(initial=0) >= len(names):
            raise DataError(f"{lab_path}: label {labels.max()} but only {len(names)} class names")
    return ImageData(images=np.ascontiguousarray(images[:, None]), labels=labels,
                     class_names=names, source=str(img_path))
