"""Named directions in a version's latent space, and edits along them (no torch).

A version's ``directions.json`` (written by ``ganserve.evaluation.directions``, named by the
manifest's ``directions``) holds two kinds:
- principal (GANSpace): ``pc0``, ``pc1``... the main axes of variation, largest first. An
  amount is in standard deviations of the latent along the axis;
- class: ``"Sneaker->Sandal"`` for every ordered pair of classes. Learned (``vectors``, by
  ``ganserve.training.class_directions``): one vector u_k per class, and a -> b is
  u_b - u_a, fitted so that amount 1 makes images of a into images of b by the evaluation
  classifier's call. Fitted without torch (``means``, LDA on latents the classifier
  labelled): amount 1 moves a typical image of a to where a typical one of b lies, across
  the linear boundary between them. For a conditional generator the class is an input, so
  its class directions move the class weights instead (amount 1: all the way to b).

``apply`` adds ``sum(amount * vector)`` to latents (z, or w for a w-space family: after
truncation, to every layer) and, for class-input directions, to the class weights, which
are kept a convex mixture (clipped at 0, summing to 1).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ganserve.manifest import Manifest

SCHEMA = 1
ARROW = "->"
MIN_CLASS_SAMPLES = 10      # samples a class needs for its mean (LDA) to be a direction


class DirectionError(ValueError):
    """An unknown direction name, or a file that cannot be read."""


@dataclass(frozen=True)
class Direction:
    name: str
    kind: str                   # "principal" | "class"
    space: str                  # "z" | "w": the latent; "class": the class weights
    vector: np.ndarray          # float32, the change of one unit of amount
    info: dict[str, Any] = field(default_factory=dict)   # explained variance, flip rate...


class Directions:
    def __init__(self, data: dict[str, Any]):
        if data.get("schema") != SCHEMA:
            raise DirectionError(f"directions file schema {data.get('schema')!r}, "
                                 f"expected {SCHEMA}")
        self.space: str = data["space"]
        self._by_name: dict[str, Direction] = {}
        for p in data.get("principal", []):
            self._add(Direction(p["name"], "principal", self.space,
                                np.asarray(p["vector"], np.float32),
                                {"explained_variance_ratio": p["explained_variance_ratio"]}))
        self._add_classes(data.get("classes"))

    def _add(self, d: Direction) -> None:
        self._by_name[d.name] = d

    def _add_classes(self, c: dict[str, Any] | None) -> None:
        """Every ordered pair of classes (see the module's docstring)."""
        if not c:
            return
        names, flips = c["names"], c.get("flip", {})
        k = len(names)
        # a class the classifier found too rarely has no mean to move from or to
        known = [n >= MIN_CLASS_SAMPLES for n in c.get("samples", [MIN_CLASS_SAMPLES] * k)]
        if c["space"] == "class":
            eye = np.eye(k, dtype=np.float32)
            vectors = {(a, b): eye[b] - eye[a] for a in range(k) for b in range(k) if a != b}
        elif "vectors" in c:            # learned: a -> b is u_b - u_a
            u = np.asarray(c["vectors"], np.float64)              # [K, D]
            vectors = {(a, b): (u[b] - u[a]).astype(np.float32)
                       for a in range(k) for b in range(k) if a != b}
        else:
            means = np.asarray(c["means"], np.float64)            # [K, D]
            whitened = np.asarray(c["whitened_means"], np.float64)  # [K, D]: inv(cov) mean
            vectors = {}
            for a in range(k):
                for b in range(k):
                    if a != b:
                        normal = whitened[b] - whitened[a]
                        unit = normal / max(np.linalg.norm(normal), 1e-12)
                        vectors[a, b] = (unit * unit.dot(means[b] - means[a])).astype(
                            np.float32)
        for (a, b), v in vectors.items():
            if not (known[a] and known[b]):
                continue
            name = f"{names[a]}{ARROW}{names[b]}"
            info = {"from": names[a], "to": names[b]}
            if name in flips:
                info["flip"] = flips[name]
            self._add(Direction(name, "class", c["space"], v, info))

    @classmethod
    def load(cls, version_dir: str | Path, manifest: Manifest) -> Directions | None:
        """The version's directions; None when it has none."""
        if not manifest.directions:
            return None
        path = Path(version_dir) / manifest.directions
        try:
            d = cls(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise DirectionError(f"{path}: unreadable directions ({e})") from e
        dims = {"z": manifest.z_dim, "w": manifest.w_dim, "class": manifest.num_classes}
        wrong = [x.name for x in d.all() if len(x.vector) != dims.get(x.space)]
        if wrong:
            raise DirectionError(f"{path}: {wrong[0]} has {len(d.get(wrong[0]).vector)} "
                                 f"numbers; the model's {d.get(wrong[0]).space} has "
                                 f"{dims.get(d.get(wrong[0]).space)}")
        return d

    def names(self) -> list[str]:
        return list(self._by_name)

    def all(self) -> list[Direction]:
        return list(self._by_name.values())

    def get(self, name: str) -> Direction:
        try:
            return self._by_name[name]
        except KeyError:
            raise DirectionError(name) from None

    def apply(self, latent: np.ndarray, weights: np.ndarray | None,
              amounts: dict[str, float]) -> tuple[np.ndarray, np.ndarray | None]:
        """(latent [n, D] or [n, L, D], class weights [n, K] or None) moved by ``amounts``."""
        latent = latent.astype(np.float32, copy=True)
        weights = None if weights is None else weights.astype(np.float32, copy=True)
        for name, amount in amounts.items():
            d = self.get(name)
            if d.space == "class":
                if weights is None:
                    raise DirectionError(f"{name}: moves class weights, and none were given")
                weights += np.float32(amount) * d.vector
            else:
                latent += np.float32(amount) * d.vector
        if weights is not None:
            weights = np.clip(weights, 0.0, None)
            total = weights.sum(axis=1, keepdims=True)
            weights = np.where(total > 0, weights / np.maximum(total, 1e-12), weights)
        return latent, weights
