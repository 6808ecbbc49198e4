"""Choose the ranking model's parameters by held-out validation on training listeners only.

A fifth of the training listeners (those with at least 5 ratings, at most MAX_LISTENERS of
them) become validation listeners: the model is fitted without them, each shows 80% of
their songs, and NDCG@10 of the other 20% scores every combination of the grid. One SVD
per (gamma, alpha) at the largest k serves every smaller k, shrink and beta (a truncated
SVD's first k directions are the rank-k SVD), so the whole grid costs a few SVDs.

Memory stays bounded whatever the catalogue: listeners are scored a block at a time (block x
songs within BLOCK_CELLS), in float32 (the precision the served model scores in), and the
seen and hidden songs, a few per listener, are sparse matrices.
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
# Listener x song cells scored at once: 16M float32 scores are 64 MB, and a block's scores,
# their scaled copy and argpartition's int64 indices (16 bytes a cell) stay near 256 MB.
# Dense, 500 listeners x 1M songs in float64 took about 20 GB.
BLOCK_CELLS = 16_000_000


@dataclass(frozen=True)
class Validation:
    """Validation listeners' visible rows as weights, and their hidden songs."""

    train: pd.DataFrame
    visible: pd.DataFrame
    hidden: csr_matrix  # validation listeners x songs, bool: the hidden songs
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
    test = holdout.test[holdout.test["user_name"].isin(users)]
    hidden = _hidden_matrix(test, users, song_index)
    visible = holdout.visible()
    return Validation(train, visible[visible["user_name"].isin(users)], hidden, users)


def _hidden_matrix(test: pd.DataFrame, users: pd.Index, song_index: pd.Index) -> csr_matrix:
    """Listeners x songs bool CSR of the hidden songs (songs outside `song_index` left out)."""
    rows, cols = users.get_indexer(test["user_name"]), song_index.get_indexer(test["song_id"])
    keep = cols >= 0
    shape = (len(users), len(song_index))
    hidden = csr_matrix((np.ones(keep.sum(), dtype=bool), (rows[keep], cols[keep])), shape=shape)
    hidden.sum_duplicates()  # a song hidden twice counts once, as a dense mask counted it
    return hidden


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


def block_size(n_listeners: int, n_songs: int, cells: int = BLOCK_CELLS) -> int:
    """Listeners to score at once: block x songs within `cells`, at least 1, at most all."""
    return max(1, min(n_listeners, cells // max(n_songs, 1)))


def _top_k(scores: np.ndarray, seen: csr_matrix, k: int) -> np.ndarray:
    """Each row's k best songs, best first, seen songs last; `scores` is overwritten."""
    rows, cols = seen.nonzero()
    scores[rows, cols] = -np.inf
    np.negative(scores, out=scores)  # in place: argpartition finds the smallest
    top = np.argpartition(scores, k - 1, axis=1)[:, :k]
    order = np.argsort(np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


def _hits(top: np.ndarray, hidden: csr_matrix) -> np.ndarray:
    """hits[i, r]: whether listener i's song at rank r is one of their hidden songs."""
    n_songs = hidden.shape[1]
    # (row, song) pairs as single integers, so one isin checks every rank of every row.
    hidden_rows = np.repeat(np.arange(hidden.shape[0], dtype=np.int64), np.diff(hidden.indptr))
    hidden_keys = hidden_rows * n_songs + hidden.indices
    keys = np.arange(top.shape[0], dtype=np.int64)[:, None] * n_songs + top
    return np.isin(keys, hidden_keys)


def blocked_ndcg(
    left: np.ndarray,
    right: np.ndarray,
    scales: Sequence[np.ndarray],
    seen: csr_matrix,
    hidden: csr_matrix,
    k: int,
    block: int,
) -> list[float]:
    """NDCG@k of scores (left @ right) x scale for each scale, `block` listeners at a time."""
    hits: list[list[np.ndarray]] = [[] for _ in scales]
    for start in range(0, left.shape[0], block):
        rows = slice(start, start + block)
        base, seen_rows, hidden_rows = left[rows] @ right, seen[rows], hidden[rows]
        for found, scale in zip(hits, scales, strict=True):
            found.append(_hits(_top_k(base * scale, seen_rows, k), hidden_rows))
    relevant = hidden.getnnz(axis=1)
    empty = np.zeros((0, k), dtype=bool)  # no listeners at all: ndcg_from_hits gives nan
    return [ndcg_from_hits(np.vstack([empty, *found]), relevant) for found in hits]


@dataclass(frozen=True)
class _Fit:
    """One (gamma, alpha) SVD in the form validation scores with."""

    values: np.ndarray  # singular values, descending
    embedded: np.ndarray  # validation listeners x largest k, float64
    right: np.ndarray  # largest k x songs, float32: the song vectors, transposed
    counts: np.ndarray  # songs: training listeners, at least 1
    seen: csr_matrix  # validation listeners x songs, bool: the visible songs


def _fit(
    data: Validation, song_index: pd.Index, gamma: float, alpha: float, k: int, seed: int
) -> _Fit:
    """The SVD of the training rows at the largest k, and the validation listeners in it."""
    matrix, _ = rating_matrix(data.train, song_index, gamma)
    listeners = np.diff(matrix.tocsc().indptr).astype(np.float64)
    counts = np.maximum(listeners, 1.0)
    values, vectors = truncated_svd(scaled_matrix(matrix, listeners, alpha), k, seed)
    listener = listener_rows(data.visible, data.users, song_index, gamma)
    embedded = np.asarray(listener.multiply(counts[None, :] ** -alpha) @ vectors)
    # float32 is what the served model scores in (its vectors are float16); transposed so
    # the first k rows, what a smaller k uses, are contiguous.
    right = np.ascontiguousarray(vectors.T, dtype=np.float32)
    return _Fit(values, embedded, right, counts, listener != 0)


@dataclass(frozen=True)
class _Run:
    """What every fit of one validation curve shares."""

    data: Validation
    grid: dict[str, list]
    k_eval: int
    block: int  # listeners scored at once
    transform: str


def _grid_rows(run: _Run, fit: _Fit, gamma: float, alpha: float) -> list[dict]:
    """Curve rows of every k, shrink and beta for one (gamma, alpha) fit."""
    betas = [alpha + offset for offset in run.grid["beta_offset"]]
    scales = [(fit.counts**beta).astype(np.float32) for beta in betas]
    rows = []
    for k, shrink in product(sorted(set(run.grid["k"])), run.grid["shrink"]):
        k_used = min(k, len(fit.values))
        weights = shrink_weights(fit.values[:k_used], shrink)
        left = (fit.embedded[:, :k_used] * weights).astype(np.float32)
        hidden, right = run.data.hidden, fit.right[:k_used]
        ndcgs = blocked_ndcg(left, right, scales, fit.seen, hidden, run.k_eval, run.block)
        rows += [
            {
                "transform": run.transform,
                "gamma": gamma,
                "alpha": alpha,
                "beta": round(beta, 6),
                "k": k_used,
                "shrink": shrink,
                "ndcg": ndcg,
            }
            for beta, ndcg in zip(betas, ndcgs, strict=True)
        ]
    return rows


def validation_curve(
    ratings: pd.DataFrame,
    song_index: pd.Index,
    grid: dict | None = None,
    seed: int = 42,
    transform: str = "-",
    progress: Progress | None = None,
    k_eval: int = DEFAULT_K,
    block_cells: int = BLOCK_CELLS,
) -> pd.DataFrame:
    """NDCG@k_eval of every grid combination on validation listeners (empty if too few)."""
    grid = parse_grid(grid)
    data = split(ratings, song_index, seed)
    if data is None:
        log.warning("too few listeners to validate the ranking model: using its defaults")
        return pd.DataFrame(columns=CURVE_COLUMNS)
    block = block_size(len(data.users), len(song_index), block_cells)
    run = _Run(data, grid, min(k_eval, len(song_index) - 1), block, transform)
    rows: list[dict] = []
    fits = list(product(grid["gamma"], grid["alpha"]))
    for step, (gamma, alpha) in enumerate(fits):
        fit = _fit(data, song_index, gamma, alpha, max(grid["k"]), seed)
        rows += _grid_rows(run, fit, gamma, alpha)
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
