"""An uploaded file (a zip of images, or an .npz) -> checked, converted arrays.

**The one resize rule.** Every image is cropped to a centred square on its shorter side,
then resized (Lanczos) to the dataset's side ``S``: the smallest shorter side among its
images, capped at ``side`` (128 by default). Images of one square size no larger than that are
stored untouched; mixed sizes are accepted only through this rule, and nothing is ever
upscaled at upload. A job then brings ``S`` to the model's resolution as every dataset is
brought (``ganserve.data.base.fit_resolution``: up to 8 px smaller is padded with the
background, as Fashion-MNIST's 28 -> 32; otherwise Lanczos).

**Channels.** A dataset whose images are all grayscale is stored with 1 channel, else 3
(grayscale images repeated). Transparency is flattened onto black, palette images are
expanded, a JPEG's EXIF orientation is applied. A job converts to the model's channels
(RGB -> luma, ITU-R 601-2, or gray repeated).

Archives pass ``ganserve.service.uploads.archive``'s checks first. Images are checked by
their bytes, not their names: the signature must match the extension, the header's size must
be within the limits *before* any pixel is decoded (a 20,000 x 20,000 PNG of a few KB is
refused from its header), and a truncated or corrupt image fails decoding. An .npz is read
with ``allow_pickle`` off, its headers checked (dtype, shape, declared size) before its
data, and its images streamed one at a time."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import math
import os
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ganserve.service.uploads.archive import (
    ArchiveLimits,
    Member,
    Rejected,
    open_zip,
    read_member,
    safe_members,
)

IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
# a progressive JPEG decodes every scan over the whole image: thousands of 33-byte scans make a
# tiny file cost minutes of CPU (ordinary progressive JPEGs have about 10)
MAX_JPEG_SCANS = 100
MAX_DIM = 1 << 31
NPZ_KEYS = ("images", "labels", "class_names")
MAX_CLASS_NAME = 128


@dataclass(frozen=True)
class UploadLimits:
    archive: ArchiveLimits
    max_image_side: int             # pixels, per side, per image
    max_total_pixels: int           # decoded pixels of all images together
    max_classes: int
    side: int                       # the largest side a dataset is stored at
    max_dataset_bytes: int = 4 << 30   # converted arrays (and the work copy while converting)


@dataclass
class Ingested:
    """The converted dataset: uint8 [N, C, S, S] images (a memmap under the work folder),
    labels (int64 [N]) and class names, or no labels for an unconditional dataset."""
    images: np.ndarray
    labels: np.ndarray | None
    class_names: list[str]
    kind: str                       # "zip" or "npz"

    def counts(self) -> list[int]:
        if self.labels is None:
            return []
        return np.bincount(self.labels, minlength=len(self.class_names)).tolist()


def valid_class_name(name: str) -> bool:
    """One rule for class folders and an npz's class_names: printable (no control, format
    or separator characters but the space), not blank, no outer spaces, at most 128."""
    return (0 < len(name) <= MAX_CLASS_NAME and name.isprintable()
            and name == name.strip())


# ------------------------------------------------------------------ the resize rule
def stored_side(min_shorter_side: int, side: int) -> int:
    return max(1, min(min_shorter_side, side))


def square(arr: np.ndarray, s: int) -> np.ndarray:
    """HxW or HxWxC uint8 -> centred square crop on the shorter side, Lanczos to s x s."""
    h, w = arr.shape[:2]
    k = min(h, w)
    top, left = (h - k) // 2, (w - k) // 2
    arr = arr[top:top + k, left:left + k]
    if k == s:
        return np.ascontiguousarray(arr)
    return np.asarray(Image.fromarray(arr).resize((s, s), Image.LANCZOS))


def square_image(im: Image.Image, s: int) -> np.ndarray:
    """``square`` on a decoded image, without a full-size array copy: the crop and the
    resize run in Pillow, and only the s x s result becomes an array (same pixels)."""
    w, h = im.size
    k = min(w, h)
    if (w, h) != (k, k):
        left, top = (w - k) // 2, (h - k) // 2
        im = im.crop((left, top, left + k, top + k))
    if k != s:
        im = im.resize((s, s), Image.LANCZOS)
    return np.asarray(im)


# ------------------------------------------------------------------ zip of images
@dataclass(frozen=True)
class _ImageEntry:
    member: Member
    label: int
    fmt: str


def _layout(members: list[Member]) -> tuple[list[tuple[Member, str]], bool]:
    """(member, class name) pairs and whether the archive is labelled: ``Class/img.png``
    (classes), ``img.png`` (flat), or either inside one top-level folder."""
    depths = {len(m.parts) for m in members}
    if len(depths) > 1:
        raise Rejected("bad_layout", "the archive mixes images at different folder depths; "
                       "use class folders (Bag/001.png) or no folders (001.png), not both")
    depth = depths.pop()
    if depth == 3 and len({m.parts[0] for m in members}) == 1:
        members = [Member(m.info, m.parts[1:]) for m in members]
        depth = 2
    if depth > 2:
        raise Rejected("bad_layout", f"images are {depth} folders deep; use class folders "
                       "(Bag/001.png), optionally inside one top-level folder")
    return [(m, m.parts[0] if depth == 2 else "") for m in members], depth == 2


def _sniff(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def _open_image(data: bytes, shown: str, named_as: str | None = None) -> Image.Image:
    """The image's header only (no pixels decoded), its signature matching its name's
    format (``named_as``) when it has one."""
    found = _sniff(data)
    if found is None:
        raise Rejected("not_an_image", f"{shown!r} is not a PNG, JPEG or WebP image (its "
                       "bytes say otherwise)")
    if named_as is not None and found != named_as:
        raise Rejected("image_type_mismatch", f"{shown!r} is named as {named_as} but its "
                       f"bytes are {found}")
    if found == "JPEG" and data.count(b"\xff\xda") > MAX_JPEG_SCANS:
        # entropy-coded data stuffs 0xFF as FF 00: FF DA is only ever a start-of-scan marker
        raise Rejected("image_too_complex", f"{shown!r} is a JPEG of more than "
                       f"{MAX_JPEG_SCANS} scans")
    try:
        return Image.open(io.BytesIO(data), formats=[found])
    except Image.DecompressionBombError as e:    # Pillow's own guard, from the header
        raise Rejected("image_too_large", f"{shown!r} is a decompression bomb "
                       f"({str(e)[:120]})") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise Rejected("corrupt_image", f"{shown!r} cannot be read ({str(e)[:120]})") from None


def _check_dims(im: Image.Image, shown: str, limits: UploadLimits) -> None:
    w, h = im.size
    if max(w, h) > limits.max_image_side or w < 1 or h < 1:
        raise Rejected("image_too_large", f"{shown!r} is {w} x {h} pixels; at most "
                       f"{limits.max_image_side} per side (GANSERVE_UPLOAD_MAX_IMAGE_SIDE)")


def _decode(im: Image.Image, shown: str) -> Image.Image:
    """An RGB image: EXIF orientation applied, transparency flattened onto black, 16-bit
    gray scaled (not clipped) to 8 bits. Kept in Pillow (no array copy of the full size: a
    4096 x 4096 image is 64 MB there, and each copy would be as much again)."""
    try:
        im.load()
        if im.format == "JPEG":
            im = ImageOps.exif_transpose(im)
        if im.mode in ("I", "I;16", "I;16B", "I;16L"):
            gray = np.asarray(im, np.float64) * (255.0 / 65535.0)
            return Image.fromarray(np.clip(np.rint(gray), 0, 255).astype(np.uint8)
                                   ).convert("RGB")
        if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
            rgba = im.convert("RGBA")
            flat = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
            flat.alpha_composite(rgba)
            im = flat
        return im if im.mode == "RGB" else im.convert("RGB")
    except MemoryError:
        raise
    except Exception as e:          # a decoder's error on crafted bytes is the file's fault
        raise Rejected("corrupt_image", f"{shown!r} is truncated or corrupt "
                       f"({type(e).__name__}: {str(e)[:120]})") from None


def read_image(data: bytes, shown: str, max_side: int, keep: int) -> np.ndarray:
    """One uploaded image (PNG, JPEG or WebP, recognised by its bytes) as RGB uint8
    [k, k, 3], its centre square, with the archive's checks: a decompression bomb, more
    than ``max_side`` pixels a side, or corrupt bytes are refused (``Rejected``) before or
    while decoding. A square larger than ``keep`` pixels a side is shrunk to ``keep`` in
    Pillow first: no full-size array (a 4096-pixel PNG of one colour is a few KB of body
    and 48 MB as RGB)."""
    with _open_image(data, shown) as im:
        w, h = im.size
        if max(w, h) > max_side or w < 1 or h < 1:
            raise Rejected("image_too_large", f"{shown!r} is {w} x {h} pixels; at most "
                           f"{max_side} per side", status=413)
        rgb = _decode(im, shown)
        k = min(w, h)
        return square_image(rgb, min(k, keep)) if k > keep or w != h else np.array(rgb)


def _image_entries(members: list[Member], limits: UploadLimits
                   ) -> tuple[list[_ImageEntry], list[str]]:
    pairs, labelled = _layout(members)
    for m, _ in pairs:
        if m.suffix not in IMAGE_FORMATS:
            raise Rejected("not_an_image", f"{m.display!r} is not an image (accepted: "
                           f"{', '.join(sorted(IMAGE_FORMATS))})")
        if m.info.file_size > limits.archive.max_image_bytes:
            raise Rejected("image_too_large", f"{m.display!r} is {m.info.file_size} bytes; "
                           f"an image may be {limits.archive.max_image_bytes}", status=413)
    names = sorted({c for _, c in pairs}) if labelled else []
    if len(names) > limits.max_classes:
        raise Rejected("too_many_classes", f"the archive has {len(names)} class folders; at "
                       f"most {limits.max_classes} (GANSERVE_UPLOAD_MAX_CLASSES)")
    bad = [n for n in names if not valid_class_name(n)]
    if bad:
        raise Rejected("bad_layout", f"class folder name {bad[0][:60]!r} is not a class name: "
                       f"1..{MAX_CLASS_NAME} printable characters, no leading or trailing "
                       "spaces")
    index = {n: i for i, n in enumerate(names)}
    entries = [_ImageEntry(m, index.get(c, 0), IMAGE_FORMATS[m.suffix]) for m, c in pairs]
    # a stable order (class, then name) whatever the archive's order: the content hash
    # of the same images is the same
    entries.sort(key=lambda e: (e.label, e.member.parts))
    return entries, names


def _headers(zf: zipfile.ZipFile, entries: list[_ImageEntry], limits: UploadLimits) -> int:
    """Check every image's signature and size from its header; the smallest shorter side."""
    total = 0
    smallest = limits.side
    for e in entries:
        with _open_image(read_member(zf, e.member), e.member.display, e.fmt) as im:
            _check_dims(im, e.member.display, limits)
            w, h = im.size
        total += w * h
        if total > limits.max_total_pixels:
            raise Rejected("too_many_pixels", f"the images hold over {limits.max_total_pixels} "
                           "pixels together (GANSERVE_UPLOAD_MAX_TOTAL_PIXELS)", status=413)
        smallest = min(smallest, w, h)
    return stored_side(smallest, limits.side)


Reserve = Callable[[int], None]     # called with the bytes a dataset will store: raise to refuse


def _check_stored(n: int, c: int, s: int, limits: UploadLimits,
                  reserve: Reserve | None) -> None:
    """Before anything is converted: the dataset's size against its limit and (``reserve``)
    the store's quota."""
    if n * c * s * s > limits.max_dataset_bytes:
        raise Rejected("dataset_too_large", f"{n} images of {c} x {s} x {s} would store "
                       f"{n * c * s * s} bytes; at most {limits.max_dataset_bytes} "
                       "(GANSERVE_DATASET_MAX_BYTES)", status=413)
    if reserve is not None:
        reserve(n * c * s * s)


def _allocated_memmap(path: Path, shape: tuple[int, ...]) -> np.memmap:
    """A uint8 .npy memmap whose blocks are allocated now: a sparse file on a full disk
    would kill the process with SIGBUS at the first write to a page the disk cannot hold;
    allocated up front, a full disk is a clear refusal (507) before any work."""
    out = np.lib.format.open_memmap(path, "w+", np.uint8, shape)
    try:
        with open(path, "r+b") as f:
            os.posix_fallocate(f.fileno(), 0, os.fstat(f.fileno()).st_size)
    except OSError as e:
        del out
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise Rejected("storage_full", "the server's disk has no room for this dataset "
                           f"({math.prod(shape)} bytes); try again later or upload a smaller "
                           "one", status=507) from None
        raise
    return out


def ingest_zip(path: Path, work: Path, limits: UploadLimits,
               reserve: Reserve | None = None) -> Ingested:
    with open_zip(path, limits.archive) as zf:
        members = safe_members(zf, path.stat().st_size, limits.archive)
        if not members:
            raise Rejected("empty_dataset", "the archive holds no images")
        entries, names = _image_entries(members, limits)
        s = _headers(zf, entries, limits)
        _check_stored(len(entries), 3, s, limits, None)
        if reserve is not None:         # the least it will store (all gray); exact after
            reserve(len(entries) * s * s)
        rgb = _allocated_memmap(work / "rgb.npy", (len(entries), 3, s, s))
        gray = True
        for i, e in enumerate(entries):
            with _open_image(read_member(zf, e.member), e.member.display, e.fmt) as im:
                arr = square_image(_decode(im, e.member.display), s)
            gray = gray and bool((arr[..., 0] == arr[..., 1]).all()
                                 and (arr[..., 1] == arr[..., 2]).all())
            rgb[i] = arr.transpose(2, 0, 1)
    images = rgb[:, :1] if gray else rgb
    labels = np.array([e.label for e in entries], np.int64) if names else None
    return Ingested(images, labels, names, "zip")


# ------------------------------------------------------------------ .npz
@dataclass(frozen=True)
class _NpyHeader:
    shape: tuple[int, ...]
    dtype: np.dtype
    offset: int                     # bytes before the data


def _npy_header(zf: zipfile.ZipFile, member: Member) -> _NpyHeader:
    key = member.display.removesuffix(".npy")
    try:
        with zf.open(member.info) as f:
            version = np.lib.format.read_magic(f)
            reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                      else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = reader(f, max_header_size=10_000)
            offset = f.tell()
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, SyntaxError, zlib.error,
            NotImplementedError, OverflowError, TypeError) as e:
        # (object arrays are told by their dtype below; numpy's messages mention
        # allow_pickle for other reasons too, such as an over-long header)
        raise Rejected("invalid_npz", f"{key!r} is not a readable .npy array "
                       f"({str(e)[:120]})") from None
    if dtype.hasobject:
        raise Rejected("pickled_npz", f"{key!r} holds Python objects (dtype {dtype}); only "
                       "plain arrays are accepted (allow_pickle stays off)")
    if fortran:
        raise Rejected("invalid_npz", f"{key!r} is stored in Fortran order; save it with "
                       "np.ascontiguousarray")
    if any(not isinstance(d, int) or d < 0 or d >= MAX_DIM for d in shape):
        raise Rejected("invalid_npz", f"{key!r} declares an impossible shape {shape}"[:200])
    size = math.prod(shape) * dtype.itemsize
    if offset + size != member.info.file_size:
        raise Rejected("invalid_npz", f"{key!r} declares shape {shape} of {dtype} "
                       f"({size} bytes) but holds {member.info.file_size - offset}")
    return _NpyHeader(tuple(shape), dtype, offset)


def _npz_members(zf: zipfile.ZipFile, path: Path, limits: UploadLimits
                 ) -> dict[str, Member]:
    members = safe_members(zf, path.stat().st_size, limits.archive)
    found: dict[str, Member] = {}
    for m in members:
        key = m.display.removesuffix(".npy")
        if len(m.parts) != 1 or not m.display.endswith(".npy") or key not in NPZ_KEYS:
            raise Rejected("invalid_npz", f"unexpected array {m.display!r} in the .npz; it "
                           f"may hold {', '.join(NPZ_KEYS)} (images required)")
        found[key] = m
    if "images" not in found:
        raise Rejected("invalid_npz" if found else "empty_dataset",
                       "the .npz has no 'images' array")
    return found


def _check_images_header(h: _NpyHeader, limits: UploadLimits) -> tuple[int, int, int, int]:
    if h.dtype != np.uint8:
        raise Rejected("invalid_npz", f"'images' must be uint8, not {h.dtype}")
    if len(h.shape) == 3:
        n, c, height, width = h.shape[0], 1, h.shape[1], h.shape[2]
    elif len(h.shape) == 4 and h.shape[1] in (1, 3):
        n, c, height, width = h.shape
    else:
        raise Rejected("invalid_npz", f"'images' must be [N,H,W] or [N,C,H,W] with C 1 or 3, "
                       f"not shape {h.shape}")
    if n == 0:
        raise Rejected("empty_dataset", "'images' holds no images")
    if n > limits.archive.max_files:
        raise Rejected("too_many_files", f"'images' holds {n} images; at most "
                       f"{limits.archive.max_files} (GANSERVE_UPLOAD_MAX_FILES)")
    if max(height, width) > limits.max_image_side or min(height, width) < 1:
        raise Rejected("image_too_large", f"images are {width} x {height} pixels; at most "
                       f"{limits.max_image_side} per side (GANSERVE_UPLOAD_MAX_IMAGE_SIDE)")
    if n * height * width > limits.max_total_pixels:
        raise Rejected("too_many_pixels", f"the images hold {n * height * width} pixels, "
                       f"over {limits.max_total_pixels} (GANSERVE_UPLOAD_MAX_TOTAL_PIXELS)",
                       status=413)
    return n, c, height, width


def _small_array(zf: zipfile.ZipFile, m: Member) -> np.ndarray:
    data = read_member(zf, m)
    try:
        return np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
    except ValueError as e:
        raise Rejected("pickled_npz" if "pickle" in str(e) else "invalid_npz",
                       f"{m.display!r}: {str(e)[:120]}") from None


def _npz_labels(zf: zipfile.ZipFile, found: dict[str, Member], n: int,
                limits: UploadLimits) -> tuple[np.ndarray | None, list[str]]:
    names: list[str] = []
    if "class_names" in found:
        h = _npy_header(zf, found["class_names"])
        if h.dtype.kind != "U" or len(h.shape) != 1:
            raise Rejected("invalid_npz", "'class_names' must be a 1-D array of strings, not "
                           f"{h.dtype} {h.shape}")
        if h.shape[0] > limits.max_classes:
            raise Rejected("too_many_classes", f"{h.shape[0]} class names; at most "
                           f"{limits.max_classes} (GANSERVE_UPLOAD_MAX_CLASSES)")
        # NumPy pads every name to the longest (4 bytes a character): one long name among
        # few would make the array huge, so its width is checked before it is read
        if h.dtype.itemsize > 4 * MAX_CLASS_NAME:
            raise Rejected("invalid_npz", f"'class_names' holds names of up to "
                           f"{h.dtype.itemsize // 4} characters; at most {MAX_CLASS_NAME}")
        names = [str(s) for s in _small_array(zf, found["class_names"])]
        bad = [s for s in names if not valid_class_name(s)]
        if bad or len(set(names)) != len(names):
            raise Rejected("invalid_npz", "'class_names' must be distinct, "
                           f"1..{MAX_CLASS_NAME} printable characters, no leading or "
                           "trailing spaces")
    if "labels" not in found:
        if names:
            raise Rejected("invalid_npz", "'class_names' given without 'labels'")
        return None, []
    h = _npy_header(zf, found["labels"])
    if h.dtype.kind not in "iu" or h.shape != (n,):
        raise Rejected("invalid_npz", f"'labels' must be {n} integers, not {h.dtype} "
                       f"{h.shape}")
    labels = _small_array(zf, found["labels"]).astype(np.int64)
    top = int(labels.max(initial=0))
    k = len(names) or top + 1
    if labels.min(initial=0) < 0 or top >= k:
        raise Rejected("invalid_npz", f"'labels' must be in 0..{k - 1} "
                       f"(found {int(labels.min())}..{top})")
    if k > limits.max_classes:
        raise Rejected("too_many_classes", f"labels name {k} classes; at most "
                       f"{limits.max_classes} (GANSERVE_UPLOAD_MAX_CLASSES)")
    return labels, names or [str(i) for i in range(k)]


def _stream_images(zf: zipfile.ZipFile, m: Member, h: _NpyHeader, n: int, shape: tuple
                   ) -> Iterator[np.ndarray]:
    one = int(np.prod(shape))
    try:
        with zf.open(m.info) as f:
            f.read(h.offset)
            for _ in range(n):
                buf = f.read(one)
                if len(buf) != one:
                    raise Rejected("invalid_npz", "'images' ends early")
                yield np.frombuffer(buf, np.uint8).reshape(shape)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError) as e:
        raise Rejected("invalid_archive", f"'images' cannot be read ({str(e)[:120]})"
                       ) from None


def ingest_npz(path: Path, work: Path, limits: UploadLimits,
               reserve: Reserve | None = None) -> Ingested:
    with open_zip(path, limits.archive) as zf:
        found = _npz_members(zf, path, limits)
        h = _npy_header(zf, found["images"])
        n, c, height, width = _check_images_header(h, limits)
        labels, names = _npz_labels(zf, found, n, limits)
        s = stored_side(min(height, width), limits.side)
        _check_stored(n, c, s, limits, reserve)
        out = _allocated_memmap(work / "images.npy", (n, c, s, s))
        gray = c == 3
        for i, img in enumerate(_stream_images(zf, found["images"], h, n, (c, height, width))):
            for k in range(c):
                out[i, k] = square(img[k], s)
            gray = gray and bool((img[0] == img[1]).all() and (img[1] == img[2]).all())
    # all-gray RGB is stored with one channel, as a zip's would be
    return Ingested(out[:, :1] if gray else out, labels, names, "npz")


def ingest(path: Path, work: Path, limits: UploadLimits, kind: str,
           reserve: Reserve | None = None) -> Ingested:
    """Check and convert ``path`` (``kind`` zip or npz); Rejected says what is wrong.
    ``reserve`` gets the bytes the dataset will store before any conversion (the quota)."""
    return (ingest_npz if kind == "npz" else ingest_zip)(path, work, limits, reserve)


def content_hash(data: Ingested) -> str:
    """sha256 of what was stored (shape, class names, labels, pixels): the same images
    uploaded twice, zipped differently or as an .npz, are the same dataset."""
    h = hashlib.sha256(json.dumps([list(data.images.shape), data.class_names]).encode())
    order = np.arange(len(data.images))
    if data.labels is not None:
        # by class, keeping the order within a class (a zip's is by name): an npz listing
        # its classes in another order is still the same dataset
        order = np.argsort(data.labels, kind="stable")
        h.update(data.labels[order].astype("<i8").tobytes())
    for start in range(0, len(order), 1024):
        h.update(np.ascontiguousarray(data.images[order[start:start + 1024]]).tobytes())
    return h.hexdigest()
