import numpy as np
import pytest

from ganserve.latents import SEED_MAX, parse_seeds, z_from_seed, z_from_seeds


def test_seed_mapping_is_the_documented_numpy_recipe():
    expected = np.random.Generator(np.random.PCG64(42)).standard_normal(128, dtype=np.float32)
    assert np.array_equal(z_from_seed(42, 128), expected)


def test_latent_does_not_depend_on_batch_neighbours():
    a = z_from_seeds([7, 8, 9], 16)
    b = z_from_seeds([9], 16)
    assert np.array_equal(a[2], b[0]) and a.dtype == np.float32


@pytest.mark.parametrize("bad", [-1, SEED_MAX + 1, 1.5, True, "3"])
def test_bad_seeds_are_refused(bad):
    with pytest.raises(ValueError, match="seed"):
        z_from_seed(bad, 4)


def test_parse_seeds_lists_and_ranges():
    assert parse_seeds("0,1,4-6") == [0, 1, 4, 5, 6]
    with pytest.raises(ValueError, match="backwards"):
        parse_seeds("5-3")


def test_truncated_latents():
    from ganserve.latents import truncated_z_from_seed
    z = z_from_seed(5, 512)
    assert np.array_equal(truncated_z_from_seed(5, 512, 1.0), z)
    t = truncated_z_from_seed(5, 512, 0.5)
    assert np.abs(t).max() <= 1.0 + 1e-6
    inside = np.abs(z) <= 1.0
    assert np.array_equal(t[inside], z[inside])           # entries inside are kept
    assert np.array_equal(truncated_z_from_seed(5, 512, 0.5), t)
    assert not truncated_z_from_seed(5, 8, 0.0).any()
    assert np.allclose(truncated_z_from_seed(5, 8, 2.0), 2 * z_from_seed(5, 8))
    with pytest.raises(ValueError, match="truncation_psi"):
        truncated_z_from_seed(5, 8, 2.5)


def test_parse_seeds_counts_before_expanding():
    import tracemalloc
    with pytest.raises(ValueError, match="4294967296 seeds requested, the limit is 256"):
        parse_seeds("0-4294967295", limit=256)
    tracemalloc.start()
    with pytest.raises(ValueError):
        parse_seeds("0-1000000", limit=256)       # the old parser built it: ~36 MB
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 200_000
    assert parse_seeds("1,5,9-11", limit=5) == [1, 5, 9, 10, 11]


@pytest.mark.parametrize("text", ["²", "①", "1-٣", "99999999999999999999", "4294967296", "-3",
                                  "1-"])
def test_parse_seeds_refuses_non_ascii_digits_and_out_of_range(text):
    with pytest.raises(ValueError, match="seed"):
        parse_seeds(text)
