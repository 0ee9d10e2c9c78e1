"""The model store's contract: ``MODELS_DIR/NAME/VERSION/manifest.json``.

Written by ``ganserve.training.export``, read by ``ganserve evaluate`` and by the service. A
manifest names every file of its version with its sha256, so a reader can refuse a
half-copied or corrupted version instead of serving garbage.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ganserve.families import Family, family

MANIFEST_NAME = "manifest.json"
SCHEMA_VERSION = 1
FAMILIES = ("dcgan", "cgan", "stylegan")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
VERSION_RE = re.compile(r"^[1-9][0-9]{0,8}$")


class ManifestError(Exception):
    """A model version whose manifest or files cannot be trusted."""


class TensorSpec(BaseModel):
    name: str
    shape: list[int | str] = Field(description="dimensions; strings name dynamic axes")
    dtype: str = "float32"
    value_range: list[float] | None = Field(
        default=None, description="[lo, hi] of valid values (images: [-1, 1])")
    range_kind: Literal["bounded", "nominal"] | None = Field(
        default=None, description="bounded: every value lies in value_range (a tanh output); "
        "nominal: values centre on the range but can leave it (no tanh, as in StyleGAN's "
        "synthesis): clip before display. None: not stated (manifests before this field)")
    description: str = ""


class GraphSpec(BaseModel):
    file: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    fp16_file: str | None = Field(
        default=None, description="the same graph with float16 weights and activations "
        "(inputs and outputs stay float32), for GPUs; None: not exported")


class TrainingInfo(BaseModel):
    model_config = ConfigDict(extra="allow")
    data: str = ""
    data_images: int = 0
    steps: int = 0
    batch: int = 0
    images_seen: int = 0
    preset: str = ""
    loss: str = ""
    seed: int = 0
    command: str = ""
    wall_seconds: float = 0.0
    images_per_second: float = 0.0
    # machines that trained it, one per session ({cpu, cpus, torch_threads, torch}); older
    # manifests have none
    hosts: list[dict] = Field(default_factory=list)
    # in-training FID points [{step, fid, fid_n}], kept here so the curve outlives the run folder
    fid_curve: list[dict] = Field(default_factory=list)


class Manifest(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())

    schema_version: int = SCHEMA_VERSION
    name: str
    version: str
    family: str = Field(description="model family, one of ganserve.families")
    resolution: int
    channels: int
    z_dim: int
    w_dim: int | None = None
    num_ws: int | None = None
    num_classes: int = 0
    class_names: list[str] = Field(default_factory=list)
    d_blocks: int | None = Field(default=None, description="the discriminator's image-side "
                                 "blocks, the most Freeze-D can count (0: none to freeze; "
                                 "None: not recorded, manifests before it)")
    w_avg: list[float] | None = None
    graphs: dict[str, GraphSpec]
    weights: dict[str, str] = Field(default_factory=dict,
                                    description="role (G, D, G_ema) -> safetensors file")
    model_args: dict[str, Any] = Field(default_factory=dict,
                                       description="the model config, to rebuild it in torch")
    training: TrainingInfo = Field(default_factory=TrainingInfo)
    parent: str | None = Field(default=None, description="NAME/VERSION this was fine-tuned from")
    parity: dict[str, float] = Field(default_factory=dict)
    parity_fp16: dict[str, float] = Field(
        default_factory=dict, description="graph -> max |fp16 graph - fp32 graph| on the "
        "export's check inputs (image units: one grey level is 2/255)")
    metrics: dict[str, Any] = Field(default_factory=dict)
    inversion: dict[str, Any] = Field(
        default_factory=dict, description="how the projection encoder and the latent "
        "directions were made (ganserve.training.inversion, .directions)")
    directions: str | None = Field(default=None, description="the latent directions file "
                                   "(ganserve.latent_directions), if computed")
    files: dict[str, str] = Field(default_factory=dict, description="relative path -> sha256")
    opset: int = 17
    created_at: str = ""
    ganserve_version: str = ""

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    @property
    def has_fp16(self) -> bool:
        """Every generator graph (those its family needs) has its float16 twin."""
        return all(self.graphs[g].fp16_file for g in self.family_spec.graphs
                   if g in self.graphs)

    @property
    def family_spec(self) -> Family:
        """What this manifest's family is and can do (graphs, class input, w space)."""
        return family(self.family)

    @field_validator("family")
    @classmethod
    def _known_family(cls, v: str) -> str:
        family(v)                       # an unknown family is a manifest we cannot serve
        return v


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write via a temp file in the same folder, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)           # mkstemp makes 0600; the store is read by other users
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_manifest(version_dir: str | Path) -> Manifest:
    path = Path(version_dir) / MANIFEST_NAME
    if not path.is_file():
        raise ManifestError(f"{path}: no manifest (is this a model version folder?)")
    try:
        return Manifest.model_validate(json.loads(path.read_text()))
    except (ValueError, TypeError) as e:
        raise ManifestError(f"{path}: invalid manifest: {e}") from e


def write_manifest(version_dir: str | Path, manifest: Manifest) -> Path:
    path = Path(version_dir) / MANIFEST_NAME
    atomic_write_text(path, manifest.model_dump_json(indent=2) + "\n")
    return path


def hash_files(version_dir: str | Path, names: list[str]) -> dict[str, str]:
    root = Path(version_dir)
    return {n: sha256_file(root / n) for n in sorted(names)}


def fresh_name(version_dir: str | Path, name: str) -> str:
    """``name``, or ``stem-2.ext``, ``stem-3.ext``... when a file of that name is already
    there: a file added to a published version is written beside the one it replaces, the
    manifest switched after, the old one removed last, so a reader never sees a file whose
    sha256 the manifest does not hold."""
    root, stem, dot, ext = Path(version_dir), *name.partition(".")
    candidate, n = name, 1
    while (root / candidate).exists():
        n += 1
        candidate = f"{stem}-{n}{dot}{ext}"
    return candidate


def verify_files(version_dir: str | Path, manifest: Manifest) -> None:
    """Raise ManifestError naming every missing or mismatched file."""
    root = Path(version_dir)
    problems = []
    referenced = ({g.file for g in manifest.graphs.values()} | set(manifest.weights.values())
                  | {g.fp16_file for g in manifest.graphs.values() if g.fp16_file})
    for name in sorted(referenced - set(manifest.files)):
        problems.append(f"{name}: referenced but has no sha256 in the manifest")
    for name, digest in sorted(manifest.files.items()):
        p = root / name
        if not p.is_file():
            problems.append(f"{name}: missing")
        elif sha256_file(p) != digest:
            problems.append(f"{name}: sha256 mismatch (corrupt or modified)")
    if problems:
        raise ManifestError(f"{root}: " + "; ".join(problems))


def list_versions(model_dir: str | Path) -> list[str]:
    """Integer version folders of one model, oldest first."""
    d = Path(model_dir)
    if not d.is_dir():
        return []
    return sorted((p.name for p in d.iterdir() if p.is_dir() and VERSION_RE.match(p.name)),
                  key=int)


def model_dirs(store: str | Path) -> list[Path]:
    """The model folders of a store, by name (``_evaluators``, ``.tmp`` and such are not
    models)."""
    root = Path(store)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))


def list_models(store: str | Path) -> list[str]:
    """Names of the models in a store that hold at least one version."""
    return [d.name for d in model_dirs(store) if list_versions(d)]


def in_store(model: str, store: Path) -> Path:
    """``NAME``, ``NAME/VERSION`` in ``store``, or a folder given by its path. A name the store
    lacks is a ManifestError naming its models and the near miss; a known model's missing
    version is left to resolve_version_dir, which lists its versions."""
    from ganserve.names import unknown_name

    path = Path(model)
    if path.exists() or path.is_absolute() or model.startswith("."):
        return path                 # a path: resolve_version_dir says what is wrong with it
    known = list_models(store)
    if path.parts[0] not in known:
        raise ManifestError(f"{unknown_name('model', path.parts[0], known)} (in the store "
                            f"{store}; a version folder's path works too)")
    return store / model


HIGH_WATER_FILE = "_high_water.json"     # {"version": N}: the highest number ever used


def high_water(model_dir: str | Path) -> int:
    """The highest version number ``model_dir`` ever held, as its removals recorded it (0:
    none recorded). Numbers are never reused: a replica or cache that saw the old N would
    serve its weights under the new N."""
    try:
        return int(json.loads((Path(model_dir) / HIGH_WATER_FILE).read_text())["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def next_version(model_dir: str | Path) -> str:
    """One above every version the model holds or ever held (pick it under the model's
    lock, ``ganserve.model_store.model_lock``, so two publishers cannot pick the same)."""
    versions = list_versions(model_dir)
    return str(max(int(versions[-1]) if versions else 0, high_water(model_dir)) + 1)


def resolve_version_dir(path: str | Path) -> Path:
    """Accept ``models/NAME/V`` or ``models/NAME`` (-> its latest version)."""
    p = Path(path)
    if (p / MANIFEST_NAME).is_file():
        return p
    versions = list_versions(p)
    if versions:
        return p / versions[-1]
    raise ManifestError(_not_a_version(p))


def _not_a_version(p: Path) -> str:
    """Why ``p`` is not a model version, and what to do instead."""
    if (p / "checkpoint.pt").is_file() or (p / "config.json").is_file():
        return (f"{p} is a training run, not a model version: export it first with "
                f"`ganserve export {p} --name NAME`, then evaluate models/NAME")
    siblings = list_versions(p.parent)
    if VERSION_RE.match(p.name) and siblings:
        return f"{p.parent.name} has no version {p.name}; versions: {', '.join(siblings)}"
    return (f"{p}: not a model version folder (no {MANIFEST_NAME}) and no version folders "
            "inside")
