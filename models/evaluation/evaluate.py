"""Held-out evaluation of what is served: new listeners, never in any model's training.

Flow: read a ratings folder and trim it to the top N songs (the training rule); choose a
fifth of the listeners as test listeners and hide 20% of each one's songs, at random and
(when the data has listening times) their latest 20% (models.evaluation.splits). Every
model is fitted on the *other* listeners only and given each test listener's visible 80%,
the way the page serves a new visitor: most popular, ALS, item-kNN and EASE on plays, and,
for each rating transform, the served ranking model and the reference's order by
predicted rating. Scores give RMSE/MAE on the hidden ratings where a model rates, and
precision/recall/NDCG@k, AUC and catalog coverage on the hidden songs. The hidden pairs
are the same for every model and transform; RMSE is on each transform's own scale.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from songrec.etl.ratings import TRANSFORMS
from songrec.models.data import PLAYS_FILE, load_ratings, rate_plays, trim_top_songs
from songrec.models.data import load_plays as read_plays
from songrec.models.errors import ModelError
from songrec.models.evaluation import baselines, metrics
from songrec.models.evaluation.splits import Holdout, chrono_holdout, random_holdout
from songrec.models.rating.foldin import one_blas_thread

log = logging.getLogger(__name__)

DEFAULT_TRANSFORMS = ("cap", "quantile", "log")
DEFAULT_TOP_SONGS = 10_000
SPLITS = ("random", "chrono")
# Settings that keep a sample evaluation to minutes: 100 factors, the reference's reg_all.
EVAL_SVD = {"n_factors": 100, "n_epochs": 20, "lr_all": 0.005, "reg_all": 0.1}
# The HetRec reference's ALS: 100 factors, 30 iterations, regularization 0.01.
EVAL_ALS = {"factors": 100, "iterations": 30, "regularization": 0.01}
# EASE's regularization: each value is its own row (the best is EASE's level).
EVAL_EASE = (100.0, 300.0, 1000.0)
# AUC compares hidden songs with at most this many sampled unrated songs per user.
AUC_NEGATIVES = 1000
COLUMNS = [
    "split",
    "model",
    "transform",
    "k",
    "rmse",
    "mae",
    "precision",
    "recall",
    "ndcg",
    "auc",
    "coverage",
    "test_users",
    "hidden",
    "fit_seconds",
]
Progress = Callable[[int, int, str], None]


def load_plays(data_dir: Path, top_songs: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(plays, songs) of the folder's `top_songs` most popular songs (the training trim)."""
    ratings, songs = load_ratings(data_dir)
    _, kept_songs, _ = trim_top_songs(ratings, songs, top_songs)
    plays = read_plays(Path(data_dir), kept_songs["song_id"])
    if plays is None:
        raise ModelError(f"{Path(data_dir) / PLAYS_FILE} not found: evaluation needs play counts")
    return plays, kept_songs


def top_from_scores(targets: baselines.Targets, scores: np.ndarray, k: int) -> pd.DataFrame:
    """Each test user's k best unseen songs, ties broken by song id (the catalog order)."""
    masked = scores.copy()
    rows = targets.users.get_indexer(targets.visible["user_name"])
    cols = targets.catalog.get_indexer(targets.visible["song_id"])
    masked[rows, cols] = -np.inf
    order = np.argsort(-masked, axis=1, kind="stable")[:, :k]
    best = np.take_along_axis(masked, order, axis=1)
    keep = np.isfinite(best).ravel()
    return pd.DataFrame(
        {
            "user_name": np.repeat(targets.users.to_numpy(), order.shape[1])[keep],
            "song_id": targets.catalog.to_numpy()[order.ravel()[keep]],
            "prediction": best.ravel()[keep],
        }
    )


def auc_cells(
    targets: baselines.Targets, negatives: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) to score for AUC: hidden songs in the catalog plus sampled unrated ones."""
    n_users, n_songs = len(targets.users), len(targets.catalog)
    rated = np.zeros((n_users, n_songs), dtype=bool)
    for frame in (targets.visible, targets.hidden):
        cols = targets.catalog.get_indexer(frame["song_id"])
        rows = targets.users.get_indexer(frame["user_name"])
        rated[rows[cols >= 0], cols[cols >= 0]] = True
    hidden_cols = targets.catalog.get_indexer(targets.hidden["song_id"])
    hidden_rows = targets.users.get_indexer(targets.hidden["user_name"])
    all_rows, all_cols = [hidden_rows[hidden_cols >= 0]], [hidden_cols[hidden_cols >= 0]]
    for row in range(n_users):
        unrated = np.flatnonzero(~rated[row])
        if len(unrated) > negatives:
            unrated = np.sort(rng.choice(unrated, size=negatives, replace=False))
        all_rows.append(np.full(len(unrated), row))
        all_cols.append(unrated)
    return np.concatenate(all_rows), np.concatenate(all_cols)


def measure(
    targets: baselines.Targets,
    scored: baselines.Scored,
    train: pd.DataFrame,
    truth: pd.DataFrame | None,
    cells: tuple[np.ndarray, np.ndarray],
    k: int,
) -> dict:
    """One row of metrics for one model on one split."""
    row: dict = {"rmse": np.nan, "mae": np.nan}
    if scored.predictions is not None and truth is not None:
        for name, metric in metrics.RATING_METRICS.items():
            row[name] = metric(truth, scored.predictions)
    top = scored.top if scored.top is not None else top_from_scores(targets, scored.scores, k)
    for name, metric in metrics.RANKING_METRICS.items():
        row[name] = metric(targets.hidden, top, k)
    rows, cols = cells
    candidates = pd.DataFrame(
        {
            "user_name": targets.users.to_numpy()[rows],
            "song_id": targets.catalog.to_numpy()[cols],
            "prediction": scored.scores[rows, cols],
        }
    )
    row["auc"] = metrics.auc(targets.hidden, candidates)
    row["coverage"] = metrics.catalog_coverage(train, top, k)
    row["fit_seconds"] = round(scored.seconds, 2)
    return row


def _holdouts(plays: pd.DataFrame, splits: Sequence[str], seed: int) -> list[Holdout]:
    holdouts = []
    for name in splits:
        if name == "random":
            holdouts.append(random_holdout(plays, seed=seed))
        elif "last_listened_at" not in plays.columns or plays["last_listened_at"].nunique() < 2:
            # HetRec's all-time counts carry no listening times: nothing to split by.
            log.warning("no listening times in the data: the chrono split is skipped")
        else:
            holdouts.append(chrono_holdout(plays, seed=seed))
    return holdouts


def _check(transforms: Sequence[str], splits: Sequence[str], k: int) -> None:
    unknown = [t for t in transforms if t not in TRANSFORMS]
    if unknown:
        raise ModelError(
            f"unknown transform(s) {', '.join(unknown)}; choose from {', '.join(TRANSFORMS)}"
        )
    if not transforms:
        raise ModelError("give at least one rating transform")
    bad = [s for s in splits if s not in SPLITS]
    if bad or not splits:
        raise ModelError(f"unknown split(s) {', '.join(bad)}; choose from {', '.join(SPLITS)}")
    if k < 1:
        raise ModelError(f"k must be at least 1, got {k}")


@dataclass(frozen=True)
class _Settings:
    k: int
    seed: int
    transforms: Sequence[str]
    svd: dict
    als: dict
    auc_negatives: int
    ease: Sequence[float]
    ranking: dict | None


def _split_rows(
    holdout: Holdout, songs: pd.DataFrame, truths: dict[str, pd.DataFrame], settings: _Settings
) -> Iterator[dict]:
    """Every model's metrics on one split, one row at a time (a progress step each)."""
    others = holdout.train_users_only()
    targets = baselines.Targets.new_listeners(holdout)
    k, seed = settings.k, settings.seed
    cells = auc_cells(targets, settings.auc_negatives, np.random.default_rng(seed))
    base = {"split": holdout.name, "k": k, "test_users": len(targets.users)}
    base["hidden"] = len(targets.hidden)

    def row(model: str, transform: str, scored, train, truth=None) -> dict:
        measured = measure(targets, scored, train, truth, cells, k)
        return {**base, "model": model, "transform": transform, **measured}

    yield row("most_popular", "-", baselines.most_popular(targets, others), others)
    scored = baselines.als(targets, others, targets.visible, settings.als, seed)
    yield row("als", "bm25", scored, others)
    yield row("item_knn", "binary", baselines.item_knn(targets, others), others)
    for lam in settings.ease:
        yield row(f"ease_{lam:g}", "binary", baselines.ease(targets, others, lam), others)
    for transform in settings.transforms:
        train = rate_plays(holdout.train, transform)
        truth = holdout.test[["user_name", "song_id"]].merge(
            truths[transform], on=["user_name", "song_id"]
        )
        rated_others = train[~train["user_name"].isin(targets.users)]
        rated_targets = replace(targets, visible=train[train["user_name"].isin(targets.users)])
        scored = baselines.ranker(rated_targets, rated_others, songs, settings.ranking, seed)
        yield row("ranker", transform, scored, rated_others)
        scored = baselines.svd_foldin(
            rated_targets, rated_others, rated_targets.visible, settings.svd, seed
        )
        yield row("rank_by_rating", transform, scored, rated_others, truth)


def evaluate(
    data_dir: Path,
    top_songs: int = DEFAULT_TOP_SONGS,
    k: int = metrics.DEFAULT_K,
    seed: int = 42,
    transforms: Sequence[str] = DEFAULT_TRANSFORMS,
    progress: Progress | None = None,
    *,
    splits: Sequence[str] = SPLITS,
    svd: dict | None = None,
    als: dict | None = None,
    auc_negatives: int = AUC_NEGATIVES,
    ease: Sequence[float] = EVAL_EASE,
    ranking: dict | None = None,
) -> pd.DataFrame:
    """One row per (split, model, transform) of held-out metrics; see the module docstring.

    `progress(done, total, label)` is called after each row.
    """
    _check(transforms, splits, k)
    settings = _Settings(
        k,
        seed,
        tuple(transforms),
        {**EVAL_SVD, **(svd or {})},
        {**EVAL_ALS, **(als or {})},
        auc_negatives,
        tuple(ease),
        ranking,
    )
    plays, songs = load_plays(Path(data_dir), top_songs)
    truths = {t: rate_plays(plays, t) for t in transforms}
    holdouts = _holdouts(plays, splits, seed)
    total, rows = len(holdouts) * (3 + len(ease) + 2 * len(transforms)), []
    if progress is not None:
        progress(0, total, "data split")
    # Many tiny solves (fold-in) next to implicit's own threads: OpenBLAS's thread pool only
    # adds contention there (a 101 x 101 solve: 0.4 ms on one thread, 7+ ms on two).
    with one_blas_thread():
        for holdout in holdouts:
            for row in _split_rows(holdout, songs, truths, settings):
                rows.append(row)
                if progress is not None:
                    progress(len(rows), total, f"{row['split']} {row['model']} {row['transform']}")
    table = pd.DataFrame(rows, columns=COLUMNS)
    log.info("evaluation done: %d rows", len(table))
    return table


def write_evaluation(table: pd.DataFrame, path: Path) -> Path:
    """Write the table as CSV through a temporary file in the same folder, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A plain open (not mkstemp, whose files are 0600) so the CSV gets the usual permissions.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", newline="") as handle:
            table.to_csv(handle, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
