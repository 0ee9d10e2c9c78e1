"""Feature extractors as ONNX files with their preprocessing declared in JSON.

``extractor.json`` (beside the .onnx) declares: the input and output names, the input size,
channels, value range and resize filter. Generated images (NCHW, [-1, 1]) are converted to
that: channels repeated or averaged, resized with the named filter, scaled to the range.
Nothing is downloaded: an Inception FID works by exporting pytorch-fid's InceptionV3 to
ONNX on a machine that has it (see README) and pointing ``--extractor`` at it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image
from pydantic import BaseModel, Field

from ganserve.manifest import ManifestError, sha256_file
from ganserve.onnx_runtime import make_session

SPEC_NAME = "extractor.json"
FILTERS = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC,
           "lanczos": Image.LANCZOS}


class ExtractorSpec(BaseModel):
    name: str
    file: str = Field(description="the ONNX file, relative to the spec")
    input: str = "image"
    features: str = "features"
    logits: str | None = Field(default=None, description="class logits output, if any")
    input_size: int = Field(gt=0, description="height = width the network expects")
    channels: Literal[1, 3] = 3
    value_range: tuple[float, float] = (-1.0, 1.0)
    resize_filter: Literal["nearest", "bilinear", "bicubic", "lanczos"] = "bilinear"
    class_names: list[str] = Field(default_factory=list)
    test_accuracy: float | None = None
    reference: str | None = Field(default=None, description="npz: mu, sigma of the test split")
    floor: dict[str, float] = Field(default_factory=dict, description="real-vs-real metrics")
    files: dict[str, str] = Field(default_factory=dict, description="file -> sha256")


def find_spec(path: str | Path) -> Path:
    p = Path(path)
    if p.is_dir():
        p = p / SPEC_NAME
    elif p.suffix == ".onnx":
        p = p.with_suffix(".json")
    if not p.is_file():
        raise ManifestError(f"{p}: no extractor spec (an {SPEC_NAME} declaring the ONNX file "
                            "and its preprocessing); pass --extractor FOLDER (default: "
                            "MODELS_DIR/_evaluators/fashion-mnist, built by `ganserve "
                            "build-evaluator`)")
    return p


class FeatureExtractor:
    def __init__(self, path: str | Path, device: str = "auto"):
        self.spec_path = find_spec(path)
        self.dir = self.spec_path.parent
        try:
            self.spec = ExtractorSpec.model_validate_json(self.spec_path.read_text())
        except ValueError as e:
            raise ManifestError(f"{self.spec_path}: invalid extractor spec: {e}") from e
        for name, digest in self.spec.files.items():
            if sha256_file(self.dir / name) != digest:
                raise ManifestError(f"{self.dir / name}: sha256 mismatch")
        self.session = make_session(self.dir / self.spec.file, device)
        outs = [o.name for o in self.session.get_outputs()]
        for want in filter(None, (self.spec.features, self.spec.logits)):
            if want not in outs:
                raise ManifestError(f"{self.spec_path}: output {want!r} not in the ONNX graph "
                                    f"(it has {', '.join(outs)})")

    @property
    def class_names(self) -> list[str]:
        return self.spec.class_names

    def preprocess(self, images: np.ndarray) -> np.ndarray:
        """NCHW images in [-1, 1] -> the network's declared input."""
        s = self.spec
        x = (np.clip(images, -1.0, 1.0) + 1.0) * 0.5                   # [0, 1]
        if x.shape[1] != s.channels:
            x = x.repeat(3, axis=1) if x.shape[1] == 1 else x.mean(axis=1, keepdims=True)
        if x.shape[-1] != s.input_size or x.shape[-2] != s.input_size:
            f = FILTERS[s.resize_filter]
            x = np.stack([np.stack([np.asarray(Image.fromarray(ch.astype(np.float32), mode="F")
                                               .resize((s.input_size, s.input_size), f))
                                    for ch in img]) for img in x])
        lo, hi = s.value_range
        return (x * (hi - lo) + lo).astype(np.float32)

    def run(self, images: np.ndarray, batch: int = 500) -> tuple[np.ndarray, np.ndarray | None]:
        """(features [N, d], logits [N, K] or None) for NCHW images in [-1, 1]."""
        names = [self.spec.features] + ([self.spec.logits] if self.spec.logits else [])
        feats, logits = [], []
        for i in range(0, len(images), batch):
            out = self.session.run(names, {self.spec.input: self.preprocess(images[i:i + batch])})
            feats.append(out[0].reshape(len(out[0]), -1))
            if self.spec.logits:
                logits.append(out[1])
        return (np.concatenate(feats).astype(np.float32),
                np.concatenate(logits) if logits else None)
