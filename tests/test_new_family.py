"""A fourth family, added through the public extension points only: its core description
(``ganserve.families.register_family``) and its training side
(``ganserve.training.networks.register_model_family``). It trains a few steps, exports and
is served, with no file of the project edited."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import torch
from torch import nn

from ganserve import families
from ganserve.families import Family, register_family
from tests.service.conftest import make_client, wait_ready


@dataclass
class ToyConfig:
    resolution: int = 32
    channels: int = 1
    z_dim: int = 8                 # latent size
    hidden: int = 16               # units in the MLP's hidden layer
    num_classes: int = 0
    class_names: list[str] = field(default_factory=list)


class ToyGenerator(nn.Module):
    """z -> a tiny MLP -> tanh image."""

    def __init__(self, cfg: ToyConfig):
        super().__init__()
        self.cfg, self.z_dim, self.num_classes = cfg, cfg.z_dim, 0
        pixels = cfg.channels * cfg.resolution ** 2
        self.net = nn.Sequential(nn.Linear(cfg.z_dim, cfg.hidden), nn.ReLU(),
                                 nn.Linear(cfg.hidden, pixels), nn.Tanh())

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        c_, r = self.cfg.channels, self.cfg.resolution
        return self.net(z).view(-1, c_, r, r)

    def onnx_graphs(self):
        from ganserve.training.networks.common import OnnxGraph
        cfg = self.cfg
        return [OnnxGraph(
            name="generator", module=self, make_inputs=lambda b: (torch.randn(b, cfg.z_dim),),
            input_names=["z"], output_names=["image"], input_shapes=[["batch", cfg.z_dim]],
            output_shapes=[["batch", cfg.channels, cfg.resolution, cfg.resolution]],
            input_dtypes=["float32"], input_ranges=[None], output_ranges=[[-1.0, 1.0]],
            descriptions={"z": "latent", "image": "NCHW image in [-1, 1]"})]


class ToyDiscriminator(nn.Module):
    def __init__(self, cfg: ToyConfig):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(cfg.channels * cfg.resolution ** 2,
                                                         cfg.hidden),
                                 nn.LeakyReLU(0.2), nn.Linear(cfg.hidden, 1))

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x).flatten()


class ToyFamily:
    Config, Generator, Discriminator = ToyConfig, ToyGenerator, ToyDiscriminator
    PRESETS = {"baby": ({}, dict(steps=4, batch=8, log_every=1, sample_every=2,
                                 checkpoint_every=2, sample_seeds=16, eval_samples=64))}


@pytest.fixture
def toy():
    from ganserve.training import networks
    register_family(Family("toy-mlp", description="a tiny MLP generator"))
    networks.register_model_family("toy-mlp", ToyFamily)
    yield "toy-mlp"
    networks.FAMILIES.pop("toy-mlp")
    families._FAMILIES.pop("toy-mlp")


def test_a_fourth_family_trains_exports_and_is_served(toy, idx_dir, tmp_path):
    from ganserve.data import load_images
    from ganserve.training.config import TrainConfig, preset
    from ganserve.training.export import export_run
    from ganserve.training.loop import train
    from ganserve.training.networks import config_from_dict

    m, t = preset(toy, "baby")
    data = load_images(idx_dir)
    result = train(tmp_path / "run", toy, config_from_dict(toy, m), TrainConfig(**t), data)
    assert result.step == 4
    export_run(tmp_path / "run", tmp_path / "store", "toy", "1")
    with make_client(tmp_path / "store") as c:
        wait_ready(c)
        info = c.get("/v1/models/toy").json()
        assert info["family"] == "toy-mlp" and info["versions"][0]["status"] == "ready"
        r = c.post("/v1/models/toy/sample", json={"seeds": [1, 2, 3]})
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        again = c.post("/v1/models/toy/sample", json={"seeds": [2]})
        assert again.status_code == 200
