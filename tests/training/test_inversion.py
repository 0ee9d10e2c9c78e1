"""The projection encoder's training and export, the classifier run by torch, and the latent
directions computed from a version."""

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from ganserve.evaluation.directions import add_directions, compute
from ganserve.features import FeatureExtractor
from ganserve.generator import OnnxGenerator
from ganserve.latent_directions import Directions
from ganserve.manifest import ManifestError, load_manifest, sha256_file, verify_files
from ganserve.training.class_directions import ClassDirectionTraining, learn_class_vectors
from ganserve.training.inversion import (
    EncoderTraining,
    FrozenGenerator,
    add_encoder,
    train_encoder,
)
from ganserve.training.onnx_torch import OnnxModule
from tests.conftest import CLASS_NAMES

REPO = Path(__file__).resolve().parents[2]
SHIPPED_CLASSIFIER = REPO / "models" / "_evaluators" / "fashion-mnist"


@pytest.mark.parametrize("which", ["tiny", "shipped"])
def test_onnx_module_reproduces_onnx_runtime(which, extractor_dir):
    """The evaluation classifier in torch (for gradients) gives ONNX Runtime's numbers."""
    folder = extractor_dir if which == "tiny" else SHIPPED_CLASSIFIER
    ext = FeatureExtractor(folder, device="cpu")
    net = OnnxModule(ext.dir / ext.spec.file)
    x = torch.rand(5, 1, 32, 32) * 2 - 1
    want = ext.session.run(None, {"image": x.numpy()})
    got = net(x)
    for name, value in zip([o.name for o in ext.session.get_outputs()], want):
        np.testing.assert_allclose(got[name].numpy(), value, atol=2e-4, rtol=1e-4)
    x.requires_grad_(True)
    net(x)[ext.spec.features].square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0     # gradients reach the image


def test_onnx_module_refuses_unknown_operators(tmp_path):
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Sin", ["x"], ["y"])], "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
    onnx.save(onnx.helper.make_model(graph), str(tmp_path / "sin.onnx"))
    with pytest.raises(ValueError, match="Sin"):
        OnnxModule(tmp_path / "sin.onnx")


@pytest.mark.parametrize("family", ["dcgan", "cgan", "stylegan"])
def test_frozen_generator_renders_what_onnx_serves(family, baby_exports):
    vdir = baby_exports[family]
    gen, onnx_gen = FrozenGenerator(vdir), OnnxGenerator(vdir, device="cpu")
    z = torch.from_numpy(onnx_gen.latents([1, 2, 3]))
    latent = gen.G.mapping(z) if family == "stylegan" else z
    classes = torch.tensor([0, 4, 9]) if family == "cgan" else None
    with torch.no_grad():
        got = gen.image(latent, classes).numpy()
    want = onnx_gen.generate([1, 2, 3], [0, 4, 9] if family == "cgan" else None)
    np.testing.assert_allclose(got, want, atol=1e-4)


@pytest.mark.parametrize("family", ["dcgan", "cgan", "stylegan"])
def test_added_encoder_is_a_checked_graph_of_the_version(family, inverted_store):
    vdir = inverted_store / f"baby-{family}" / "1"
    m = load_manifest(vdir)
    verify_files(vdir, m)
    spec = m.graphs["encoder"]
    latent = "w" if family == "stylegan" else "z"
    assert [t.name for t in spec.inputs] == ["image"]
    assert [t.name for t in spec.outputs] == [latent] + (["class"] if family == "cgan" else [])
    assert 0 <= m.parity["encoder"] <= 1e-4
    assert m.inversion["encoder"]["latent"] == latent and m.inversion["encoder"]["steps"] == 3
    gen = OnnxGenerator(vdir, device="cpu")
    out = gen.sessions["encoder"].run(None, gen.example_feeds("encoder", 4))
    assert out[0].shape == (4, m.w_dim if family == "stylegan" else m.z_dim)


def test_encoder_training_learns_to_invert_the_generator(idx_dir):
    """The shipped DCGAN (a baby generator draws nearly one image): on images it never
    trained on, the reconstruction error falls as the encoder trains (its z error need
    not: many a z gives nearly the same DCGAN image)."""
    from ganserve.data import load_images
    data, vdir = load_images(idx_dir), REPO / "models" / "fashion-dcgan" / "1"
    gen = FrozenGenerator(vdir)
    z, _ = gen.sample(64, torch.Generator().manual_seed(123))
    with torch.no_grad():
        x = gen.image(z)

    def pixel_error(steps: int) -> float:
        enc, _ = train_encoder(vdir, data, SHIPPED_CLASSIFIER,
                               EncoderTraining(steps=steps, batch=16))
        with torch.no_grad():
            return float((gen.image(enc(x)[0]) - x).square().mean())
    assert pixel_error(150) < 0.8 * pixel_error(1)


def test_add_encoder_refuses_a_corrupted_version(baby_exports, idx_dir, extractor_dir,
                                                 tmp_path):
    from ganserve.data import load_images
    vdir = tmp_path / "m" / "1"
    shutil.copytree(baby_exports["dcgan"], vdir)
    encoder, record = train_encoder(vdir, load_images(idx_dir), extractor_dir,
                                    EncoderTraining(steps=1, batch=4))
    (vdir / "generator.onnx").write_bytes(b"not the graph")
    with pytest.raises(ManifestError, match="sha256 mismatch"):
        add_encoder(vdir, encoder, record)
    assert not (vdir / "encoder.onnx").exists()


@pytest.mark.parametrize("family", ["dcgan", "cgan", "stylegan"])
def test_directions_are_stored_with_the_version(family, inverted_store):
    vdir = inverted_store / f"baby-{family}" / "1"
    m = load_manifest(vdir)
    verify_files(vdir, m)
    d = Directions.load(vdir, m)
    assert d.space == ("w" if family == "stylegan" else "z")
    principal = [x for x in d.all() if x.kind == "principal"]
    ratios = [x.info["explained_variance_ratio"] for x in principal]
    assert [x.name for x in principal] == ["pc0", "pc1", "pc2"]
    assert ratios == sorted(ratios, reverse=True) and 0 < sum(ratios) <= 1
    pairs = [x for x in d.all() if x.kind == "class"]
    stored = json.loads((vdir / "directions.json").read_text())["classes"]
    found = [n for n, k in zip(CLASS_NAMES, stored.get("samples", [10] * 10)) if k >= 10]
    assert len(pairs) == len(found) * (len(found) - 1)      # pairs of classes seen enough
    assert {x.info["from"] for x in pairs} == (set(found) if len(found) > 1 else set())
    assert all(0 <= x.info["flip"] <= 1 for x in pairs if "flip" in x.info)
    assert all(x.space == ("class" if family == "cgan" else d.space) for x in pairs)
    if family == "cgan":
        assert len(pairs) == 90
    assert m.inversion["directions"]["samples"] == 120


def test_w_principal_directions_are_scaled_to_one_standard_deviation(inverted_store):
    vdir = inverted_store / "baby-stylegan" / "1"
    data = json.loads((vdir / "directions.json").read_text())
    gen = OnnxGenerator(vdir, device="cpu")
    w = gen.mapping(gen.latents(list(range(1_000_000, 1_000_120))))
    for p in data["principal"]:
        v = np.asarray(p["vector"])
        spread = ((w - w.mean(0)) @ (v / np.linalg.norm(v))).std(ddof=1)
        assert np.linalg.norm(v) == pytest.approx(spread, rel=1e-3)


@pytest.mark.parametrize("family", ["dcgan", "stylegan"])
def test_learned_class_directions_are_differences_of_class_vectors(family, baby_exports,
                                                                   extractor_dir, tmp_path):
    """Learned (``ganserve directions``' default): one vector per class; a -> b is
    u_b - u_a, in the model's latent space, and each pair's flip is measured as for LDA."""
    vdir = tmp_path / "m" / "1"
    shutil.copytree(baby_exports[family], vdir)
    seen = []

    def learn(latent, labels, names):
        seen.append((latent.shape, labels.shape))
        # the baby models' samples are mostly one class: three classes, as if they were
        return learn_class_vectors(vdir, extractor_dir, latent, np.arange(len(labels)) % 3,
                                   names, ClassDirectionTraining(steps=4, batch=8))

    data = compute(vdir, extractor_dir, n=400, k=2, per_pair=5, learn=learn)
    c = data["classes"]
    assert seen and c["method"] == "learned" and c["learned"]["steps"] == 4
    u = np.asarray(c["vectors"])
    space_dim = 16 if family == "stylegan" else load_manifest(vdir).z_dim
    assert u.shape == (10, space_dim)
    d = Directions(data)
    pairs = [x for x in d.all() if x.kind == "class"]
    assert pairs and all(x.space == c["space"] for x in pairs)
    x = pairs[0]
    a, b = CLASS_NAMES.index(x.info["from"]), CLASS_NAMES.index(x.info["to"])
    assert np.allclose(x.vector, u[b] - u[a], atol=1e-6)
    assert set(c["flip"]) <= {p.name for p in pairs}
    add_directions(vdir, data)
    assert Directions.load(vdir, load_manifest(vdir)).names() == d.names()


def test_one_class_sampled_learns_no_pairs(baby_exports, extractor_dir):
    z = np.zeros((30, load_manifest(baby_exports["dcgan"]).z_dim), np.float32)
    c = learn_class_vectors(baby_exports["dcgan"], extractor_dir, z, np.full(30, 4),
                            CLASS_NAMES, ClassDirectionTraining(steps=5))
    assert c["learned"]["steps"] == 0 and c["samples"][4] == 30
    assert [x for x in Directions({"schema": 1, "space": "z", "dim": z.shape[1],
                                   "principal": [], "classes": c}).all()] == []


def test_learning_class_vectors_lowers_the_cross_entropy(baby_exports, extractor_dir):
    gen = OnnxGenerator(baby_exports["dcgan"], device="cpu")
    z = gen.latents(list(range(300)))
    labels = np.arange(len(z)) % 3          # (the baby's samples are mostly one class)
    runs = [learn_class_vectors(baby_exports["dcgan"], extractor_dir, z, labels, CLASS_NAMES,
                                ClassDirectionTraining(steps=steps, batch=32, shift=0))
            for steps in (1, 100)]
    assert (runs[1]["learned"]["final_cross_entropy"]
            < runs[0]["learned"]["final_cross_entropy"])


def test_conditional_models_learn_no_class_vectors(baby_exports, extractor_dir):
    with pytest.raises(ValueError, match="class input"):
        learn_class_vectors(baby_exports["cgan"], extractor_dir, np.zeros((20, 16)),
                            np.zeros(20, int), CLASS_NAMES)


def test_directions_without_the_classifiers_classes_are_principal_only(baby_exports,
                                                                       extractor_dir, tmp_path):
    vdir = tmp_path / "m" / "1"
    shutil.copytree(baby_exports["stylegan"], vdir)
    m = json.loads((vdir / "manifest.json").read_text())
    m["class_names"] = ["x", "y"]
    (vdir / "manifest.json").write_text(json.dumps(m))
    data = compute(vdir, extractor_dir, n=50, k=2)
    assert data["classes"] is None and len(data["principal"]) == 2    # principal only
    d = Directions(data)
    assert d.names() == ["pc0", "pc1"]


def test_adding_again_replaces_the_encoder_and_directions_file_by_file(inverted_store,
                                                                       idx_dir,
                                                                       extractor_dir,
                                                                       tmp_path):
    from ganserve.data import load_images
    from ganserve.evaluation.directions import add_directions
    vdir = tmp_path / "baby-dcgan" / "1"
    shutil.copytree(inverted_store / "baby-dcgan" / "1", vdir)
    encoder, record = train_encoder(vdir, load_images(idx_dir), extractor_dir,
                                    EncoderTraining(steps=1, batch=4))
    add_encoder(vdir, encoder, record)
    add_directions(vdir, compute(vdir, extractor_dir, n=60, k=2, per_pair=2))
    m = load_manifest(vdir)
    verify_files(vdir, m)
    assert m.graphs["encoder"].file == "encoder-2.onnx" and m.directions == "directions-2.json"
    assert not (vdir / "encoder.onnx").exists() and not (vdir / "directions.json").exists()
    assert m.inversion["encoder"]["steps"] == 1 and len(Directions.load(vdir, m).all()) >= 2


def test_directions_of_another_size_are_refused_and_the_version_still_serves(
        inverted_store, tmp_path):
    from ganserve.latent_directions import DirectionError
    from tests.service.conftest import make_client, wait_ready
    root = tmp_path / "store"
    shutil.copytree(inverted_store / "baby-dcgan", root / "baby-dcgan")
    vdir = root / "baby-dcgan" / "1"
    data = json.loads((vdir / "directions.json").read_text())
    data["principal"][0]["vector"] = [1.0, 2.0]
    (vdir / "directions.json").write_text(json.dumps(data))
    m = load_manifest(vdir)
    m.files = {**m.files, "directions.json": sha256_file(vdir / "directions.json")}
    (vdir / "manifest.json").write_text(m.model_dump_json())
    with pytest.raises(DirectionError, match="pc0 has 2 numbers"):
        Directions.load(vdir, m)
    with make_client(root) as c:
        wait_ready(c)
        assert c.post("/v1/models/baby-dcgan/sample", json={"seeds": [1]}).status_code == 200
        assert c.post("/v1/models/baby-dcgan/edit", json={"seed": 1}).status_code == 409
