"""Shared fixtures: a tiny labeled dataset, baby runs and exports, a tiny feature extractor."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

CLASS_NAMES = [f"class{i}" for i in range(10)]


def make_images(n: int = 64, size: int = 28, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [n, size, size] images on a black background: class k is a bright bar at row 2k+4."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 10
    x = (rng.random((n, size, size)) * 40).astype(np.uint8)
    x[:, :2, :] = 0
    x[:, -2:, :] = 0
    x[:, :, :2] = 0
    x[:, :, -2:] = 0
    for i, k in enumerate(y):
        r = 2 * k + 4
        x[i, r:r + 3, 4:size - 4] = 220
    return x, y.astype(np.int64)


def write_idx(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray,
              gz: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    n, h, w = images.shape
    img = bytes([0, 0, 8, 3]) + b"".join(int(v).to_bytes(4, "big") for v in (n, h, w))
    img += images.tobytes()
    lab = bytes([0, 0, 8, 1]) + n.to_bytes(4, "big") + labels.astype(np.uint8).tobytes()
    opener = gzip.open if gz else open
    suffix = ".gz" if gz else ""
    with opener(folder / f"{prefix}-images-idx3-ubyte{suffix}", "wb") as f:
        f.write(img)
    with opener(folder / f"{prefix}-labels-idx1-ubyte{suffix}", "wb") as f:
        f.write(lab)


@pytest.fixture(scope="session")
def idx_dir(tmp_path_factory) -> Path:
    """An IDX folder like Fashion-MNIST's, with train (64) and t10k (40) splits."""
    d = tmp_path_factory.mktemp("idx")
    write_idx(d, "train", *make_images(64, seed=0))
    write_idx(d, "t10k", *make_images(40, seed=1))
    (d / "classes.txt").write_text("\n".join(CLASS_NAMES) + "\n")
    return d


@pytest.fixture(scope="session")
def extractor_dir(tmp_path_factory, idx_dir) -> Path:
    """A tiny ONNX feature extractor (8-d features + 10 logits) with reference stats."""
    import torch

    from ganserve.data import load_images
    from ganserve.features import ExtractorSpec, FeatureExtractor
    from ganserve.quality import feature_stats

    d = tmp_path_factory.mktemp("extractor")
    torch.manual_seed(0)

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 4, 4, stride=4)
            self.feat = torch.nn.Linear(4 * 8 * 8, 8)
            self.cls = torch.nn.Linear(8, 10)

        def forward(self, image):
            f = self.feat(torch.relu(self.conv(image)).flatten(1))
            return self.cls(f), f

    torch.onnx.export(Tiny().eval(), (torch.zeros(2, 1, 32, 32),), str(d / "tiny.onnx"),
                      input_names=["image"], output_names=["logits", "features"],
                      opset_version=17, dynamo=False,
                      dynamic_axes={"image": {0: "b"}, "logits": {0: "b"}, "features": {0: "b"}})
    spec = ExtractorSpec(name="tiny", file="tiny.onnx", logits="logits", input_size=32,
                         channels=1, value_range=(-1.0, 1.0), class_names=CLASS_NAMES,
                         reference="ref.npz", floor={"fid": 1.0})
    (d / "extractor.json").write_text(spec.model_dump_json())
    test = load_images(idx_dir, split="test")
    feats, _ = FeatureExtractor(d).run(test.as_float())
    feature_stats(feats).save(d / "ref.npz")
    return d


def baby_run(root: Path, family: str, data_dir: Path, steps: int | None = None,
             **overrides) -> Path:
    from ganserve.data import load_images
    from ganserve.training.config import TrainConfig, preset
    from ganserve.training.loop import train
    from ganserve.training.networks import config_from_dict

    m, t = preset(family, "baby")
    data = load_images(data_dir)
    if family == "cgan":
        m["num_classes"] = data.num_classes
    m["class_names"] = data.class_names
    if steps:
        t["steps"] = steps
    t.update(overrides)
    run = root / f"run-{family}"
    train(run, family, config_from_dict(family, m), TrainConfig(**t), data,
          command=f"test {family}")
    return run


@pytest.fixture(scope="session")
def baby_exports(tmp_path_factory, idx_dir) -> dict[str, Path]:
    """Each family trained 4 baby steps and exported to a store: {family: version dir}."""
    from ganserve.training.export import export_run

    root = tmp_path_factory.mktemp("baby")
    out = {}
    for fam in ("dcgan", "cgan", "stylegan"):
        run = baby_run(root, fam, idx_dir)
        out[fam] = export_run(run, root / "models", f"baby-{fam}", "1")
    return out


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


@pytest.fixture(scope="module")
def shipped_api():
    """An in-process app on the shipped models (read only), for tests that compare the
    API's bytes with another way of making them."""
    from tests.service.conftest import make_client, wait_ready

    with make_client(Path(__file__).resolve().parents[1] / "models") as c:
        wait_ready(c)
        yield c


@pytest.fixture(scope="session")
def inverted_store(baby_exports, idx_dir, extractor_dir, tmp_path_factory) -> Path:
    """A store of the baby versions, each with a projection encoder (a few steps) and latent
    directions (few samples), as `ganserve train-encoder` and `ganserve directions` add
    them; plain-dcgan/1 is baby-dcgan/1 without either; the tiny classifier is the store's
    evaluator (the project job's perceptual loss)."""
    import shutil

    from ganserve.data import load_images
    from ganserve.evaluation.directions import add_directions, compute
    from ganserve.training.inversion import EncoderTraining, add_encoder, train_encoder

    root = tmp_path_factory.mktemp("inverted")
    for vdir in baby_exports.values():
        dest = root / vdir.parent.name / vdir.name
        shutil.copytree(vdir, dest)
        encoder, record = train_encoder(dest, load_images(idx_dir), extractor_dir,
                                        EncoderTraining(steps=3, batch=8))
        add_encoder(dest, encoder, record)
        add_directions(dest, compute(dest, extractor_dir, n=120, k=3, per_pair=5))
    shutil.copytree(extractor_dir, root / "_evaluators" / "fashion-mnist")  # the store's own
    plain = root / "plain-dcgan" / "1"
    shutil.copytree(baby_exports["dcgan"], plain)
    m = json.loads((plain / "manifest.json").read_text())
    m["name"] = "plain-dcgan"
    (plain / "manifest.json").write_text(json.dumps(m))
    return root
