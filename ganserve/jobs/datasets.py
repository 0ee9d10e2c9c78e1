"""A job's dataset reference -> a folder or file, and its images narrowed by class and count.

Two readers: ``load_dataset`` (the worker: the pixels, converted to the model's size) and
``dataset_facts`` (the API's submission check: counts and class names only, from an upload's
stored metadata or from the labels and headers of a dataset on disk; never the pixels, so a
submission costs the API no memory and no time whatever the dataset's size).

Namesakes, one concept at several layers (datasets): ``ganserve.jobs.datasets``: how jobs find
and read them; ``ganserve.service.datasets``: the API's uploads and records;
``ganserve.service.api.routes.datasets``: their HTTP routes;
``ganserve.service.schemas.datasets``: the HTTP bodies.
"""

from __future__ import annotations

import gzip
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ganserve.data import DEFAULT_FASHION_DIR, DataError, ImageData, load_images
from ganserve.data.base import channels_last
from ganserve.data.folder import IMAGE_EXTS, check_is_a_dataset
from ganserve.data.idx import (
    class_names_for,
    looks_like_idx_folder,
    read_idx,
    split_files,
)
from ganserve.data.uploads import META_FILE, DatasetStore
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


def class_problem(present: list[str] | None, model_classes: list[str], source: str
                  ) -> str | None:
    """Why images of the classes ``present`` (None: unlabelled) cannot tune a conditional
    model of ``model_classes``, or None: the one rule the API's check (from counts) and the
    worker's loader (from labels) apply."""
    if present is None:
        return (f"{source} has no labels; a conditional model is tuned on images labelled "
                f"with its classes ({', '.join(model_classes)})")
    unknown = [c for c in present if c not in model_classes]
    if unknown:
        return (f"{source} has classes the model does not: "
                f"{', '.join(map(repr, unknown[:10]))}; the model's classes: "
                f"{', '.join(model_classes)} (class folders and class_names must use these "
                "names; narrow with 'classes' to leave others out)")
    return None


def class_mapping(class_names: list[str], labels: np.ndarray | None,
                  model_classes: list[str], source: str) -> np.ndarray:
    """For a conditional model: each dataset class's index among the model's classes,
    matched by name (-1 for a class no image has); DataError names the classes the images
    have that the model lacks."""
    present = None if labels is None else [class_names[i] for i in np.unique(labels)]
    problem = class_problem(present, model_classes, source)
    if problem:
        raise DataError(problem)
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


@dataclass(frozen=True)
class DatasetFacts:
    """What a submission check needs of a dataset: how many images of each class (None:
    unlabelled), and the class names."""
    n: int
    counts: tuple[int, ...] | None
    class_names: tuple[str, ...]
    source: str

    def narrowed(self, classes: list[str] | None, limit: int | None) -> DatasetFacts:
        """The facts after ``classes`` then ``limit`` (DataError as ``selection`` words it).
        With a limit the per-class counts are an upper bound: which images the first N are
        is the worker's to see."""
        counts = list(self.counts) if self.counts is not None else None
        if classes:
            if counts is None:
                raise DataError(f"{self.source} has no labels, so it cannot be narrowed to "
                                f"classes {', '.join(classes)}")
            unknown = [c for c in classes if c not in self.class_names]
            if unknown:
                raise DataError(f"{self.source} has no class "
                                f"{', '.join(map(repr, unknown))}"
                                f"{choices('class', unknown[0], list(self.class_names))}")
            counts = [k if name in classes else 0
                      for name, k in zip(self.class_names, counts)]
        n = sum(counts) if counts is not None else self.n
        n = min(n, limit) if limit is not None else n
        if n == 0:
            raise DataError(f"{self.source}: no images left after narrowing")
        return DatasetFacts(n, tuple(counts) if counts is not None else None,
                            self.class_names, self.source)

    def check_classes(self, model_classes: list[str], model: str) -> None:
        """For a conditional model: every class with images must be one of the model's."""
        present = (None if self.counts is None else
                   [c for c, k in zip(self.class_names, self.counts) if k])
        problem = class_problem(present, model_classes, f"{self.source} ({model} is "
                                "conditional)")
        if problem:
            raise DataError(problem)


def dataset_facts(ref: DatasetRef, datasets_dir: Path, split: str = "train"
                  ) -> DatasetFacts:
    """The counts and class names of ``ref`` before narrowing, read without its pixels:
    an upload's ``dataset.json``, an IDX folder's labels and header, an .npz's labels and
    array header, an image folder's listing. DataError says what is wrong."""
    path = dataset_path(ref, datasets_dir)
    if ref.id is not None:
        return _upload_facts(path.parent / META_FILE, f"dataset {ref.id}")
    if path.is_file():
        if path.suffix.lower() != ".npz":
            raise DataError(f"{path}: unsupported data file (expected an .npz with 'x', "
                            "an IDX folder or an image folder)")
        return _npz_facts(path)
    if looks_like_idx_folder(path):
        return _idx_facts(path, split)
    return _folder_facts(path)


def _facts(n: int, labels: np.ndarray | None, names: list[str], source: str
           ) -> DatasetFacts:
    if labels is None:
        return DatasetFacts(n, None, tuple(names), source)
    counts = np.bincount(labels, minlength=len(names))
    return DatasetFacts(n, tuple(int(k) for k in counts), tuple(names), source)


def _upload_facts(meta_file: Path, source: str) -> DatasetFacts:
    try:
        meta = json.loads(meta_file.read_text())
        classes = meta["classes"]
        names = [c["name"] for c in classes]
        counts = tuple(int(c["count"]) for c in classes) if meta["conditional"] else None
        return DatasetFacts(int(meta["images"]), counts, tuple(names), source)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(f"{source}: its record cannot be read ({e}); it was removed?") from e


def _idx_facts(folder: Path, split: str) -> DatasetFacts:
    images, labels_file = split_files(folder, split)
    opener = gzip.open if images.suffix == ".gz" else open
    try:
        with opener(images, "rb") as f:
            head = f.read(16)
    except (OSError, EOFError) as e:
        raise DataError(f"{images}: cannot read IDX file ({e})") from e
    if len(head) < 16 or head[:3] != b"\x00\x00\x08" or head[3] != 3:
        raise DataError(f"{images}: not an IDX file of images")
    n, h, w = (int.from_bytes(head[i:i + 4], "big") for i in (4, 8, 12))
    _square(h, w, str(images))
    if opener is open and images.stat().st_size != 16 + n * h * w:
        raise DataError(f"{images}: IDX body has {images.stat().st_size - 16} bytes, header "
                        f"says {n * h * w} (truncated or corrupt file)")
    if labels_file is None:
        return DatasetFacts(n, None, (), str(images))
    labels = read_idx(labels_file).astype(np.int64)        # one byte an image
    if labels.shape != (n,):
        raise DataError(f"{labels_file}: {labels.shape[0]} labels for {n} images")
    names = class_names_for(folder, labels)
    if labels.max(initial=0) >= len(names):
        raise DataError(f"{labels_file}: label {labels.max()} but only {len(names)} names")
    return _facts(n, labels, names, str(images))


def _npz_facts(path: Path) -> DatasetFacts:
    """From the zip's members: x's header (not its data), y and class_names (small)."""
    try:
        with zipfile.ZipFile(path) as zf, np.load(path, allow_pickle=False) as z:
            if "x" not in z.files:
                raise DataError(f"{path}: no array named 'x' (found: {', '.join(z.files)})")
            with zf.open("x.npy") as f:
                version = np.lib.format.read_magic(f)
                reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                          else np.lib.format.read_array_header_2_0)
                shape, _, dtype = reader(f)
            y = z["y"] if "y" in z.files else None
            names = [str(s) for s in z["class_names"]] if "class_names" in z.files else []
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"{path}: cannot read .npz ({e})") from e
    if dtype.kind not in "uifb":
        raise DataError(f"{path}: 'x' must hold numbers, not {dtype}")
    last = channels_last(shape, str(path))          # the worker's shape rules, from the header
    h, w = (shape[1], shape[2]) if last or len(shape) == 3 else (shape[2], shape[3])
    _square(h, w, str(path))
    n = int(shape[0])
    if y is None:
        return DatasetFacts(n, None, (), str(path))
    y = np.asarray(y)
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer) or y.min(initial=0) < 0:
        raise DataError(f"{path}: 'y' must be {n} non-negative integer labels, "
                        f"got {y.dtype} {y.shape}")
    k = int(y.max(initial=-1)) + 1
    if names and len(names) < k:
        raise DataError(f"{path}: {len(names)} class_names for labels up to {k - 1}")
    return _facts(n, y.astype(np.int64), names or [str(i) for i in range(k)], str(path))


def _square(h: int, w: int, source: str) -> None:
    if h != w:
        raise DataError(f"{source}: images are {h}x{w}; only square images are supported")


def _folder_facts(root: Path) -> DatasetFacts:
    """Image files per class subfolder, by name, judged by the reader's rules (empty class
    folders, more other files than images); decoding is the worker's."""
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    groups = [sorted(d.rglob("*")) for d in subdirs] if subdirs else [sorted(root.iterdir())]
    counts, skipped = [], 0
    for files in groups:
        files = [f for f in files if f.is_file() and not f.name.startswith(".")]
        images = sum(1 for f in files if f.suffix.lower() in IMAGE_EXTS)
        counts.append(images)
        skipped += len(files) - images
    if not sum(counts):
        raise DataError(f"{root}: no PNG/JPEG images found (looked in "
                        f"{'class subfolders' if subdirs else 'the folder itself'})")
    names = [d.name for d in subdirs]
    check_is_a_dataset(root, names, [i for i, k in enumerate(counts) if k], sum(counts),
                       skipped)
    if not subdirs:
        return DatasetFacts(sum(counts), None, (), str(root))
    return DatasetFacts(sum(counts), tuple(counts), tuple(names), str(root))
