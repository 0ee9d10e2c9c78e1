"""Folders of PNG/JPEG images; class subfolders give labels and class names.

Files that are not images by extension (README.txt, .DS_Store, ...) are skipped and counted
(``ImageData.skipped``, logged). A file with an image extension that does not decode, or whose
size differs from the others, is an error naming that file.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ganserve.data.base import DataError, ImageData

log = logging.getLogger(__name__)
IMAGE_EXTS = {".png", ".jpg", ".jpeg"}


def _decode(path: Path, channels: int) -> np.ndarray:
    try:
        with Image.open(path) as im:
            im.load()
            im = im.convert("L" if channels == 1 else "RGB")
            arr = np.asarray(im)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise DataError(f"{path}: not a readable image ({type(e).__name__}: {e})") from e
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def read_image_folder(root: Path, channels: int = 1) -> ImageData:
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if subdirs:
        groups = [(d.name, sorted(d.rglob("*"))) for d in subdirs]
        class_names = [d.name for d in subdirs]
    else:
        groups = [("", sorted(root.iterdir()))]
        class_names = []
    images, labels, skipped = [], [], 0
    first_shape, first_file = None, None
    for label, (_, files) in enumerate(groups):
        for f in files:
            if not f.is_file() or f.name.startswith("."):
                continue
            if f.suffix.lower() not in IMAGE_EXTS:
                skipped += 1
                continue
            arr = _decode(f, channels)
            if first_shape is None:
                first_shape, first_file = arr.shape, f
            elif arr.shape != first_shape:
                raise DataError(f"{f}: size {arr.shape[2]}x{arr.shape[1]} differs from "
                                f"{first_file} ({first_shape[2]}x{first_shape[1]}); "
                                "all images in a folder must have one size")
            images.append(arr)
            labels.append(label)
    if skipped:
        log.warning("%s: skipped %d non-image files", root, skipped)
    if not images:
        raise DataError(f"{root}: no PNG/JPEG images found (looked in "
                        f"{'class subfolders' if subdirs else 'the folder itself'})")
    check_is_a_dataset(root, class_names, labels, len(images), skipped)
    return ImageData(images=np.stack(images), source=str(root), skipped=skipped,
                     labels=np.asarray(labels, np.int64) if class_names else None,
                     class_names=class_names)


def check_is_a_dataset(root: Path, class_names: list[str], labels: list[int], n_images: int,
                        skipped: int) -> None:
    """Refuse a folder that only happens to hold some images (``--data /tmp``): every class
    subfolder must hold images, and images must outnumber the other files."""
    hint = ("point --data at an image dataset: one subfolder of PNG/JPEG images per class, "
            "or a folder of images")
    empty = sorted(set(range(len(class_names))) - set(labels))
    if empty:
        shown = ", ".join(class_names[i] for i in empty[:5])
        raise DataError(f"{root} is not an image dataset: {len(empty)} of its "
                        f"{len(class_names)} subfolders hold no images ({shown}...); {hint}")
    if skipped > n_images:
        raise DataError(f"{root} is not an image dataset: {skipped} of its "
                        f"{skipped + n_images} files are not images; {hint}")
