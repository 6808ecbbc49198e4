"""Rough memory and time of one Surprise fit, so a grid skips what cannot finish.

The memory figures follow Surprise's code: a KNN similarity allocates several n x n
matrices of 8-byte cells (cosine and pearson_baseline 5, msd 3, pearson 7), where n is
the number of users (user_based) or items; SlopeOne keeps two n_items x n_items matrices.
The time figures are operation counts times a rate measured on a 2-core machine; they
only need to be right within a factor of a few, to tell minutes from hours.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

CELL = 8
SIM_MATRICES = {"cosine": 5, "msd": 3, "pearson": 7, "pearson_baseline": 5}
# Rates measured on a 2-core machine (quick grid on the sample, 600 users x 9.8k songs).
# Inner-loop operations per second of Surprise's Cython SGD on one core.
OPS_PER_SECOND = 3e8
# Similarity-matrix cells (n x n x matrices) filled and finished per second.
CELLS_PER_SECOND = 6e7
# SlopeOne's deviation pass over n_items^2 (and its per-user item pairs).
SLOPE_ONE_PER_SECOND = 2.5e7
# Python-level neighbour scoring of KNN/SlopeOne predictions, per (test rating x neighbour),
# plus a fixed cost per prediction.
NEIGHBOURS_PER_SECOND = 1e6
PER_PREDICTION = 2e-5
BASE_BYTES = 200 * 2**20


@dataclass(frozen=True)
class DataShape:
    """Sizes of one cross-validation training fold."""

    users: int
    items: int
    ratings: int
    user_pairs: float  # sum over users of (ratings of the user)^2
    item_pairs: float  # sum over items of (ratings of the item)^2
    test_ratings: int

    @classmethod
    def of(cls, ratings: pd.DataFrame, folds: int) -> DataShape:
        """The shape of a training fold of `ratings` cut into `folds` folds."""
        keep = (folds - 1) / folds
        per_user = ratings.groupby("user_name").size().to_numpy(dtype=float) * keep
        per_item = ratings.groupby("song_id").size().to_numpy(dtype=float) * keep
        return cls(
            users=len(per_user),
            items=len(per_item),
            ratings=int(len(ratings) * keep),
            user_pairs=float(np.square(per_user).sum()),
            item_pairs=float(np.square(per_item).sum()),
            test_ratings=len(ratings) - int(len(ratings) * keep),
        )


@dataclass(frozen=True)
class Cost:
    """Estimated peak bytes and seconds of one fit + test."""

    bytes: float
    seconds: float


def estimate(algorithm: str, params: dict, shape: DataShape) -> Cost:
    """Memory and time of fitting and testing `algorithm(**params)` on one fold."""
    ratings_bytes = shape.ratings * 150.0  # Surprise's ur/ir dicts of tuples
    epochs = params.get("n_epochs", 20)
    if algorithm.startswith("KNN"):
        sim = params.get("sim_options", {})
        user_based = sim.get("user_based", True)
        n = shape.users if user_based else shape.items
        matrices = SIM_MATRICES.get(sim.get("name", "msd"), 7)
        pairs = shape.item_pairs if user_based else shape.user_pairs
        neighbours = (
            (shape.item_pairs / shape.ratings) if user_based else (shape.user_pairs / shape.ratings)
        )
        seconds = matrices * n * n / CELLS_PER_SECOND + pairs / OPS_PER_SECOND
        seconds += shape.test_ratings * (neighbours / NEIGHBOURS_PER_SECOND + PER_PREDICTION)
        return Cost(matrices * CELL * n * n + ratings_bytes + BASE_BYTES, seconds)
    if algorithm == "SlopeOne":
        n = shape.items
        seconds = (shape.user_pairs + n * n) / SLOPE_ONE_PER_SECOND
        degree = shape.ratings / max(shape.users, 1)
        seconds += shape.test_ratings * (degree / NEIGHBOURS_PER_SECOND + PER_PREDICTION)
        return Cost(2 * CELL * n * n + ratings_bytes + BASE_BYTES, seconds)
    if algorithm == "SVDpp":
        k = params.get("n_factors", 20)
        # Each rating sums and updates the implicit factors of all the user's items.
        ops = epochs * 2 * k * shape.user_pairs
        ops += shape.test_ratings * k * shape.user_pairs / max(shape.ratings, 1)
        return Cost(ratings_bytes * 2 + BASE_BYTES, ops / OPS_PER_SECOND)
    if algorithm in ("SVD", "NMF"):
        k = params.get("n_factors", 100 if algorithm == "SVD" else 15)
        epochs = params.get("n_epochs", 20 if algorithm == "SVD" else 50)
        return Cost(ratings_bytes + BASE_BYTES, epochs * k * shape.ratings / OPS_PER_SECOND)
    return Cost(ratings_bytes + BASE_BYTES, 20 * shape.ratings / OPS_PER_SECOND)


def available_memory() -> int:
    """Bytes of memory available now (MemAvailable on Linux, else physical pages)."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
