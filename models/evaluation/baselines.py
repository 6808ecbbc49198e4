"""The recommenders compared by `evaluate`, each scoring every training song for the test users.

Every model returns a `Scored`: a test users x catalog matrix of scores (-inf where the model
cannot rank a song), and, when it predicts ratings, a prediction for each hidden pair.
- most popular: songs ranked by how many training users rated them;
- SVD (the reference's way): Surprise SVD fitted on all training ratings, the test users'
  visible ratings included, songs ranked by predicted rating;
- SVD fold-in: SVD fitted on the other users only; each test user's bias and factors are
  then solved from their visible ratings against the fixed songs (models.rating.foldin);
- ALS: implicit-feedback ALS on BM25-weighted plays, recommending with played songs filtered.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.data import RATING_MAX, RATING_MIN
from models.evaluation.als import fit_als, recommend_als, score_als
from models.rating.foldin import fold_in
from models.rating.svd import fit_svd, svd_params
from models.rating.trainset import trainset_from_frame


@dataclass(frozen=True)
class Targets:
    """What one split asks of every model: its test users, catalog, and what they showed."""

    users: pd.Index  # test users, sorted
    catalog: pd.Index  # every song in the training rows, sorted
    visible: pd.DataFrame  # the test users' training rows
    hidden: pd.DataFrame  # the test users' hidden rows


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


def svd_ranked(targets: Targets, train: pd.DataFrame, params: dict, seed: int) -> Scored:
    """Surprise SVD on every training rating (visible ones included), ranked by prediction."""
    started = time.perf_counter()
    trainset = trainset_from_frame(train)
    algo = fit_svd(trainset, params, seed)
    bias, factors = _item_arrays(algo, trainset, targets.catalog)
    users = np.array([trainset.to_inner_uid(u) for u in targets.users])
    model = _Factors(trainset.global_mean, bias, factors, algo.bu[users], algo.pu[users])
    return _scored(model, targets, time.perf_counter() - started)


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


def als(targets: Targets, train_plays: pd.DataFrame, params: dict, k: int, seed: int) -> Scored:
    """ALS on BM25-weighted training plays; top-k from implicit with played songs filtered."""
    started = time.perf_counter()
    model = fit_als(train_plays, seed=seed, **params)
    users = targets.users.tolist()
    top = recommend_als(model, users, n=k)
    scores = np.full((len(users), len(targets.catalog)), -np.inf)
    cols = targets.catalog.get_indexer(model.items)
    scores[:, cols[cols >= 0]] = score_als(model, users)[:, cols >= 0]
    return Scored(scores, None, top, time.perf_counter() - started)
