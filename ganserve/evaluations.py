"""Evaluation records: ``ganserve evaluate`` results kept beside a published version.

A published version folder ``MODELS_DIR/NAME/VERSION/`` is immutable: its manifest, with the
sha256 of each file, is what the service verifies, so evaluating a model never writes into
it. Each evaluation is one JSON file, written atomically, in a folder beside the versions::

    MODELS_DIR/NAME/_evaluations/VERSION/<YYYYMMDDTHHMMSS.mmmZ>-<6 hex>.json

``_evaluations`` is not an integer, so ``ganserve.manifest.list_versions`` (and with it the
service's registry, ``next_version`` and ``resolve_version_dir``) never takes it for a version.
A record says who ran it, when, on what (n, seed, psi, the extractor and the reference, with
their sha256) and what came out (``metrics``); ``data_free`` and ``skipped`` say what was left
out and why.

The model card is ``effective_metrics(version_dir, manifest)``: the metrics shipped in the
manifest, overlaid metric by metric with every later record of the same kind (oldest first),
so the newest value of each metric wins and a partial evaluation drops nothing it did not
compute. Every value says where it came from. Torch-free, like the rest of ``ganserve``.
"""

from __future__ import annotations

import datetime as dt
import getpass
import logging
import os
import secrets
import socket
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ganserve.manifest import Manifest, atomic_write_text

log = logging.getLogger(__name__)

EVALUATIONS_DIR = "_evaluations"
RECORD_SCHEMA_VERSION = 1
MANIFEST_SOURCE = "manifest"
# keys of a result dict (and of the manifest's shipped metrics) that describe the run, not a
# measurement: they are never merged as metrics
PROVENANCE_KEYS = frozenset({"extractor", "kind", "n", "psi", "seed", "reference_n", "floor",
                             "seconds", "evaluated_at", "evaluated_by", "data_free",
                             "skipped", "record"})


class ExtractorInfo(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    spec: str = Field(description="path of the extractor's JSON spec when evaluated")
    spec_sha256: str
    file: str = Field(description="the ONNX file, relative to the spec")
    file_sha256: str
    floor: dict[str, float] = Field(default_factory=dict, description="real-vs-real metrics")


class ReferenceInfo(BaseModel):
    model_config = ConfigDict(extra="allow")
    fid_against: str = Field(description="'extractor stats' (shipped with the extractor) or "
                             "'test data' (computed from --data)")
    stats: str | None = Field(default=None, description="the extractor's reference .npz")
    stats_sha256: str | None = None
    stats_n: int | None = None
    data: str | None = Field(default=None, description="the --data path; None if data-free")
    data_source: str | None = None
    test_images: int | None = None
    test_sha256: str | None = Field(default=None, description="sha256 of the test images as "
                                    "evaluated (uint8 NCHW bytes)")
    train_images: int | None = None
    train_sha256: str | None = None


class EvaluationRecord(BaseModel):
    """One stored evaluation of one model version (the JSON file's schema)."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())
    schema_version: int = RECORD_SCHEMA_VERSION
    id: str = Field(description="the file name without .json; sorts oldest first")
    kind: str = Field(description="extractor name, '@psi=P' appended when psi != 1")
    model: str = Field(description="the manifest's name")
    version: str
    version_created_at: str = Field("", description="the manifest's created_at: ties the "
                                    "record to this export of NAME/VERSION")
    manifest_sha256: str = ""
    evaluated_at: str = Field(description="UTC, ISO 8601")
    evaluated_by: str = Field(description="$GANSERVE_EVALUATED_BY, else user@host")
    ganserve_version: str
    n: int
    seed: int = Field(description="samples use seeds seed .. seed + n - 1")
    psi: float
    extractor: ExtractorInfo
    reference: ReferenceInfo
    data_free: bool = Field(False, description="no real images: only data-free metrics")
    skipped: dict[str, str] = Field(default_factory=dict, description="metric -> why not run")
    seconds: float = 0.0
    metrics: dict[str, Any]

    def describes(self, manifest: Manifest) -> bool:
        """Is this a record of exactly this export (not of a deleted, re-exported version)?"""
        return (self.model == manifest.name and self.version == manifest.version
                and self.version_created_at == manifest.created_at)

    def provenance(self) -> dict[str, Any]:
        return {"record": self.id, "n": self.n, "psi": self.psi, "seed": self.seed,
                "evaluated_at": self.evaluated_at, "evaluated_by": self.evaluated_by,
                "data_free": self.data_free,
                "reference_n": self.reference.stats_n or self.reference.test_images}


def evaluations_dir(version_dir: str | Path) -> Path:
    """``MODELS_DIR/NAME/VERSION`` -> ``MODELS_DIR/NAME/_evaluations/VERSION``."""
    v = Path(version_dir)
    return v.parent / EVALUATIONS_DIR / v.name


def kind_for(extractor_name: str, psi: float) -> str:
    """Metrics at another truncation are another kind: they never overlay psi = 1 ones."""
    return extractor_name if psi == 1.0 else f"{extractor_name}@psi={psi:g}"


def evaluated_by() -> str:
    """$GANSERVE_EVALUATED_BY, else user@host."""
    who = os.environ.get("GANSERVE_EVALUATED_BY", "").strip()
    if who:
        return who
    try:
        user = getpass.getuser()
    except (KeyError, OSError):        # a container uid with no passwd entry
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def new_record_id(now: dt.datetime | None = None) -> str:
    """``YYYYMMDDTHHMMSS.mmmZ-xxxxxx``: UTC time first, so ids sort oldest first."""
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    return f"{now:%Y%m%dT%H%M%S}.{now.microsecond // 1000:03d}Z-{secrets.token_hex(3)}"


def write_record(version_dir: str | Path, record: EvaluationRecord) -> Path:
    """Store one record atomically (temp file + rename); the version folder is not touched."""
    path = evaluations_dir(version_dir) / f"{record.id}.json"
    if path.exists():
        raise FileExistsError(f"{path}: evaluation record exists; records are never rewritten")
    atomic_write_text(path, record.model_dump_json(indent=2) + "\n")
    log.info("stored evaluation record %s", path)
    return path


def list_records(version_dir: str | Path) -> list[EvaluationRecord]:
    """Every readable record of a version, oldest first; unreadable files are logged, skipped."""
    folder = evaluations_dir(version_dir)
    if not folder.is_dir():
        return []
    records = []
    for path in sorted(folder.glob("*.json")):
        if path.name.startswith("."):
            continue
        try:
            records.append(EvaluationRecord.model_validate_json(path.read_text()))
        except (OSError, ValidationError) as e:
            log.warning("skipping evaluation record %s: %s", path, e)
    return sorted(records, key=lambda r: r.id)


def effective_metrics(version_dir: str | Path, manifest: Manifest) -> dict[str, dict[str, Any]]:
    """The model card's metrics: the manifest's shipped ones, overlaid by evaluation records.

    ``version_dir`` is ``MODELS_DIR/NAME/VERSION`` and ``manifest`` its loaded manifest (the
    shipped ``manifest.metrics`` are the base; records of another export of the same
    NAME/VERSION are ignored). Returns ``{kind: card}``, kind being the extractor name (with
    ``@psi=P`` for psi != 1), and each card::

        {"extractor": "fashion-mnist-classifier",
         "fid": 0.91, "kid": 0.0111, "precision": 0.887, ...,   # newest value of each metric
         "floor": {...},                # real-vs-real floor of the newest source that has one
         "sources": {"fid": "20261124T101500.123Z-3fa2c1", "kid": "manifest", ...},
         "evaluations": {"manifest": {"record": None, "n": 10000, ...},
                         "20261124T101500.123Z-3fa2c1": {"record": "2026...", "n": 500,
                             "psi": 1.0, "seed": 0, "evaluated_at": ..., "evaluated_by": ...,
                             "data_free": True, "reference_n": 10000}}}

    ``sources`` maps every metric to the evaluation it came from; ``evaluations`` holds the
    provenance (n, psi, seed, when, who) of each evaluation still contributing a metric.
    Reads the records folder on each call (a few small JSON files; the service caches the
    result per records-folder mtime).
    """
    cards: dict[str, dict[str, Any]] = {}
    for key, shipped in manifest.metrics.items():
        if isinstance(shipped, dict):       # shipped at psi != 1: its own kind, like records
            extractor = shipped.get("extractor", key)
            kind = kind_for(extractor, float(shipped.get("psi", 1.0)))
            _overlay(cards, kind, extractor, MANIFEST_SOURCE, shipped,
                     _shipped_provenance(shipped))
    for rec in list_records(version_dir):
        if not rec.describes(manifest):
            log.debug("ignoring evaluation record %s: it is of another export", rec.id)
            continue
        _overlay(cards, rec.kind, rec.extractor.name, rec.id,
                 {**rec.metrics, "floor": rec.extractor.floor}, rec.provenance())
    return {kind: _finish(card) for kind, card in cards.items()}


def _shipped_provenance(shipped: dict[str, Any]) -> dict[str, Any]:
    return {"record": None, "n": shipped.get("n"), "psi": shipped.get("psi", 1.0),
            "seed": shipped.get("seed"), "evaluated_at": shipped.get("evaluated_at"),
            "evaluated_by": shipped.get("evaluated_by"), "data_free": False,
            "reference_n": shipped.get("reference_n")}


def _overlay(cards: dict[str, dict[str, Any]], kind: str, extractor: str, source: str,
             values: dict[str, Any], provenance: dict[str, Any]) -> None:
    metrics = {k: v for k, v in values.items() if k not in PROVENANCE_KEYS}
    if not metrics:
        return
    card = cards.setdefault(kind, {"extractor": extractor, "metrics": {}, "floor": {},
                                   "sources": {}, "evaluations": {}})
    card["metrics"].update(metrics)
    card["sources"].update(dict.fromkeys(metrics, source))
    card["evaluations"][source] = provenance
    if values.get("floor"):
        card["floor"] = values["floor"]


def _finish(card: dict[str, Any]) -> dict[str, Any]:
    """Flatten the metrics and keep only the evaluations that still contribute one."""
    used = set(card["sources"].values())
    return {"extractor": card["extractor"], **card["metrics"], "floor": card["floor"],
            "sources": card["sources"],
            "evaluations": {s: p for s, p in card["evaluations"].items() if s in used}}
