import pytest

from ganserve.families import W_SPACE_GRAPHS, Family, family, register_family, supporting


def test_shipped_families_describe_their_graphs_and_capabilities():
    assert family("dcgan").capabilities == ["sample", "interpolate"]
    assert family("cgan").capabilities == ["sample", "conditional", "interpolate"]
    assert family("stylegan").capabilities == ["sample", "interpolate", "style-mix"]
    assert family("stylegan").graphs == ("mapping", "synthesis")
    assert supporting("conditional") == ["cgan"] and supporting("style-mix") == ["stylegan"]


def test_unknown_family_names_the_known_ones():
    with pytest.raises(ValueError, match="known: cgan, dcgan, "):
        family("biggan")


def test_a_description_must_match_its_graph_layout():
    with pytest.raises(ValueError, match="w_space=True means graphs"):
        Family("bad", w_space=True)
    with pytest.raises(ValueError, match="w_space=False means graphs"):
        Family("bad", W_SPACE_GRAPHS)


def test_a_taken_name_cannot_be_redefined():
    register_family(Family("dcgan", description=family("dcgan").description))   # same: no-op
    with pytest.raises(ValueError, match="already registered"):
        register_family(Family("dcgan", conditional=True))
