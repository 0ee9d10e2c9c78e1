import contextlib

import numpy as np
import pytest

from ganserve.latent_space import lerp, mix_ws, parse_styles, slerp, style_layer_groups


def test_slerp_endpoints_and_norm():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=64).astype(np.float32), rng.normal(size=64).astype(np.float32)
    out = slerp(a, b, np.linspace(0, 1, 5))
    assert np.allclose(out[0], a, atol=1e-5) and np.allclose(out[-1], b, atol=1e-5)
    # for equal-norm endpoints, slerp stays on the sphere; lerp cuts inside it
    b = b / np.linalg.norm(b) * np.linalg.norm(a)
    mid_s = slerp(a, b, np.array([0.5]))[0]
    mid_l = lerp(a, b, np.array([0.5]))[0]
    assert np.linalg.norm(mid_s) == pytest.approx(np.linalg.norm(a), rel=1e-4)
    assert np.linalg.norm(mid_l) < np.linalg.norm(a)


def test_style_groups_at_8_ws():
    assert style_layer_groups(8) == {"coarse": [0, 1, 2, 3], "middle": [4, 5], "fine": [6, 7]}


@pytest.mark.parametrize("spec, layers", [
    ("0-3", [0, 1, 2, 3]), ("fine", [6, 7]), ([0, "4-5"], [0, 4, 5]), ("1, 3", [1, 3]),
])
def test_parse_styles(spec, layers):
    assert parse_styles(spec, 8) == layers


@pytest.mark.parametrize("spec", ["0-8", "x", "3-1", [], [True]])
def test_parse_styles_rejects(spec):
    with pytest.raises(ValueError):
        parse_styles(spec, 8)


def test_mix_ws_layout():
    rows = np.zeros((2, 4, 3), np.float32)
    cols = np.ones((3, 4, 3), np.float32) * np.arange(1, 4)[:, None, None]
    out = mix_ws(rows, cols, [0, 1])
    assert out.shape == (6, 4, 3)
    assert out[4, 0, 0] == 2 and out[4, 2, 0] == 0      # row 1, col 1: col's layers 0-1 only


def _peak_bytes(fn) -> int:
    import tracemalloc
    tracemalloc.start()
    with contextlib.suppress(ValueError):
        fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


@pytest.mark.parametrize("spec", ["0-1000000", "0-100000000", "0-" + "9" * 400,
                                  ["1", "2-1000000"]])
def test_parse_styles_refuses_a_huge_range_without_building_it(spec):
    with pytest.raises(ValueError, match="out of range 0..7"):
        parse_styles(spec, 8)
    # the old parser built the whole range first: 0-1000000 alone was ~36 MB
    assert _peak_bytes(lambda: parse_styles(spec, 8)) < 200_000


@pytest.mark.parametrize("spec", ["²", "①", "٣-5", "0-𝟘", "", " , "])
def test_parse_styles_refuses_unicode_digits_and_blanks(spec):
    with pytest.raises(ValueError, match="invalid style layer"):
        parse_styles(spec, 8)
