"""`songrec train`: trim, then fit the two models every answer comes from.

Flow: read the ratings folder -> keep the top N songs (and their users) ->
- the rating model (predicted ratings, "you'd rate it about 7"): GridSearchCV of every
  algorithm of the grid on the same folds -> the best SVD by mean RMSE -> its RMSE/MAE on
  an 80/20 split (as the reference reported, 2.4106 at top 10k) -> that SVD fitted on every
  kept rating;
- the ranking model (the order of every list, models.ranking): parameters validated on
  held-out training listeners -> the truncated SVD of every kept rating;
-> a TrainedModel (float32 arrays in song order), which keeps what the data was
(`data_source`: the ETL report's source_kind, synthetic flag and source text).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from surprise import accuracy

from songrec.models.artifact import TrainedModel, save_model
from songrec.models.data import folder_source, load_ratings, ratings_fingerprint, trim_top_songs
from songrec.models.errors import ModelError
from songrec.models.ranking.train import CURVE_FILE, train_ranking
from songrec.models.rating.grid import load_grid
from songrec.models.rating.search import best_svd, run_grid
from songrec.models.rating.svd import fit_svd, svd_params
from songrec.models.rating.trainset import trainset_from_frame

log = logging.getLogger(__name__)

DEFAULT_TOP_SONGS = 10_000
DEFAULT_SEED = 42
HOLDOUT_SHARE = 0.2
GSCV_FILE = "gscv_results.csv"

# progress(stage, done, total, label): stage is "grid", "holdout", "final" or "ranking".
TrainProgress = Callable[[str, int, int, str], None]


@dataclass(frozen=True)
class TrainResult:
    """The trained model, its kept ratings, the grid results and a report."""

    model: TrainedModel
    ratings: pd.DataFrame
    results: pd.DataFrame
    report: dict
    fingerprint: str
    curve: pd.DataFrame  # the ranking model's validation curve


def holdout_scores(
    ratings: pd.DataFrame,
    params: dict,
    seed: int,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """RMSE/MAE of SVD(params) trained on a random 80% of ratings, tested on the rest."""
    rng = np.random.default_rng(seed)
    test_mask = rng.random(len(ratings)) < HOLDOUT_SHARE
    train, test = ratings[~test_mask], ratings[test_mask]
    algo = fit_svd(trainset_from_frame(train), params, seed, progress)
    testset = list(
        zip(test["user_name"], test["song_id"], test["rating"].astype(float), strict=True)
    )
    predictions = algo.test(testset)
    return {
        "rmse": float(accuracy.rmse(predictions, verbose=False)),
        "mae": float(accuracy.mae(predictions, verbose=False)),
        "train_ratings": int(len(train)),
        "test_ratings": int(len(test)),
    }


def fit_final(
    ratings: pd.DataFrame,
    songs: pd.DataFrame,
    params: dict,
    seed: int,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """SVD on every kept rating: (item factors, item biases) in `songs` order, global mean."""
    trainset = trainset_from_frame(ratings)
    algo = fit_svd(trainset, params, seed, progress)
    inner = np.array([trainset.to_inner_iid(sid) for sid in songs["song_id"]])
    factors = algo.qi[inner].astype(np.float32)
    bias = algo.bi[inner].astype(np.float32)
    return factors, bias, float(trainset.global_mean)


def train(
    data_dir: Path,
    top_songs: int = DEFAULT_TOP_SONGS,
    grid: str = "quick",
    folds: int | None = None,
    jobs: int = 1,
    seed: int = DEFAULT_SEED,
    progress: TrainProgress | None = None,
    memory_budget: float | None = None,
) -> TrainResult:
    """The whole training run; nothing is written (see artifact.save_model)."""
    started = time.perf_counter()
    parsed = load_grid(grid)
    if jobs < 1:
        raise ModelError(f"--jobs must be at least 1, got {jobs}")
    folds = folds or parsed.folds or 5
    ratings, songs = load_ratings(Path(data_dir))
    kept, kept_songs, trim = trim_top_songs(ratings, songs, top_songs)

    def stage(name: str) -> Callable[[int, int], None] | None:
        if progress is None:
            return None
        return lambda done, total: progress(name, done, total, "")

    results = run_grid(
        kept,
        parsed,
        folds,
        jobs,
        seed,
        memory_budget,
        (lambda d, t, label: progress("grid", d, t, label)) if progress else None,
    )
    grid_seconds = time.perf_counter() - started
    best = svd_params(best_svd(results))
    log.info("best SVD: %s", best)
    holdout = holdout_scores(kept, best, seed, stage("holdout"))
    log.info("80/20 holdout: RMSE %.4f, MAE %.4f", holdout["rmse"], holdout["mae"])
    factors, bias, global_mean = fit_final(kept, kept_songs, best, seed, stage("final"))
    ranking = train_ranking(
        kept,
        kept_songs,
        Path(data_dir),
        parsed.ranking,
        seed,
        (lambda d, t, label: progress("ranking", d, t, label)) if progress else None,
    )
    best_row = results[(results["algorithm"] == "SVD") & (results["status"] == "ok")].iloc[0]
    report = {
        **best,
        "seed": seed,
        "grid": parsed.name,
        "folds": folds,
        "trim": trim.as_dict(),
        "cv": {"rmse": float(best_row["rmse"]), "mae": float(best_row["mae"])},
        "holdout": holdout,
        "users": trim.users_kept,
        "ratings": trim.ratings_kept,
        "grid_seconds": round(grid_seconds, 1),
        "ranking": ranking.report,
        "data_source": folder_source(Path(data_dir)),
        "train_seconds": round(time.perf_counter() - started, 1),
    }
    model = TrainedModel(
        song_ids=kept_songs["song_id"].to_numpy(dtype=object),
        item_factors=factors,
        item_bias=bias,
        global_mean=global_mean,
        params=report,
        songs=kept_songs,
        ranking=ranking.model,
    )
    return TrainResult(model, kept, results, report, ratings_fingerprint(kept), ranking.curve)


def save_result(result: TrainResult, out_dir: Path, force: bool = False) -> Path:
    """Write the trained model folder with its grid results and ranking validation curve."""
    return save_model(
        result.model,
        out_dir,
        ratings=result.ratings,
        extra_files={
            GSCV_FILE: result.results.to_csv(index=False).encode(),
            CURVE_FILE: result.curve.to_csv(index=False).encode(),
        },
        fingerprint=result.fingerprint,
        force=force,
    )
