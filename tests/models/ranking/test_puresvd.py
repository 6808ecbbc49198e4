"""The ranking model's algebra, checked against plain numpy on small matrices."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse import csr_matrix

from songrec.models.errors import ModelError
from songrec.models.ranking import puresvd
from songrec.models.ranking.matrix import dislikes, listener_weights, rating_matrix
from songrec.models.ranking.puresvd import (
    RankingParams,
    fit_ranking,
    shrink_weights,
    truncated_svd,
)


def _random_matrix(seed: int, shape=(60, 40), density=0.2) -> csr_matrix:
    rng = np.random.default_rng(seed)
    dense = (rng.random(shape) < density) * rng.integers(1, 11, shape)
    return csr_matrix(dense.astype(float))


@pytest.mark.parametrize("dense_cells", [puresvd.DENSE_CELLS, 0])
def test_truncated_svd_matches_numpy(dense_cells, monkeypatch) -> None:
    # Both paths, the dense SVD and ARPACK (what a large matrix takes), agree with numpy.
    monkeypatch.setattr(puresvd, "DENSE_CELLS", dense_cells)
    matrix = _random_matrix(1, (300, 200), 0.05)
    values, vectors = truncated_svd(matrix, 5, seed=0)
    _, expected, vt = np.linalg.svd(matrix.toarray(), full_matrices=False)
    np.testing.assert_allclose(values, expected[:5], rtol=1e-6)
    # Singular vectors are defined up to sign: compare projections.
    np.testing.assert_allclose(vectors @ vectors.T, vt[:5].T @ vt[:5], atol=1e-6)


def test_score_is_the_formula_of_the_module_docstring() -> None:
    matrix = _random_matrix(2)
    params = RankingParams(k=6, gamma=1.0, alpha=0.3, beta=0.5, shrink=2.0)
    model = fit_ranking(matrix, params)
    counts = np.maximum(np.diff(matrix.tocsc().indptr), 1).astype(float)
    x = matrix.toarray() / counts[None, :] ** 0.3
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    v, s = vt[:6].T, s[:6]
    w = s**2 / (s**2 + 2.0 * s[0] ** 2 / 100)
    idx, weights = np.array([3, 7, 11]), np.array([1.0, 2.0, -1.5])
    row = np.zeros(matrix.shape[1])
    row[idx] = weights
    # The model keeps V diag(sqrt(w)) in float16 precision (documented): round the same way.
    vw = (v * np.sqrt(w)).astype(np.float16).astype(np.float64)
    expected = ((row / counts**0.3) @ vw) @ vw.T * counts**0.5
    np.testing.assert_allclose(model.score(idx, weights), expected, rtol=1e-4, atol=1e-6)
    many = model.score_many(csr_matrix(row[None, :]))
    np.testing.assert_allclose(many[0], expected, rtol=1e-4, atol=1e-6)
    # Contributions add up to the score.
    picks = np.array([0, 5, 9])
    parts = model.contributions(idx, weights, picks)
    np.testing.assert_allclose(parts.sum(axis=1), expected[picks], rtol=1e-4, atol=1e-6)


def test_shrink_weights_and_parameters() -> None:
    np.testing.assert_allclose(shrink_weights(np.array([10.0, 1.0]), 0.0), [1.0, 1.0])
    np.testing.assert_allclose(shrink_weights(np.array([10.0, 1.0]), 100.0), [0.5, 1 / 101])
    with pytest.raises(ModelError, match="bad ranking parameters"):
        RankingParams.from_dict({"k": 0, "gamma": 0, "alpha": 0, "beta": 0, "shrink": 0})
    with pytest.raises(ModelError, match="bad ranking parameters"):
        RankingParams.from_dict({"k": 5, "gamma": "x", "alpha": 0, "beta": 0, "shrink": 0})
    with pytest.raises(ModelError, match="no ratings"):
        fit_ranking(csr_matrix((3, 4)), RankingParams())


def test_rating_matrix_entries_and_unknown_songs() -> None:
    ratings = pd.DataFrame(
        {
            "user_name": ["b", "a", "a", "c"],
            "song_id": ["s2", "s1", "zz", "s1"],
            "rating": [4, 9, 5, 1],
        }
    )
    matrix, users = rating_matrix(ratings, pd.Index(["s1", "s2"]), gamma=0.5)
    assert list(users) == ["a", "b", "c"]
    np.testing.assert_allclose(matrix.toarray(), [[3.0, 0.0], [0.0, 2.0], [1.0, 0.0]])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 10), min_size=1, max_size=30), st.sampled_from([0.0, 0.5, 1.0]))
def test_listener_weights_follow_the_dislike_rule(ratings, gamma) -> None:
    values = np.array(ratings, dtype=float)
    weights = listener_weights(values, gamma)
    disliked = dislikes(values)
    median = np.median(values)
    for rating, weight, is_disliked in zip(values, weights, disliked, strict=True):
        # The rule, restated: low and far below the listener's own median.
        assert is_disliked == (rating <= 4 and rating <= median - 5)
        assert (weight < 0) == is_disliked
        if not is_disliked:
            assert weight == pytest.approx(rating**gamma)
    # Listeners whose ratings are play counts (most low) keep every song as liked.
    if median <= 5:
        assert not disliked.any()


def test_five_loved_and_two_hated_songs() -> None:
    weights = listener_weights(np.array([10, 10, 10, 10, 10, 2, 2], dtype=float), 1.0)
    np.testing.assert_allclose(weights, [10, 10, 10, 10, 10, -10, -10])
