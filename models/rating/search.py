"""Every algorithm of a grid scored by Surprise's GridSearchCV on the very same folds.

One `SortedKFold` (fixed seed, folds split once and cached) is passed as `cv` to every
GridSearchCV, so each algorithm and each hyper-parameter combination sees identical
trainsets and testsets. A combination whose estimated memory does not fit, or whose
estimated time exceeds the grid's limit, is not run: it gets a `skipped` row that says why.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
from surprise.model_selection import GridSearchCV

from songrec.models.errors import ModelError
from songrec.models.rating.cost import DataShape, available_memory, estimate
from songrec.models.rating.grid import ALGORITHMS, Grid
from songrec.models.rating.trainset import SortedKFold, to_dataset
from songrec.models.rating.workers import workers_die_with_parent

log = logging.getLogger(__name__)

RESULT_COLUMNS = [
    "algorithm",
    "params",
    "rmse",
    "mae",
    "rmse_std",
    "mae_std",
    "fit_time",
    "test_time",
    "status",
    "note",
    "users",
    "ratings",
    "folds",
    "data",
]
# Algorithms with a random initialisation: seeded, so a grid run is repeatable.
SEEDED = {"SVD", "SVDpp", "NMF", "CoClustering"}
# Share of the available memory the parallel fits may use together.
MEMORY_SHARE = 0.6

# progress(done, total, label): called before each combination and once at the end.
Progress = Callable[[int, int, str], None]


def subsample_users(
    ratings: pd.DataFrame, n_users: int | None, seed: int, n_ratings: int | None = None
) -> pd.DataFrame:
    """All ratings of whole users drawn in a `seed` order: `n_users` of them, or as few as
    give `n_ratings` ratings (the smaller of the two); all users if that is everyone."""
    counts = ratings.groupby("user_name").size().sort_index()
    order = np.random.default_rng(seed).permutation(len(counts))
    take = len(counts) if n_users is None else min(n_users, len(counts))
    if n_ratings is not None:
        enough = np.searchsorted(np.cumsum(counts.to_numpy()[order]), n_ratings) + 1
        take = min(take, int(enough))
    if take >= len(counts):
        return ratings
    chosen = counts.index[order[:take]]
    return ratings[ratings["user_name"].isin(chosen)].reset_index(drop=True)


def params_text(params: dict) -> str:
    """A combination as stable JSON (the `params` column), without verbosity and seed."""
    shown = {k: v for k, v in params.items() if k not in ("verbose", "random_state")}
    return json.dumps(shown, sort_keys=True)


def _row(algorithm: str, params: dict, status: str, note: str = "", **measures) -> dict:
    row = {c: np.nan for c in RESULT_COLUMNS}
    row.update(algorithm=algorithm, params=params_text(params), status=status, note=note)
    row.update(measures)
    return row


def _score(algorithm: str, params: dict, data, cv: SortedKFold, jobs: int) -> dict:
    """One combination through GridSearchCV: mean and spread of RMSE/MAE over the folds."""
    one_point = {
        k: ({n: [v] for n, v in val.items()} if k in ("sim_options", "bsl_options") else [val])
        for k, val in params.items()
    }
    search = GridSearchCV(
        ALGORITHMS[algorithm], one_point, measures=["rmse", "mae"], cv=cv, n_jobs=jobs
    )
    with workers_die_with_parent():
        search.fit(data)
    res = search.cv_results
    return {
        "rmse": float(res["mean_test_rmse"][0]),
        "mae": float(res["mean_test_mae"][0]),
        "rmse_std": float(res["std_test_rmse"][0]),
        "mae_std": float(res["std_test_mae"][0]),
        "fit_time": float(res["mean_fit_time"][0]),
        "test_time": float(res["mean_test_time"][0]),
    }


def run_grid(
    ratings: pd.DataFrame,
    grid: Grid,
    folds: int,
    jobs: int,
    seed: int,
    memory_budget: float | None = None,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Score every (algorithm, combination) of `grid`; one row each, best RMSE first."""
    if folds < 2:
        raise ModelError(f"--folds must be at least 2, got {folds}")
    data_rows = ratings
    if grid.subsample_users or grid.subsample_ratings:
        data_rows = subsample_users(ratings, grid.subsample_users, seed, grid.subsample_ratings)
    users = data_rows["user_name"].nunique()
    if len(data_rows) < folds * 2:
        raise ModelError(f"only {len(data_rows)} ratings: too few for {folds} folds")
    log.info("grid %s: %d users, %d ratings, %d folds", grid.name, users, len(data_rows), folds)
    shape = DataShape.of(data_rows, folds)
    parallel = max(1, min(jobs, folds))
    budget = memory_budget if memory_budget is not None else MEMORY_SHARE * available_memory()
    data = to_dataset(data_rows)
    cv = SortedKFold(n_splits=folds, random_state=seed)
    total, done, rows = grid.size(), 0, []
    for algorithm in grid.algorithms:
        for params in grid.combinations(algorithm):
            if algorithm in SEEDED:
                params = {**params, "random_state": seed}
            cost = estimate(algorithm, params, shape)
            label = f"{algorithm} {params_text(params)}"
            if progress is not None:
                progress(done, total, label)  # before the fit: the bar names what runs now
            if cost.bytes * parallel > budget:
                note = (
                    f"needs about {cost.bytes * parallel / 2**30:.1f} GiB for {parallel} "
                    f"parallel fold(s), budget {budget / 2**30:.1f} GiB"
                )
                rows.append(_row(algorithm, params, "skipped", note))
            elif grid.max_fit_seconds and cost.seconds > grid.max_fit_seconds:
                note = (
                    f"estimated {cost.seconds / 60:.0f} min per fold, over this grid's "
                    f"limit of {grid.max_fit_seconds / 60:.0f} min"
                )
                rows.append(_row(algorithm, params, "skipped", note))
            else:
                started = time.perf_counter()
                try:
                    rows.append(
                        _row(algorithm, params, "ok", **_score(algorithm, params, data, cv, jobs))
                    )
                except (MemoryError, ValueError, ZeroDivisionError) as exc:
                    rows.append(_row(algorithm, params, "failed", f"{type(exc).__name__}: {exc}"))
                log.info("%s: %.1f s", label, time.perf_counter() - started)
            if rows[-1]["status"] != "ok":
                log.warning("%s %s: %s", label, rows[-1]["status"], rows[-1]["note"])
            done += 1
    if progress is not None:
        progress(done, total, "done")
    table = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    table["users"], table["ratings"], table["folds"] = users, len(data_rows), folds
    all_users = ratings["user_name"].nunique()
    table["data"] = (
        f"subsample of {users:,} of {all_users:,} users (seed {seed})"
        if users < all_users
        else "all kept ratings"
    )
    return table.sort_values("rmse", na_position="last", kind="stable").reset_index(drop=True)


def best_svd(results: pd.DataFrame) -> dict:
    """Hyper-parameters of the SVD row with the lowest mean RMSE."""
    svd = results[(results["algorithm"] == "SVD") & (results["status"] == "ok")]
    if svd.empty:
        raise ModelError("no SVD combination could be scored: nothing to train")
    return json.loads(svd.loc[svd["rmse"].idxmin(), "params"])
