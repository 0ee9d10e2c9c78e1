import pytest
import torch
import torch.nn.functional as F

from ganserve.training.networks import build, config_from_dict, family_module
from ganserve.training.networks.stylegan import Config as SGConfig
from ganserve.training.networks.stylegan import Generator as SGGenerator
from ganserve.training.networks.stylegan import MinibatchStd, modulated_conv2d


def baby(family):
    from ganserve.training.config import preset
    m, _ = preset(family, "baby")
    if family == "cgan":
        m["num_classes"] = 10
    return config_from_dict(family, m)


@pytest.mark.parametrize("family", ["dcgan", "cgan", "stylegan"])
def test_family_forward_shapes(family):
    cfg = baby(family)
    G, D = build(family, cfg)
    z = torch.randn(5, cfg.z_dim)
    c = torch.arange(5) % 10
    x = G(z, c)
    assert x.shape == (5, cfg.channels, cfg.resolution, cfg.resolution)
    assert D(x, c).shape == (5,)


def test_dcgan_64_adds_a_layer():
    cfg = family_module("dcgan").Config(resolution=64, g_width=8, d_width=8)
    G, D = build("dcgan", cfg)
    x = G(torch.randn(2, cfg.z_dim))
    assert x.shape == (2, 1, 64, 64) and D(x).shape == (2,)


@pytest.mark.parametrize("bad", [{"resolution": 48}, {"channels": 2}])
def test_dcgan_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        family_module("dcgan").Config(**bad)


def test_cgan_config_checks_class_names():
    with pytest.raises(ValueError, match="class_names"):
        family_module("cgan").Config(num_classes=3, class_names=("a", "b"))


def test_stylegan_has_8_ws_at_32px():
    assert SGConfig(resolution=32).num_ws == 8
    assert SGConfig(resolution=64).num_ws == 10


def _grouped_modconv(x, weight, styles, demodulate, padding):
    """NVIDIA's fused form: per-sample weights, one grouped conv."""
    B, O = x.shape[0], weight.shape[0]
    w = weight[None] * styles[:, None, :, None, None]
    if demodulate:
        w = w * torch.rsqrt(w.square().sum(dim=(2, 3, 4)) + 1e-8)[:, :, None, None, None]
    out = F.conv2d(x.reshape(1, -1, *x.shape[2:]), w.reshape(B * O, *w.shape[2:]),
                   padding=padding, groups=B)
    return out.reshape(B, O, *out.shape[2:])


@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_conv_matches_grouped_conv(demodulate):
    torch.manual_seed(0)
    x, weight = torch.randn(3, 6, 8, 8), torch.randn(5, 6, 3, 3)
    styles = torch.randn(3, 6) + 1
    ours = modulated_conv2d(x, weight, styles, demodulate, padding=1)
    ref = _grouped_modconv(x, weight, styles, demodulate, padding=1)
    assert torch.allclose(ours, ref, atol=1e-4, rtol=1e-4)


def test_stylegan_w_avg_tracks_only_in_training():
    G = SGGenerator(baby("stylegan"))
    before = G.mapping.w_avg.clone()
    G.eval()
    G(torch.randn(4, G.z_dim))
    assert torch.equal(G.mapping.w_avg, before)
    G.train()
    G(torch.randn(4, G.z_dim))
    assert not torch.equal(G.mapping.w_avg, before)


@pytest.mark.parametrize("noise", ["w", "const"])
def test_stylegan_eval_is_deterministic_per_row(noise):
    cfg = baby("stylegan")
    cfg.inference_noise = noise
    G = SGGenerator(cfg).eval()
    for layer in G.modules():           # noise must matter for this test to mean anything
        if hasattr(layer, "noise_strength"):
            layer.noise_strength.data.fill_(1.0)
    z = torch.randn(3, G.z_dim)
    assert torch.equal(G(z), G(z))
    assert torch.allclose(G(z[1:2]), G(z)[1:2], atol=1e-4)     # a row's image ignores its batch


def test_stylegan_w_noise_differs_per_image_and_follows_w():
    G = SGGenerator(baby("stylegan")).eval()
    layer = G.synthesis.blocks[-1].conv1
    w = torch.randn(2, G.mapping.w_avg.numel())
    maps = layer.inference_noise_map(w)
    assert maps.shape == (2, 1, layer.resolution, layer.resolution)
    assert not torch.allclose(maps[0], maps[1])
    assert abs(float(maps.std()) - 1.0) < 0.5                   # about unit variance
    # torch's CPU matmul is not batch-invariant on every CPU (Intel differs in the last bits
    # between batch 1 and 2): torch tests compare with a tolerance; bit-exactness is ORT's
    assert torch.allclose(layer.inference_noise_map(w[:1]), maps[:1], atol=1e-5, rtol=1e-5)
    const = SGGenerator(baby("stylegan")).eval().synthesis.blocks[-1].conv1
    const.inference_noise = "const"
    c = const.inference_noise_map(w)
    assert torch.equal(c[0], const.noise_const[None])           # one map for every image


def test_stylegan_config_rejects_unknown_noise_mode():
    cfg = baby("stylegan")
    cfg.inference_noise = "random"
    with pytest.raises(ValueError, match="inference_noise"):
        cfg.__post_init__()


def test_stylegan_config_rejects_zero_mbstd_group():
    cfg = baby("stylegan")
    cfg.mbstd_group = 0
    with pytest.raises(ValueError, match="mbstd_group"):
        cfg.__post_init__()


def test_minibatch_std_group_of_whole_batch_gives_one_statistic():
    torch.manual_seed(0)
    x = torch.randn(8, 3, 4, 4)
    y = MinibatchStd(8)(x)[:, -1]
    expected = x.std(dim=0, unbiased=False).mean()
    assert torch.allclose(y, expected.expand_as(y), atol=1e-5)


def test_minibatch_std_small_groups_see_only_their_members():
    x = torch.zeros(4, 1, 2, 2)
    x[1] = 2.0       # groups are rows {0, 2} and {1, 3}: only the second one varies
    y = MinibatchStd(2)(x)[:, -1, 0, 0]
    assert torch.allclose(y, torch.tensor([0.0, 1.0, 0.0, 1.0]), atol=1e-3)


def test_minibatch_std_shrinks_group_to_divide_the_batch():
    out = MinibatchStd(4)(torch.randn(6, 2, 4, 4))   # 6 images: groups of 3
    assert out.shape == (6, 3, 4, 4)


def test_stylegan_discriminator_uses_configured_mbstd_group():
    cfg = baby("stylegan")
    cfg.mbstd_group = 32
    _, D = build("stylegan", cfg)
    assert D.mbstd.group_size == 32
    assert D(torch.randn(5, cfg.channels, cfg.resolution, cfg.resolution)).shape == (5,)


@pytest.mark.parametrize("arch,has_skip", [("resnet", True), ("orig", False)])
def test_stylegan_discriminator_architecture_sets_skips(arch, has_skip):
    cfg = baby("stylegan")
    cfg.d_architecture = arch
    _, D = build("stylegan", cfg)
    assert all((b.skip is not None) == has_skip for b in D.blocks)
    assert D(torch.randn(4, cfg.channels, cfg.resolution, cfg.resolution)).shape == (4,)


def test_stylegan_config_rejects_unknown_d_architecture():
    cfg = baby("stylegan")
    cfg.d_architecture = "skip"
    with pytest.raises(ValueError, match="d_architecture"):
        cfg.__post_init__()


def test_stylegan_style_mixing_uses_two_latents():
    torch.manual_seed(0)
    cfg = baby("stylegan")
    cfg.style_mixing_prob = 1.0
    G = SGGenerator(cfg).train()
    ws = G.ws(torch.randn(16, G.z_dim))
    # with mixing always on, every row has a cutoff: first and last w differ
    assert not torch.allclose(ws[:, 0], ws[:, -1])
    cfg.style_mixing_prob = 0.0
    ws = G.ws(torch.randn(16, G.z_dim))
    assert torch.allclose(ws[:, 0], ws[:, -1])


def test_stylegan_truncation_psi_zero_gives_w_avg():
    G = SGGenerator(baby("stylegan")).eval()
    G.mapping.w_avg.normal_()
    ws = G.ws(torch.randn(3, G.z_dim), psi=0.0)
    assert torch.allclose(ws, G.mapping.w_avg.expand_as(ws))


def test_cgan_class_weights_equal_indices_and_mix_smoothly():
    G, _ = build("cgan", baby("cgan"))
    G.eval()
    z = torch.randn(3, G.z_dim)
    idx = torch.tensor([1, 5, 9])
    onehot = F.one_hot(idx, 10).float()
    with torch.no_grad():
        assert torch.allclose(G(z, idx), G(z, onehot), atol=1e-6)
        mix = 0.5 * F.one_hot(torch.tensor([1, 1, 1]), 10).float() + 0.5 * onehot
        out = G(z, mix)
    assert out.shape == (3, 1, 32, 32) and torch.isfinite(out).all()
