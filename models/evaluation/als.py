"""Implicit-feedback ALS on BM25-weighted play counts (the `implicit` library).

The model the HetRec reference used: play counts weighted by BM25 over the song x user
matrix (as implicit's own last.fm example does), then alternating least squares with 100
factors, 30 iterations, regularization 0.01. It ranks songs; it predicts no rating.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from implicit.als import AlternatingLeastSquares
from implicit.nearest_neighbours import bm25_weight
from scipy.sparse import csr_matrix, vstack

from songrec.models.errors import ModelError
from songrec.models.rating.foldin import one_blas_thread

log = logging.getLogger(__name__)

ALS_DEFAULTS = {"factors": 100, "iterations": 30, "regularization": 0.01}
BM25_K1, BM25_B = 100, 0.8


@dataclass(frozen=True)
class AlsModel:
    """Fitted ALS factors with the user and song ids of their rows."""

    users: pd.Index
    items: pd.Index
    user_factors: np.ndarray
    item_factors: np.ndarray
    user_items: csr_matrix
    algo: AlternatingLeastSquares

    def rows(self, users: Sequence[str]) -> np.ndarray:
        """Row numbers of the given user names (a ModelError for an unknown one)."""
        rows = self.users.get_indexer(pd.Index(users))
        if (rows < 0).any():
            missing = [u for u, r in zip(users, rows, strict=True) if r < 0][:3]
            raise ModelError(f"ALS has no user {', '.join(map(str, missing))}")
        return rows


def play_matrix(plays: pd.DataFrame) -> tuple[csr_matrix, pd.Index, pd.Index]:
    """A users x songs CSR matrix of play counts, with its user and song ids."""
    user_codes, users = pd.factorize(plays["user_name"], sort=True)
    item_codes, items = pd.factorize(plays["song_id"], sort=True)
    values = plays["plays"].to_numpy(dtype=np.float32)
    matrix = csr_matrix((values, (user_codes, item_codes)), shape=(len(users), len(items)))
    matrix.sum_duplicates()
    return matrix, pd.Index(users), pd.Index(items)


def fit_als(
    plays: pd.DataFrame,
    factors: int = ALS_DEFAULTS["factors"],
    iterations: int = ALS_DEFAULTS["iterations"],
    regularization: float = ALS_DEFAULTS["regularization"],
    seed: int | None = 42,
) -> AlsModel:
    """Fit ALS on (user_name, song_id, plays) rows, BM25-weighted."""
    if plays.empty:
        raise ModelError("no plays to fit ALS on")
    user_items, users, items = play_matrix(plays)
    # BM25 over songs x users: each song's column of listeners is the "document".
    weighted = bm25_weight(user_items.T.tocsr(), K1=BM25_K1, B=BM25_B).T.tocsr()
    # implicit's advice (checked when the model is built): a multi-threaded BLAS inside its
    # own threads slows ALS down a lot.
    with one_blas_thread():
        algo = AlternatingLeastSquares(
            factors=factors,
            iterations=iterations,
            regularization=regularization,
            random_state=seed,
            use_gpu=False,
        )
        algo.fit(weighted.astype(np.float32), show_progress=False)
    log.info(
        "ALS fitted: %d users x %d songs, %d factors, %d iterations",
        len(users),
        len(items),
        factors,
        iterations,
    )
    return AlsModel(
        users=users,
        items=items,
        user_factors=np.asarray(algo.user_factors),
        item_factors=np.asarray(algo.item_factors),
        user_items=user_items,
        algo=algo,
    )


def recommend_als(model: AlsModel, users: Sequence[str], n: int = 10) -> pd.DataFrame:
    """Top `n` unplayed songs per user: (user_name, song_id, prediction) rows."""
    rows = model.rows(users)
    n = min(n, len(model.items))
    with one_blas_thread():
        ids, scores = model.algo.recommend(
            rows, model.user_items[rows], N=n, filter_already_liked_items=True
        )
    ids, scores = np.atleast_2d(ids), np.atleast_2d(scores)
    keep = ids.ravel() >= 0  # implicit pads with -1 when fewer songs are left
    return pd.DataFrame(
        {
            "user_name": np.repeat(np.asarray(users, dtype=object), ids.shape[1])[keep],
            "song_id": model.items.to_numpy()[ids.ravel()[keep]],
            "prediction": scores.ravel()[keep].astype(float),
        }
    )


def score_als(model: AlsModel, users: Sequence[str]) -> np.ndarray:
    """Scores of every song (columns in `model.items` order) for each of `users`."""
    return model.user_factors[model.rows(users)] @ model.item_factors.T


def foldin_als(model: AlsModel, plays: pd.DataFrame, users: pd.Index) -> np.ndarray:
    """Factors of listeners not in training, solved from their plays against fixed songs.

    Their plays are BM25-weighted beside the training matrix (the weights read column and
    row totals, so the new rows are weighted as a training row would be), then implicit's
    recalculate_user solves each listener's least squares.
    """
    cols = model.items.get_indexer(plays["song_id"])
    rows = users.get_indexer(plays["user_name"])
    keep = (cols >= 0) & (rows >= 0)
    values = plays["plays"].to_numpy(dtype=np.float32)[keep]
    new = csr_matrix((values, (rows[keep], cols[keep])), shape=(len(users), len(model.items)))
    stacked = vstack([model.user_items, new], format="csr")
    weighted = bm25_weight(stacked.T.tocsr(), K1=BM25_K1, B=BM25_B).T.tocsr()
    new_weighted = weighted[model.user_items.shape[0] :].astype(np.float32)
    with one_blas_thread():
        factors = model.algo.recalculate_user(np.arange(len(users)), new_weighted)
    return np.asarray(factors).reshape(len(users), -1)
