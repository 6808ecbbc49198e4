"""Blocked, float32, sparse-mask validation against a plain dense float64 computation."""

from __future__ import annotations

from itertools import product

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse import csr_matrix

from songrec.models.evaluation.metrics import ndcg_from_hits
from songrec.models.evaluation.splits import random_holdout
from songrec.models.ranking import validate
from songrec.models.ranking.matrix import rating_matrix
from songrec.models.ranking.puresvd import scaled_matrix, shrink_weights, truncated_svd
from songrec.models.ranking.validate import (
    BLOCK_CELLS,
    CURVE_COLUMNS,
    best_params,
    block_size,
    listener_rows,
    parse_grid,
    split,
    validation_curve,
)

SMALL_GRID = {
    "gamma": [0.0, 1.0],
    "alpha": [0.0, 0.3],
    "beta_offset": [0.0, 0.2],
    "k": [2, 4, 50],  # 50: more than these matrices' rank, so k is capped and rows repeat
    "shrink": [0.0, 2.0],
}
# float32 scores are off by about 1e-7 of the scores' scale; two songs whose float64 scores
# are this close (relative to that scale) may swap places, so their order is not compared.
NEAR_TIE = 1e-4


def _dense_hidden(ratings: pd.DataFrame, data, song_index: pd.Index, seed: int) -> np.ndarray:
    """The validation listeners' hidden songs as a dense bool mask, rebuilt from the split."""
    test = random_holdout(ratings, seed=seed).test
    test = test[test["user_name"].isin(data.users)]
    rows = data.users.get_indexer(test["user_name"])
    cols = song_index.get_indexer(test["song_id"])
    hidden = np.zeros((len(data.users), len(song_index)), dtype=bool)
    hidden[rows[cols >= 0], cols[cols >= 0]] = True
    return hidden


def _near_tied(scores: np.ndarray, hidden: np.ndarray, k: int, tol: np.ndarray) -> np.ndarray:
    """Per listener: could rounding change which hidden songs the top k holds, or where?

    Songs sorted by score fall into runs whose neighbours are within `tol`; a run that
    reaches into the top k and mixes hidden and other songs can reorder into other hits.
    """
    flagged = np.zeros(len(scores), dtype=bool)
    for i, (row, relevant) in enumerate(zip(scores, hidden, strict=True)):
        order = np.argsort(-row, kind="stable")
        ranked = np.where(np.isinf(row[order]), -1e300, row[order])  # seen songs tie
        run = np.concatenate([[0], np.cumsum(-np.diff(ranked) > tol[i])])
        for member in np.unique(run[:k]):
            in_run = relevant[order][run == member]
            flagged[i] |= bool(in_run.any() and not in_run.all())
    return flagged


def _reference_curve(
    ratings: pd.DataFrame, song_index: pd.Index, grid: dict, seed: int, k_eval: int
) -> pd.DataFrame:
    """The curve computed densely in float64, with a full sort, and each row's `slack`: the
    share of scored listeners whose top k a near-tie could change (see _near_tied)."""
    grid = parse_grid(grid)
    data = split(ratings, song_index, seed)
    if data is None:
        return pd.DataFrame(columns=[*CURVE_COLUMNS, "slack"])
    hidden = _dense_hidden(ratings, data, song_index, seed)
    relevant = hidden.sum(axis=1)
    k_eval = min(k_eval, len(song_index) - 1)
    rows = []
    for gamma, alpha in product(grid["gamma"], grid["alpha"]):
        matrix, _ = rating_matrix(data.train, song_index, gamma)
        listeners = np.diff(matrix.tocsc().indptr).astype(np.float64)
        counts = np.maximum(listeners, 1.0)
        values, vectors = truncated_svd(
            scaled_matrix(matrix, listeners, alpha), max(grid["k"]), seed
        )
        listener = listener_rows(data.visible, data.users, song_index, gamma).toarray()
        embedded = (listener * counts**-alpha) @ vectors
        for k, shrink, offset in product(
            sorted(set(grid["k"])), grid["shrink"], grid["beta_offset"]
        ):
            k_used = min(k, len(values))
            left = embedded[:, :k_used] * shrink_weights(values[:k_used], shrink)
            scale = counts ** (alpha + offset)
            scores = np.where(listener != 0, -np.inf, (left @ vectors[:, :k_used].T) * scale)
            top = np.argsort(-scores, axis=1, kind="stable")[:, :k_eval]
            # A bound on every score's size, hence on its rounding error (Cauchy-Schwarz).
            bound = np.linalg.norm(left, axis=1) * np.max(
                np.linalg.norm(vectors[:, :k_used], axis=1) * scale
            )
            tied = _near_tied(scores, hidden, k_eval, NEAR_TIE * bound + 1e-12)
            rows.append(
                {
                    "transform": "-",
                    "gamma": gamma,
                    "alpha": alpha,
                    "beta": round(alpha + offset, 6),
                    "k": k_used,
                    "shrink": shrink,
                    "ndcg": ndcg_from_hits(np.take_along_axis(hidden, top, axis=1), relevant),
                    "slack": tied[relevant > 0].sum() / max((relevant > 0).sum(), 1),
                }
            )
    curve = pd.DataFrame(rows, columns=[*CURVE_COLUMNS, "slack"])
    return curve.drop_duplicates(subset=CURVE_COLUMNS[:-1], keep="first")


def _assert_same_curve(curve: pd.DataFrame, reference: pd.DataFrame) -> None:
    """Same rows in the same order; NDCG within 1e-6, or by as much as near-ties allow."""
    assert list(curve.columns) == CURVE_COLUMNS
    keys = CURVE_COLUMNS[:-1]
    pd.testing.assert_frame_equal(
        curve[keys].reset_index(drop=True),
        reference[keys].reset_index(drop=True),
        check_dtype=False,
    )
    got, expected = curve["ndcg"].to_numpy(float), reference["ndcg"].to_numpy(float)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    allowed = 1e-6 + reference["slack"].to_numpy(float)
    assert (np.abs(got - expected)[~np.isnan(expected)] <= allowed[~np.isnan(expected)]).all()


@st.composite
def _ratings(draw) -> tuple[pd.DataFrame, pd.Index]:
    """Small random ratings (1..10), a catalogue with a few unrated songs in shuffled order,
    and sometimes ratings of a song outside the catalogue."""
    n_users, n_songs = draw(st.integers(10, 30)), draw(st.integers(6, 30))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    played = rng.random((n_users, n_songs)) < draw(st.floats(0.3, 0.9))
    users, songs = np.nonzero(played)
    ratings = pd.DataFrame(
        {
            "user_name": [f"u{u:02d}" for u in users],
            "song_id": [f"s{s:02d}" for s in songs],
            "rating": rng.integers(1, 11, len(users)),
        }
    )
    if draw(st.booleans()):
        stray = pd.DataFrame({"user_name": ["u00", "u01"], "song_id": "zz", "rating": 5})
        ratings = pd.concat([ratings, stray], ignore_index=True)
    catalogue = [f"s{s:02d}" for s in range(n_songs + draw(st.integers(0, 3)))]
    return ratings, pd.Index(rng.permutation(catalogue))


@settings(max_examples=40, deadline=None)
@given(_ratings(), st.sampled_from([1, 3, 10]), st.integers(0, 3))
def test_blocked_curve_matches_the_dense_reference(generated, k_eval, seed) -> None:
    ratings, song_index = generated
    reference = _reference_curve(ratings, song_index, SMALL_GRID, seed, k_eval)
    data = split(ratings, song_index, seed)
    if data is not None:
        dense = _dense_hidden(ratings, data, song_index, seed)
        np.testing.assert_array_equal(data.hidden.toarray(), dense)
    n_songs = len(song_index)
    # 1 listener, 2 and 3 at a time, every listener in one block, and the default budget.
    for cells in (1, 2 * n_songs, 3 * n_songs + 1, 10**9, BLOCK_CELLS):
        curve = validation_curve(
            ratings, song_index, SMALL_GRID, seed, k_eval=k_eval, block_cells=cells
        )
        _assert_same_curve(curve, reference)


def test_planted_taste_curve_and_choice_match_the_dense_reference(taste_factory) -> None:
    # Default grid, 80 validation listeners in blocks of 7: same NDCG and the same choice.
    # Some scores here are near-ties (within 1e-6 of their scale), yet float32 ranks them as
    # float64 does (the NDCG differences were exactly 0 when written): the 1e-6 is strict.
    ratings, songs, _ = taste_factory(groups=4, users_per_group=100, songs_per_group=60)
    index = pd.Index(songs["song_id"])
    reference = _reference_curve(ratings, index, {}, 42, 10)
    curve = validation_curve(ratings, index, None, 42, block_cells=7 * len(index))
    assert len(split(ratings, index, 42).users) == 80
    np.testing.assert_allclose(curve["ndcg"], reference["ndcg"], rtol=0, atol=1e-6)
    assert best_params(curve) == best_params(reference.drop(columns="slack"))


@pytest.mark.parametrize("n_songs", [1, 1_000, 352_000, 1_000_000, 20_000_000])
def test_block_cells_stay_within_the_budget(n_songs) -> None:
    block = block_size(500, n_songs)
    assert 1 <= block <= 500
    # One listener at least, however large the catalogue; otherwise within the budget.
    assert block == 1 or block * n_songs <= BLOCK_CELLS
    if n_songs == 1_000_000:
        assert block == 16  # 16M float32 scores: 64 MB a block instead of 4 GB dense
    assert block_size(3, 10) == 3 and block_size(500, 10, cells=1) == 1


def test_scores_only_blocks_in_float32_with_sparse_masks(taste, monkeypatch) -> None:
    ratings, songs, _ = taste
    index = pd.Index(songs["song_id"])
    shapes = []

    def spy(scores: np.ndarray, seen, k: int) -> np.ndarray:
        shapes.append((scores.shape, scores.dtype, type(seen)))
        return real(scores, seen, k)

    real = validate._top_k
    monkeypatch.setattr(validate, "_top_k", spy)
    budget = 5 * len(index)
    validation_curve(ratings, index, {"gamma": [0], "alpha": [0.2]}, 42, block_cells=budget)
    listeners = len(split(ratings, index, 42).users)
    assert sum(shape[0] for shape, _, _ in shapes) == listeners * 45  # 45 grid points
    for shape, dtype, seen_type in shapes:
        assert shape[0] * shape[1] <= budget and dtype == np.float32
        assert issubclass(seen_type, csr_matrix)
    assert isinstance(split(ratings, index, 42).hidden, csr_matrix)
