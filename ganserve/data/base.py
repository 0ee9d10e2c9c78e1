"""What every dataset reader shares: ``ImageData``, ``DataError`` and the shape fixes.

Every reader returns uint8 NCHW images; ``ImageData.as_float`` maps them to [-1, 1].
Readers raise ``DataError`` with the offending path and what to do, never a deep stack trace.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

DEFAULT_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
INSTALL_HINT = ("Fashion-MNIST comes from Debian: "
                "`apt-get update && apt-get install -y dataset-fashion-mnist` "
                f"(files land in {DEFAULT_FASHION_DIR}); or pass --data with an IDX folder, "
                "an .npz file (x, optional y) or an image folder")


class DataError(Exception):
    """Input data that cannot be used, with the path and the fix in the message."""


@dataclass
class ImageData:
    images: np.ndarray                      # uint8 [N, C, R, R]
    labels: np.ndarray | None = None        # int64 [N], or None for unlabeled data
    class_names: list[str] = field(default_factory=list)
    source: str = ""
    skipped: int = 0                        # files skipped as non-images (image folders)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def resolution(self) -> int:
        return int(self.images.shape[-1])

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def as_float(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """float32 images in [-1, 1]."""
        return as_float(self.images[start:stop])


def as_float(images_u8: np.ndarray) -> np.ndarray:
    return images_u8.astype(np.float32) * (2.0 / 255.0) - 1.0


def channels_last(shape: tuple[int, ...], source: str) -> bool:
    """Whether an image array of ``shape`` is [N,H,W,C] (else [N,H,W] or [N,C,H,W]);
    DataError for any other shape. Judged from the shape alone, so a header will do."""
    if len(shape) == 3:
        return False
    if len(shape) == 4 and shape[-1] in (1, 3) and shape[1] not in (1, 3):
        return True
    if len(shape) == 4 and shape[1] in (1, 3):
        return False
    raise DataError(f"{source}: images must be [N,H,W], [N,H,W,C] or [N,C,H,W] with 1 or "
                    f"3 channels, got shape {tuple(shape)}")


def to_nchw(x: np.ndarray, source: str) -> np.ndarray:
    """Accept [N,H,W], [N,H,W,C] or [N,C,H,W] with C in (1, 3); return uint8 [N,C,H,W]."""
    if channels_last(x.shape, source):
        x = x.transpose(0, 3, 1, 2)
    elif x.ndim == 3:
        x = x[:, None]
    if x.dtype != np.uint8:
        xf = x.astype(np.float64)
        if not np.isfinite(xf).all():
            raise DataError(f"{source}: images contain NaN or inf")
        lo, hi = float(xf.min()), float(xf.max())
        if lo >= -1.0 and hi <= 1.0 and lo < 0:          # already in [-1, 1]
            xf = (xf + 1.0) * 127.5
        elif hi <= 1.0:                                   # [0, 1]
            xf = xf * 255.0
        x = np.clip(np.rint(xf), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(x)


def fit_channels(x: np.ndarray, channels: int, source: str) -> np.ndarray:
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 or 3, got {channels}")
    c = x.shape[1]
    if c == channels:
        return x
    if c == 1:
        return np.repeat(x, 3, axis=1)
    # ITU-R 601-2 luma, as Pillow's convert("L")
    luma = x[:, 0] * 0.299 + x[:, 1] * 0.587 + x[:, 2] * 0.114
    return np.clip(np.rint(luma), 0, 255).astype(np.uint8)[:, None]


def fit_resolution(x: np.ndarray, resolution: int, source: str) -> np.ndarray:
    """Pad small images (28 -> 32) with their background; resize other square images."""
    n, c, h, w = x.shape
    if h == w == resolution:
        return x
    if h != w:
        raise DataError(f"{source}: images are {h}x{w}; only square images are supported")
    if h < resolution and resolution - h <= 8:
        background = int(np.median(np.concatenate(
            [x[:, :, 0, :].ravel(), x[:, :, -1, :].ravel(),
             x[:, :, :, 0].ravel(), x[:, :, :, -1].ravel()])))
        before = (resolution - h) // 2
        after = resolution - h - before
        return np.pad(x, ((0, 0), (0, 0), (before, after), (before, after)),
                      constant_values=background)
    from PIL import Image

    out = np.empty((n, c, resolution, resolution), np.uint8)
    for i in range(n):
        for k in range(c):
            im = Image.fromarray(x[i, k]).resize((resolution, resolution), Image.LANCZOS)
            out[i, k] = np.asarray(im)
    return out
