"""Named latent directions and edits along them (ganserve.latent_directions)."""

import numpy as np
import pytest

from ganserve.latent_directions import SCHEMA, DirectionError, Directions


def _data(space="w", class_space="w") -> dict:
    means = [[-1.0, 0.0], [1.0, 0.0], [0.0, 2.0]]
    classes = {"space": class_space, "names": ["a", "b", "c"], "flip": {"a->b": 0.9}}
    if class_space != "class":       # identity covariance: inv(cov) mean is the mean
        classes.update(means=means, whitened_means=means)
    return {"schema": SCHEMA, "space": space, "dim": 2,
            "principal": [{"name": "pc0", "vector": [2.0, 0.0],
                           "explained_variance_ratio": 0.8}],
            "classes": classes}


def test_class_pairs_go_from_mean_to_mean_along_the_boundary_normal():
    d = Directions(_data())
    assert d.names()[:1] == ["pc0"] and len(d.names()) == 1 + 6
    np.testing.assert_allclose(d.get("a->b").vector, [2.0, 0.0])
    np.testing.assert_allclose(d.get("b->a").vector, [-2.0, 0.0])
    np.testing.assert_allclose(d.get("a->c").vector, [1.0, 2.0], rtol=1e-6)
    assert d.get("a->b").info == {"from": "a", "to": "b", "flip": 0.9}


def test_apply_adds_amounts_and_keeps_class_weights_a_mixture():
    d = Directions(_data(space="z", class_space="class"))
    latent, weights = d.apply(np.zeros((1, 2)), np.array([[1.0, 0.0, 0.0]]),
                              {"pc0": 1.5, "a->b": 0.25})
    np.testing.assert_allclose(latent, [[3.0, 0.0]])
    np.testing.assert_allclose(weights, [[0.75, 0.25, 0.0]])
    _, far = d.apply(np.zeros((1, 2)), np.array([[1.0, 0.0, 0.0]]), {"a->b": 3.0})
    np.testing.assert_allclose(far, [[0.0, 1.0, 0.0]])          # clipped, renormalized
    _, back = d.apply(np.zeros((1, 2)), np.array([[1.0, 0.0, 0.0]]), {"a->b": -1.0})
    np.testing.assert_allclose(back, [[1.0, 0.0, 0.0]])


def test_unknown_names_and_missing_weights_are_errors():
    d = Directions(_data(class_space="class"))
    with pytest.raises(DirectionError):
        d.get("pc9")
    with pytest.raises(DirectionError, match="class weights"):
        d.apply(np.zeros((1, 2)), None, {"a->b": 1.0})
    with pytest.raises(DirectionError, match="schema"):
        Directions({**_data(), "schema": 99})
