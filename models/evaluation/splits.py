"""Held-out splits: hide part of each test user's ratings, keep the rest for training.

Named as Microsoft Recommenders names its splitters (random, chronological). A share of
the users who have enough ratings become test users; each test user's ratings are split
into a visible part (trained on, or folded in) and a hidden part (scored). Every other
user stays fully in training. The same (user, song) pairs are hidden whatever the rating
transform, so transforms are compared on one split.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from songrec.models.errors import ModelError

log = logging.getLogger(__name__)

DEFAULT_HOLDOUT = 0.2
DEFAULT_TEST_USERS = 0.2
# A test user keeps at least this many ratings in total, so some stay visible.
MIN_RATINGS = 5
SEED = 42


@dataclass(frozen=True)
class Holdout:
    """One split: `train` rows (visible), `test` rows (hidden), and the test users."""

    name: str
    train: pd.DataFrame
    test: pd.DataFrame
    test_users: np.ndarray

    def train_users_only(self) -> pd.DataFrame:
        """The training rows of users who are not test users (for fold-in)."""
        return self.train[~self.train["user_name"].isin(self.test_users)]

    def visible(self) -> pd.DataFrame:
        """The training rows of the test users (what they showed the recommender)."""
        return self.train[self.train["user_name"].isin(self.test_users)]


def _check(ratings: pd.DataFrame, frac: float, test_user_frac: float, needs: list[str]) -> None:
    if not 0 < frac < 1:
        raise ModelError(f"holdout fraction must be between 0 and 1, got {frac}")
    if not 0 < test_user_frac <= 1:
        raise ModelError(f"test user fraction must be in (0, 1], got {test_user_frac}")
    missing = [c for c in ["user_name", "song_id", *needs] if c not in ratings.columns]
    if missing:
        raise ModelError(f"ratings lack column(s) {', '.join(missing)} needed for the split")


def _pick_test_users(
    ratings: pd.DataFrame, test_user_frac: float, min_ratings: int, rng: np.random.Generator
) -> np.ndarray:
    counts = ratings.groupby("user_name", sort=True).size()
    eligible = counts.index[counts >= min_ratings].to_numpy()
    if len(eligible) == 0:
        raise ModelError(f"no user has the {min_ratings} ratings a test user needs")
    n_test = max(1, int(round(test_user_frac * len(eligible))))
    return np.sort(rng.choice(eligible, size=min(n_test, len(eligible)), replace=False))


def _split_by_order(
    ratings: pd.DataFrame, order_key: pd.Series, test_users: np.ndarray, frac: float, name: str
) -> Holdout:
    """Hide, for each test user, the last round(frac * n) rows in `order_key` order (>= 1)."""
    frame = ratings.assign(_key=order_key.to_numpy()).sort_values(
        ["user_name", "_key", "song_id"], kind="stable"
    )
    is_test = frame["user_name"].isin(test_users).to_numpy()
    position = frame.groupby("user_name", sort=False).cumcount().to_numpy()
    size = frame.groupby("user_name", sort=False)["song_id"].transform("size").to_numpy()
    n_hidden = np.maximum(1, np.rint(frac * size)).astype(int)
    hidden = is_test & (position >= size - n_hidden)
    frame = frame.drop(columns="_key")
    train = frame[~hidden].sort_values(["user_name", "song_id"]).reset_index(drop=True)
    test = frame[hidden].sort_values(["user_name", "song_id"]).reset_index(drop=True)
    log.info(
        "%s holdout: %d test users, %d hidden and %d training rows",
        name,
        len(test_users),
        len(test),
        len(train),
    )
    return Holdout(name=name, train=train, test=test, test_users=test_users)


def random_holdout(
    ratings: pd.DataFrame,
    frac: float = DEFAULT_HOLDOUT,
    seed: int = SEED,
    test_user_frac: float = DEFAULT_TEST_USERS,
    min_ratings: int = MIN_RATINGS,
) -> Holdout:
    """Hide a random `frac` of each test user's ratings; users with too few stay in training."""
    _check(ratings, frac, test_user_frac, [])
    ratings = ratings.reset_index(drop=True)
    rng = np.random.default_rng(seed)
    test_users = _pick_test_users(ratings, test_user_frac, min_ratings, rng)
    # A random key per row, drawn in a canonical row order so the split only depends on seed.
    canonical = ratings.sort_values(["user_name", "song_id"], kind="stable")
    key = pd.Series(rng.random(len(canonical)), index=canonical.index).loc[ratings.index]
    return _split_by_order(ratings, key, test_users, frac, "random")


def chrono_holdout(
    ratings: pd.DataFrame,
    frac: float = DEFAULT_HOLDOUT,
    seed: int = SEED,
    test_user_frac: float = DEFAULT_TEST_USERS,
    min_ratings: int = MIN_RATINGS,
) -> Holdout:
    """Hide each test user's latest `frac` of ratings by `last_listened_at` (ties: song_id)."""
    _check(ratings, frac, test_user_frac, ["last_listened_at"])
    ratings = ratings.reset_index(drop=True)
    times = ratings["last_listened_at"]
    if times.isna().any():
        raise ModelError("last_listened_at has missing values: a by-time split needs them all")
    if times.nunique() < 2:
        raise ModelError("last_listened_at holds a single value: the data has no listening times")
    rng = np.random.default_rng(seed)
    test_users = _pick_test_users(ratings, test_user_frac, min_ratings, rng)
    return _split_by_order(ratings, times, test_users, frac, "chrono")
