"""Surprise trainsets built from rows sorted by (user, item), and folds shared by every algorithm.

Surprise's SGD walks `trainset.all_ratings()` user by user; when each user's items come in
sorted order the item factors are read in memory order and SVD fits about 3x faster than
on a trainset built from shuffled rows (same hyper-parameters, same data).
"""

from __future__ import annotations

from collections import defaultdict
from itertools import chain

import numpy as np
import pandas as pd
from surprise import Dataset, Reader, Trainset
from surprise.model_selection import KFold
from surprise.utils import get_rng

from songrec.models.data import RATING_MAX, RATING_MIN

# The Surprise trap: Reader() defaults to (1, 5) and predictions are clipped to it.
RATING_SCALE = (RATING_MIN, RATING_MAX)


def reader() -> Reader:
    """A Reader on songrec's 1..10 scale."""
    return Reader(rating_scale=RATING_SCALE)


def to_dataset(ratings: pd.DataFrame) -> Dataset:
    """A Surprise Dataset of (user_name, song_id, rating) rows, in the given row order."""
    frame = ratings[["user_name", "song_id", "rating"]].astype({"rating": float})
    return Dataset.load_from_df(frame, reader())


def build_trainset(users: np.ndarray, items: np.ndarray, ratings: np.ndarray) -> Trainset:
    """A full Trainset from parallel arrays, sorted by (user, item) first.

    Same structure as Surprise's `construct_trainset` (inner ids in order of first
    appearance in the sorted rows), built with numpy instead of a per-row Python loop.
    """
    order = np.lexsort((items, users))
    users, items = np.asarray(users)[order], np.asarray(items)[order]
    values = np.asarray(ratings, dtype=float)[order]
    user_codes, user_raw = pd.factorize(users, sort=False)
    item_codes, item_raw = pd.factorize(items, sort=False)
    ur: defaultdict[int, list] = defaultdict(list)
    ir: defaultdict[int, list] = defaultdict(list)
    bounds = np.flatnonzero(np.diff(user_codes)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(user_codes)]])
    item_list, value_list = item_codes.tolist(), values.tolist()
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        ur[user_codes[start].item()] = list(
            zip(item_list[start:end], value_list[start:end], strict=True)
        )
    by_item = np.argsort(item_codes, kind="stable")
    user_list = user_codes[by_item].tolist()
    sorted_items = item_codes[by_item]
    item_bounds = np.flatnonzero(np.diff(sorted_items)) + 1
    item_starts = np.concatenate([[0], item_bounds])
    item_ends = np.concatenate([item_bounds, [len(sorted_items)]])
    sorted_values = values[by_item].tolist()
    for start, end in zip(item_starts.tolist(), item_ends.tolist(), strict=True):
        ir[sorted_items[start].item()] = list(
            zip(user_list[start:end], sorted_values[start:end], strict=True)
        )
    return Trainset(
        ur,
        ir,
        len(user_raw),
        len(item_raw),
        len(values),
        RATING_SCALE,
        {raw: inner for inner, raw in enumerate(user_raw.tolist())},
        {raw: inner for inner, raw in enumerate(item_raw.tolist())},
    )


def trainset_from_frame(ratings: pd.DataFrame) -> Trainset:
    """A full Trainset of a (user_name, song_id, rating) frame."""
    return build_trainset(
        ratings["user_name"].to_numpy(dtype=object),
        ratings["song_id"].to_numpy(dtype=object),
        ratings["rating"].to_numpy(),
    )


class SortedKFold(KFold):
    """KFold with a fixed seed whose trainsets are built from sorted rows, split once.

    The partition is exactly KFold's (same shuffled indices); only the row order inside
    each trainset differs, which Surprise's SGD prefers. The folds are cached, so every
    algorithm's GridSearchCV scores the very same trainsets and testsets.
    """

    def __init__(self, n_splits: int = 5, random_state: int = 0) -> None:
        super().__init__(n_splits=n_splits, random_state=random_state, shuffle=True)
        self._cache: tuple[int, list] | None = None

    def split(self, data: Dataset):  # type: ignore[override]
        """Yield the cached (trainset, testset) pairs, splitting `data` on first use."""
        if self._cache is None or self._cache[0] != id(data):
            self._cache = (id(data), list(self._split(data)))
        yield from self._cache[1]

    def _split(self, data: Dataset):
        if self.n_splits > len(data.raw_ratings) or self.n_splits < 2:
            raise ValueError(f"cannot make {self.n_splits} folds of {len(data.raw_ratings)}")
        indices = np.arange(len(data.raw_ratings))
        get_rng(self.random_state).shuffle(indices)
        raw = data.raw_ratings
        start = stop = 0
        for fold in range(self.n_splits):
            start = stop
            stop += len(indices) // self.n_splits + (fold < len(indices) % self.n_splits)
            train_idx = np.sort(np.fromiter(chain(indices[:start], indices[stop:]), int))
            rows = sorted((raw[i] for i in train_idx), key=lambda row: (row[0], row[1]))
            testset = [(u, i, r) for (u, i, r, _) in (raw[j] for j in indices[start:stop])]
            yield data.construct_trainset(rows), testset
