"""Choose the ranking model's parameters by held-out validation on training listeners only.

A fifth of the training listeners (those with at least 5 ratings, at most MAX_LISTENERS of
them) become validation listeners: the model is fitted without them, each shows 80% of
their songs, and NDCG@10 of the other 20% scores every combination of the grid. One SVD
per (gamma, alpha) at the largest k serves every smaller k, shrink and beta (a truncated
SVD's first k directions are the rank-k SVD), so the whole grid costs a few SVDs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import product

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix

from songrec.models.errors import ModelError
from songrec.models.evaluation.metrics import DEFAULT_K, ndcg_from_hits
from songrec.models.evaluation.splits import random_holdout
from songrec.models.ranking.matrix import listener_weights, rating_matrix
from songrec.models.ranking.puresvd import (
    RankingParams,
    scaled_matrix,
    shrink_weights,
    truncated_svd,
)

log = logging.getLogger(__name__)

DEFAULT_GRID = {
    "gamma": [0.0, 0.5, 1.0],
    "alpha": [0.0, 0.15, 0.3],
    "beta_offset": [0.0, 0.1, 0.2],
    # 200 at most: 10k songs x 200 in float16 is 4 MB, which keeps the whole model folder
    # (with the rating model and the kept ratings) under 15 MB.
    "k": [25, 50, 100, 150, 200],
    "shrink": [0.0, 1.0, 4.0],
}
GRID_KEYS = tuple(DEFAULT_GRID)
MAX_LISTENERS = 500
# best_params takes the smallest k whose NDCG is within this share of the best. At 1% it
# chose k=25 on the sample and lost 0.003 NDCG to EASE on held-out listeners; k=100-200
# beat EASE on both splits: the tolerance only breaks near-ties.
TOLERANCE = 0.0025
CURVE_COLUMNS = ["transform", "gamma", "alpha", "beta", "k", "shrink", "ndcg"]
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class Validation:
    """Validation listeners' visible rows as weights, and their hidden songs."""

    train: pd.DataFrame
    visible: pd.DataFrame
    hidden: np.ndarray  # validation listeners x songs, bool
    users: pd.Index


def parse_grid(grid: dict | None) -> dict[str, list]:
    """The ranking grid with defaults filled in; ModelError on an unknown key or bad value."""
    merged = {key: list(values) for key, values in DEFAULT_GRID.items()}
    for key, values in (grid or {}).items():
        if key not in DEFAULT_GRID:
            raise ModelError(
                f"unknown ranking grid key {key!r}; choose from {', '.join(GRID_KEYS)}"
            )
        values = values if isinstance(values, list) else [values]
        try:
            parsed = [int(v) if key == "k" else float(v) for v in values]
        except (TypeError, ValueError):
            raise ModelError(f"ranking grid {key}: {values!r} are not numbers") from None
        if not parsed or (key == "k" and min(parsed) < 1):
            raise ModelError(f"ranking grid {key}: {values!r} is empty or out of range")
        merged[key] = parsed
    return merged


def split(ratings: pd.DataFrame, song_index: pd.Index, seed: int) -> Validation | None:
    """The validation split of training ratings, or None when too few listeners qualify."""
    try:
        holdout = random_holdout(ratings, seed=seed)
    except ModelError:
        return None
    users = pd.Index(holdout.test_users)
    if len(users) > MAX_LISTENERS:
        keep = np.random.default_rng(seed).choice(len(users), MAX_LISTENERS, replace=False)
        users = pd.Index(np.sort(users.to_numpy()[keep]))
    train = holdout.train_users_only()
    if train["user_name"].nunique() < 2:
        return None
    hidden = np.zeros((len(users), len(song_index)), dtype=bool)
    test = holdout.test[holdout.test["user_name"].isin(users)]
    rows, cols = users.get_indexer(test["user_name"]), song_index.get_indexer(test["song_id"])
    hidden[rows[cols >= 0], cols[cols >= 0]] = True
    visible = holdout.visible()
    return Validation(train, visible[visible["user_name"].isin(users)], hidden, users)


def listener_rows(
    visible: pd.DataFrame, users: pd.Index, song_index: pd.Index, gamma: float
) -> csr_matrix:
    """Each listener's signed row, built exactly as a served listener's is."""
    rows, cols, values = [], [], []
    codes = users.get_indexer(visible["user_name"])
    song_cols = song_index.get_indexer(visible["song_id"])
    ratings = visible["rating"].to_numpy()
    for row, members in pd.Series(codes).groupby(codes).indices.items():
        members = members[song_cols[members] >= 0]
        rows.append(np.full(len(members), row))
        cols.append(song_cols[members])
        values.append(listener_weights(ratings[members], gamma))
    shape = (len(users), len(song_index))
    if not rows:
        return csr_matrix(shape)
    return csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=shape
    )


def _ndcg(scores: np.ndarray, seen: np.ndarray, hidden: np.ndarray, k: int) -> float:
    scores = np.where(seen, -np.inf, scores)
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    return ndcg_from_hits(np.take_along_axis(hidden, top, axis=1), hidden.sum(axis=1))


def validation_curve(
    ratings: pd.DataFrame,
    song_index: pd.Index,
    grid: dict | None = None,
    seed: int = 42,
    transform: str = "-",
    progress: Progress | None = None,
    k_eval: int = DEFAULT_K,
) -> pd.DataFrame:
    """NDCG@k_eval of every grid combination on validation listeners (empty if too few)."""
    grid = parse_grid(grid)
    data = split(ratings, song_index, seed)
    if data is None:
        log.warning("too few listeners to validate the ranking model: using its defaults")
        return pd.DataFrame(columns=CURVE_COLUMNS)
    k_eval = min(k_eval, len(song_index) - 1)
    rows: list[dict] = []
    fits = list(product(grid["gamma"], grid["alpha"]))
    for step, (gamma, alpha) in enumerate(fits):
        matrix, _ = rating_matrix(data.train, song_index, gamma)
        listeners = np.diff(matrix.tocsc().indptr).astype(np.float64)
        counts = np.maximum(listeners, 1.0)
        values, vectors = truncated_svd(
            scaled_matrix(matrix, listeners, alpha), max(grid["k"]), seed
        )
        listener = listener_rows(data.visible, data.users, song_index, gamma)
        seen = listener.toarray() != 0
        embedded = np.asarray(listener.multiply(counts[None, :] ** -alpha) @ vectors)
        for k, shrink in product(sorted(set(grid["k"])), grid["shrink"]):
            k_used = min(k, len(values))
            weights = shrink_weights(values[:k_used], shrink)
            base = (embedded[:, :k_used] * weights) @ vectors[:, :k_used].T
            for offset in grid["beta_offset"]:
                ndcg = _ndcg(base * counts[None, :] ** (alpha + offset), seen, data.hidden, k_eval)
                rows.append(
                    {
                        "transform": transform,
                        "gamma": gamma,
                        "alpha": alpha,
                        "beta": round(alpha + offset, 6),
                        "k": k_used,
                        "shrink": shrink,
                        "ndcg": ndcg,
                    }
                )
        if progress is not None:
            progress(step + 1, len(fits), f"{transform} gamma {gamma} alpha {alpha}")
    return pd.DataFrame(rows, columns=CURVE_COLUMNS).drop_duplicates(
        subset=CURVE_COLUMNS[:-1], keep="first"
    )


def best_params(curve: pd.DataFrame, fallback: RankingParams | None = None) -> RankingParams:
    """The best row of the curve, preferring the smallest k within TOLERANCE of the best NDCG
    (a smaller k is a smaller, faster model). `fallback` when the curve is empty."""
    usable = curve.dropna(subset=["ndcg"])
    if usable.empty:
        return fallback or RankingParams()
    close = usable[usable["ndcg"] >= usable["ndcg"].max() * (1 - TOLERANCE)]
    ordered = close.sort_values(["k", "ndcg"], ascending=[True, False], kind="stable")
    best = ordered.iloc[0]
    return RankingParams(
        k=int(best["k"]),
        gamma=float(best["gamma"]),
        alpha=float(best["alpha"]),
        beta=float(best["beta"]),
        shrink=float(best["shrink"]),
    )


def transform_ranks(curves: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Best NDCG per rating transform across validation curves, best first."""
    curves = [c for c in curves if not c.empty]
    if not curves:  # too few listeners to validate: nothing to rank
        return pd.DataFrame(columns=["transform", "ndcg"])
    joined = pd.concat(curves, ignore_index=True)
    best = joined.groupby("transform", sort=False)["ndcg"].max().reset_index()
    return best.sort_values("ndcg", ascending=False, kind="stable").reset_index(drop=True)
