"""The recommenders compared by `evaluate`, each scoring every catalog song for new listeners.

The test listeners are never in training: every model is fitted on the other listeners
and then given each test listener's visible rows, as the page serves a new visitor.
Every model returns a `Scored`: a test listeners x catalog matrix of scores (-inf where
it cannot rank a song) and, when it predicts ratings, a prediction for each hidden pair.
- most popular: songs ranked by how many training listeners rated them;
- ranker: the served ranking model (models.ranking), parameters validated on training
  listeners exactly as `songrec train` does, listeners scored as the page scores them;
- rank by rating: Surprise SVD on the other listeners, each test listener folded in
  (models.rating.foldin), songs ranked by predicted rating (the reference's order);
- ALS: implicit-feedback ALS on BM25-weighted plays, test listeners solved against the
  fixed songs (implicit's recalculate_user);
- item-kNN: cosine similarity of songs' listener sets, a listener's score is the sum of
  similarities to their songs;
- EASE (Steck 2019): the closed-form item-item ridge model with a zero diagonal.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix

from songrec.models.data import RATING_MAX, RATING_MIN
from songrec.models.evaluation.als import fit_als, foldin_als
from songrec.models.evaluation.splits import Holdout
from songrec.models.ranking.train import train_ranking
from songrec.models.ranking.validate import listener_rows
from songrec.models.rating.foldin import fold_in, one_blas_thread
from songrec.models.rating.svd import fit_svd, svd_params
from songrec.models.rating.trainset import trainset_from_frame


@dataclass(frozen=True)
class Targets:
    """What one split asks of every model: its test users, catalog, and what they showed."""

    users: pd.Index  # test users, sorted
    catalog: pd.Index  # every song in the training rows, sorted
    visible: pd.DataFrame  # the test users' training rows
    hidden: pd.DataFrame  # the test users' hidden rows

    @classmethod
    def new_listeners(cls, holdout: Holdout) -> Targets:
        """The split's test users as new listeners: the catalog is the other users' songs."""
        others = holdout.train_users_only()
        return cls(
            users=pd.Index(holdout.test_users),
            catalog=pd.Index(np.sort(others["song_id"].unique())),
            visible=holdout.visible(),
            hidden=holdout.test,
        )


@dataclass(frozen=True)
class Scored:
    """One model's output on one split."""

    scores: np.ndarray  # len(users) x len(catalog), -inf where the model cannot rank
    predictions: pd.DataFrame | None  # hidden pairs with a predicted rating, if it rates
    top: pd.DataFrame | None  # the model's own top-k lists, when it makes them itself
    seconds: float


@dataclass(frozen=True)
class _Factors:
    """A biased matrix-factorization model laid out on the catalog and the test users."""

    global_mean: float
    item_bias: np.ndarray  # per catalog song, NaN where unknown to the model
    item_factors: np.ndarray  # per catalog song, zeros where unknown
    user_bias: np.ndarray  # per test user
    user_factors: np.ndarray  # per test user


def _scored(model: _Factors, targets: Targets, seconds: float) -> Scored:
    known = ~np.isnan(model.item_bias)
    scores = (
        model.global_mean
        + model.user_bias[:, None]
        + np.where(known, model.item_bias, 0.0)[None, :]
        + model.user_factors @ model.item_factors.T
    )
    scores[:, ~known] = -np.inf
    # Surprise's rule for a pair it cannot fully score: mean + the biases it knows.
    hidden = targets.hidden
    rows = targets.users.get_indexer(hidden["user_name"])
    cols = targets.catalog.get_indexer(hidden["song_id"])
    in_catalog = cols >= 0
    safe_cols = np.where(in_catalog, cols, 0)
    full = in_catalog & known[safe_cols]
    estimate = model.global_mean + model.user_bias[rows]
    estimate = estimate + np.where(full, scores[rows, safe_cols] - estimate, 0.0)
    predictions = hidden[["user_name", "song_id"]].assign(
        prediction=np.clip(estimate, RATING_MIN, RATING_MAX)
    )
    return Scored(scores=scores, predictions=predictions, top=None, seconds=seconds)


def _item_arrays(algo, trainset, catalog: pd.Index) -> tuple[np.ndarray, np.ndarray]:
    """Surprise's item biases and factors reordered to the catalog (unknown: NaN / 0)."""
    raw_to_inner = {trainset.to_raw_iid(i): i for i in trainset.all_items()}
    inner = np.array([raw_to_inner.get(s, -1) for s in catalog], dtype=np.int64)
    known = inner >= 0
    bias = np.full(len(catalog), np.nan)
    bias[known] = algo.bi[inner[known]]
    factors = np.zeros((len(catalog), algo.qi.shape[1]))
    factors[known] = algo.qi[inner[known]]
    return bias, factors


def most_popular(targets: Targets, train: pd.DataFrame) -> Scored:
    """Songs ranked by the number of training users who rated them, the same for everyone."""
    started = time.perf_counter()
    listeners = train.groupby("song_id").size().reindex(targets.catalog, fill_value=0)
    scores = np.tile(listeners.to_numpy(dtype=float), (len(targets.users), 1))
    return Scored(scores, None, None, time.perf_counter() - started)


def svd_foldin(
    targets: Targets, train_others: pd.DataFrame, visible: pd.DataFrame, params: dict, seed: int
) -> Scored:
    """SVD on the other users only, each test user folded in from their visible ratings."""
    started = time.perf_counter()
    trainset = trainset_from_frame(train_others)
    algo = fit_svd(trainset, params, seed)
    bias, factors = _item_arrays(algo, trainset, targets.catalog)
    reg = svd_params(params)["reg_all"]
    user_bias = np.zeros(len(targets.users))
    user_factors = np.zeros((len(targets.users), factors.shape[1]))
    # Only the visible songs the fitted model knows can inform the fold-in.
    cols = targets.catalog.get_indexer(visible["song_id"])
    usable = cols >= 0
    usable[usable] = ~np.isnan(bias[cols[usable]])
    rows = targets.users.get_indexer(visible["user_name"])[usable]
    cols, values = cols[usable], visible["rating"].to_numpy()[usable]
    item_bias = np.nan_to_num(bias)
    for row, mine in pd.Series(rows).groupby(rows).indices.items():
        user_bias[row], user_factors[row] = fold_in(
            factors, item_bias, trainset.global_mean, cols[mine], values[mine], reg
        )
    model = _Factors(trainset.global_mean, bias, factors, user_bias, user_factors)
    return _scored(model, targets, time.perf_counter() - started)


def _binary(frame: pd.DataFrame, users: pd.Index, catalog: pd.Index) -> csr_matrix:
    """users x catalog matrix, 1 where the user rated the song (off-catalog songs left out)."""
    rows, cols = users.get_indexer(frame["user_name"]), catalog.get_indexer(frame["song_id"])
    keep = (rows >= 0) & (cols >= 0)
    ones = np.ones(int(keep.sum()), dtype=np.float32)
    matrix = csr_matrix((ones, (rows[keep], cols[keep])), shape=(len(users), len(catalog)))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def _training(targets: Targets, others: pd.DataFrame) -> csr_matrix:
    return _binary(others, pd.Index(np.sort(others["user_name"].unique())), targets.catalog)


def _item_item(targets: Targets, weights: np.ndarray, seconds: float) -> Scored:
    visible = _binary(targets.visible, targets.users, targets.catalog)
    return Scored(np.asarray(visible @ weights), None, None, seconds)


def ranker(
    targets: Targets, others: pd.DataFrame, songs: pd.DataFrame, grid: dict | None, seed: int
) -> Scored:
    """The served ranking model: validated and fitted on the other listeners' ratings."""
    started = time.perf_counter()
    catalog_songs = songs.set_index("song_id").loc[targets.catalog].reset_index()
    model = train_ranking(others, catalog_songs, None, grid, seed).model
    rows = listener_rows(targets.visible, targets.users, targets.catalog, model.params.gamma)
    with one_blas_thread():
        scores = model.score_many(rows).astype(np.float64)
    return Scored(scores, None, None, time.perf_counter() - started)


def item_knn(targets: Targets, others: pd.DataFrame) -> Scored:
    """Item-kNN: cosine of songs' listener sets, summed over the listener's songs."""
    started = time.perf_counter()
    matrix = _training(targets, others)
    co = np.asarray((matrix.T @ matrix).todense(), dtype=np.float32)
    norms = np.sqrt(np.maximum(np.diag(co), 1e-12))
    co /= norms[:, None]
    co /= norms[None, :]
    np.fill_diagonal(co, 0.0)
    return _item_item(targets, co, time.perf_counter() - started)


def ease(targets: Targets, others: pd.DataFrame, lam: float) -> Scored:
    """EASE: B = I - P diagMat(1/diag(P)) with P = (XᵀX + λI)⁻¹, so diag(B) = 0."""
    started = time.perf_counter()
    matrix = _training(targets, others)
    gram = np.asarray((matrix.T @ matrix).todense(), dtype=np.float64)
    gram[np.diag_indices_from(gram)] += lam
    inverse = np.linalg.inv(gram)
    weights = -inverse / np.diag(inverse)[None, :]
    np.fill_diagonal(weights, 0.0)
    return _item_item(targets, weights.astype(np.float32), time.perf_counter() - started)


def als(
    targets: Targets, others: pd.DataFrame, visible: pd.DataFrame, params: dict, seed: int
) -> Scored:
    """ALS on BM25-weighted plays of the other listeners; test listeners solved from theirs."""
    started = time.perf_counter()
    model = fit_als(others, seed=seed, **params)
    cols = targets.catalog.get_indexer(model.items)
    scores = np.full((len(targets.users), len(targets.catalog)), -np.inf)
    user_factors = foldin_als(model, visible, targets.users)
    scores[:, cols[cols >= 0]] = (user_factors @ model.item_factors.T)[:, cols >= 0]
    return Scored(scores, None, None, time.perf_counter() - started)
