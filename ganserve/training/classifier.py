"""The evaluation classifier: a small CNN trained on the dataset itself (>= 92% on
Fashion-MNIST test), exported to ONNX with two outputs, ``logits`` and ``features``
(penultimate, 128-d), plus the test split's feature statistics and the real-vs-real floor.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganserve.data import DataError, ImageData, load_images
from ganserve.data.base import as_float
from ganserve.features import SPEC_NAME, ExtractorSpec, FeatureExtractor
from ganserve.manifest import atomic_write_text, sha256_file
from ganserve.quality import feature_stats, fid_from_stats, kid, precision_recall

log = logging.getLogger(__name__)
FEATURE_DIM = 128


def conv_bn(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(True))


class Classifier(nn.Module):
    """3 conv stages (32 -> 16 -> 8 -> 4) -> 128-d features (BN, pre-ReLU) -> logits."""

    def __init__(self, channels: int = 1, num_classes: int = 10, width: int = 32):
        super().__init__()
        w = width
        self.body = nn.Sequential(
            conv_bn(channels, w), conv_bn(w, w), nn.MaxPool2d(2),
            conv_bn(w, 2 * w), conv_bn(2 * w, 2 * w), nn.MaxPool2d(2),
            conv_bn(2 * w, 4 * w), conv_bn(4 * w, 4 * w), nn.MaxPool2d(2),
            nn.Flatten(), nn.Dropout(0.3),
            nn.Linear(4 * w * 16, FEATURE_DIM, bias=False), nn.BatchNorm1d(FEATURE_DIM))
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(0.3), nn.Linear(FEATURE_DIM, num_classes))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.body(x)
        return self.head(f), f


def _augment(x: torch.Tensor) -> torch.Tensor:
    """Random shifts of up to 2 px (pad + crop); keeps garments recognisable."""
    n = x.shape[0]
    padded = F.pad(x, (2, 2, 2, 2), value=-1.0)
    dx, dy = torch.randint(0, 5, (2,))
    out = padded[:, :, dy:dy + x.shape[2], dx:dx + x.shape[3]]
    flip = torch.rand(n) < 0.5
    return torch.where(flip[:, None, None, None], out.flip(3), out)


@torch.no_grad()
def accuracy(model: nn.Module, data: ImageData, batch: int = 1000) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(data), batch):
        logits, _ = model(torch.from_numpy(data.as_float(i, i + batch)))
        correct += int((logits.argmax(1).numpy() == data.labels[i:i + batch]).sum())
    return correct / len(data)


def train_classifier(train: ImageData, test: ImageData, epochs: int = 8, batch: int = 128,
                     seed: int = 0, log_fn: Callable[[str], None] = log.info) -> nn.Module:
    torch.manual_seed(seed)
    model = Classifier(train.channels, train.num_classes)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=5e-4)
    steps = epochs * (len(train) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    x_all = torch.from_numpy(train.images)
    y_all = torch.from_numpy(train.labels)
    for epoch in range(epochs):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(len(train))
        for i in range(0, len(train) - batch + 1, batch):
            idx = perm[i:i + batch]
            x = _augment(x_all[idx].float() * (2 / 255) - 1)
            logits, _ = model(x)
            loss = F.cross_entropy(logits, y_all[idx], label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        acc = accuracy(model, test)
        log_fn(f"classifier epoch {epoch + 1}/{epochs}: loss {loss.item():.3f}, "
               f"test accuracy {acc:.4f} ({time.perf_counter() - t0:.0f} s)")
    return model.eval()


class _Export(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model(image)


def export_classifier(model: nn.Module, path: Path, channels: int, size: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_Export(model).eval(), (torch.zeros(2, channels, size, size),),
                          str(path), input_names=["image"], output_names=["logits", "features"],
                          opset_version=17, dynamo=False,
                          dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"},
                                        "features": {0: "batch"}})


def build_evaluator(data_path: str | Path | None, out_dir: str | Path, epochs: int = 8,
                    seed: int = 0, floor_n: int = 10_000, limit: int | None = None,
                    log_fn: Callable[[str], None] = log.info) -> ExtractorSpec:
    """Train, export and characterise the classifier; writes ``out_dir/extractor.json``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train = load_images(data_path, split="train", limit=limit)
    test = load_images(data_path, split="test", limit=limit)
    if train.labels is None or test.labels is None:
        raise DataError("the evaluation classifier needs labeled train and test splits")
    model = train_classifier(train, test, epochs=epochs, seed=seed, log_fn=log_fn)
    acc = accuracy(model, test)
    export_classifier(model, out / "classifier.onnx", train.channels, train.resolution)
    spec = ExtractorSpec(name="fashion-mnist-classifier" if "fashion" in train.source.lower()
                         else "dataset-classifier",
                         file="classifier.onnx", input="image", features="features",
                         logits="logits", input_size=train.resolution, channels=train.channels,
                         value_range=(-1.0, 1.0), resize_filter="bilinear",
                         class_names=train.class_names, test_accuracy=round(acc, 4),
                         reference="reference_test.npz")
    spec.files = {"classifier.onnx": sha256_file(out / "classifier.onnx")}
    atomic_write_text(out / SPEC_NAME, spec.model_dump_json(indent=2) + "\n")

    # reference statistics of the test split and the real-vs-real floor, with the ONNX model
    ext = FeatureExtractor(out)
    test_feats, _ = ext.run(test.as_float())
    ref = feature_stats(test_feats)
    ref.save(out / "reference_test.npz")
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(train), min(floor_n, len(train)), replace=False)
    train_feats, _ = ext.run(as_float(train.images[pick]))
    kid_mean, _ = kid(test_feats, train_feats)
    prec, rec = precision_recall(test_feats, train_feats, k=3)
    spec.floor = {"fid": round(fid_from_stats(ref, feature_stats(train_feats)), 4),
                  "kid": round(kid_mean, 6), "precision": round(prec, 4),
                  "recall": round(rec, 4), "n_train": int(len(pick)), "n_test": len(test)}
    spec.files["reference_test.npz"] = sha256_file(out / "reference_test.npz")
    atomic_write_text(out / SPEC_NAME, spec.model_dump_json(indent=2) + "\n")
    log_fn(f"classifier test accuracy {acc:.4f}; real-vs-real floor {spec.floor}")
    return spec
