"""GridSearchCV of several algorithms on the same folds, with costs and skips."""

from __future__ import annotations

import json

import numpy as np
import pytest
from surprise.model_selection import KFold

from songrec.models.rating.cost import DataShape, estimate
from songrec.models.rating.grid import parse_grid
from songrec.models.rating.search import RESULT_COLUMNS, best_svd, run_grid, subsample_users
from songrec.models.rating.trainset import SortedKFold, to_dataset, trainset_from_frame


def test_sorted_folds_are_kfolds_partition_and_shared(taste):
    ratings, _, _ = taste
    data = to_dataset(ratings)
    ours = list(SortedKFold(n_splits=3, random_state=7).split(data))
    plain = list(KFold(n_splits=3, random_state=7, shuffle=True).split(data))
    for (train_a, test_a), (train_b, test_b) in zip(ours, plain, strict=True):
        assert sorted(test_a) == sorted(test_b)
        assert train_a.n_ratings == train_b.n_ratings
        raw = [(train_a.to_raw_uid(u), train_a.to_raw_iid(i)) for u, i, _ in train_a.all_ratings()]
        assert raw == sorted(raw)  # built from rows sorted by (user, item)
    cv = SortedKFold(n_splits=3, random_state=7)
    first = list(cv.split(data))
    assert all(a[0] is b[0] for a, b in zip(first, cv.split(data), strict=True))


def test_fast_trainset_equals_surprises(taste):
    ratings, _, _ = taste
    ours = trainset_from_frame(ratings.sample(frac=1.0, random_state=2))
    theirs = to_dataset(ratings.sort_values(["user_name", "song_id"])).build_full_trainset()
    assert ours.ur == theirs.ur and ours.ir == theirs.ir
    assert ours._raw2inner_id_items == theirs._raw2inner_id_items
    assert ours.rating_scale == (1, 10)


def test_grid_scores_every_combination_on_the_same_folds(taste):
    ratings, _, _ = taste
    grid = parse_grid(
        {
            "SVD": {"n_factors": [4, 12], "n_epochs": [15]},
            "BaselineOnly": {},
            "KNNWithMeans": {
                "k": [10],
                "sim_options": {"name": ["msd"], "user_based": [True, False]},
            },
        },
        "test",
    )
    ticks = []
    table = run_grid(ratings, grid, folds=2, jobs=1, seed=1, progress=lambda *a: ticks.append(a))
    assert list(table.columns) == RESULT_COLUMNS
    assert len(table) == 5 and (table["status"] == "ok").all()
    assert table["rmse"].is_monotonic_increasing
    assert (table["rmse_std"] >= 0).all() and (table["fit_time"] > 0).all()
    assert ticks[-1] == (5, 5, "done") and [t[0] for t in ticks] == [0, 1, 2, 3, 4, 5]
    knn = table[table["algorithm"] == "KNNWithMeans"]
    # user_based really reached Surprise: the two similarity settings score differently.
    assert knn["rmse"].nunique() == 2
    assert {json.loads(p)["sim_options"]["user_based"] for p in knn["params"]} == {True, False}
    assert best_svd(table)["n_factors"] in (4, 12)
    again = run_grid(ratings, grid, folds=2, jobs=1, seed=1)
    np.testing.assert_allclose(
        again.set_index("params")["rmse"], table.set_index("params")["rmse"], rtol=1e-12
    )


def test_what_would_not_fit_is_skipped_with_a_reason(taste):
    ratings, _, _ = taste
    shape = DataShape.of(ratings, 2)
    svd = estimate("SVD", {"n_factors": 4}, shape)
    budget = svd.bytes + 8 * shape.items**2  # SlopeOne needs two items x items matrices
    grid = parse_grid({"SVD": {"n_factors": [4]}, "SlopeOne": {}}, "x")
    table = run_grid(ratings, grid, folds=2, jobs=1, seed=1, memory_budget=budget)
    slope = table[table["algorithm"] == "SlopeOne"].iloc[0]
    assert slope["status"] == "skipped" and "GiB" in slope["note"] and np.isnan(slope["rmse"])
    assert table[table["algorithm"] == "SVD"]["status"].tolist() == ["ok"]

    limit = 10 * svd.seconds
    assert estimate("SVDpp", {}, shape).seconds > limit
    grid = parse_grid({"SVD": {"n_factors": [4]}, "SVDpp": {}, "max_fit_seconds": limit}, "x")
    table = run_grid(ratings, grid, folds=2, jobs=1, seed=1)
    svdpp = table[table["algorithm"] == "SVDpp"].iloc[0]
    assert svdpp["status"] == "skipped" and "limit" in svdpp["note"]
    assert table[table["algorithm"] == "SVD"]["status"].tolist() == ["ok"]


def test_knn_memory_grows_with_the_square_of_items():
    shape = DataShape(2458, 10_000, 1_000_000, 5e8, 2e8, 250_000)
    item = estimate("KNNBaseline", {"sim_options": {"user_based": False, "name": "msd"}}, shape)
    user = estimate("KNNBaseline", {"sim_options": {"user_based": True, "name": "msd"}}, shape)
    assert item.bytes > 3 * 8 * 10_000**2 > user.bytes


def test_subsample_is_deterministic_and_whole_users(taste):
    ratings, _, _ = taste
    a, b = subsample_users(ratings, 10, 5), subsample_users(ratings, 10, 5)
    assert a.equals(b) and a["user_name"].nunique() == 10
    per_user = ratings.groupby("user_name").size()
    assert (a.groupby("user_name").size() == per_user[a["user_name"].unique()]).all()
    assert subsample_users(ratings, 10_000, 5) is ratings
    by_count = subsample_users(ratings, None, 5, n_ratings=100)
    first_users = by_count.groupby("user_name").size()
    assert len(by_count) >= 100 and len(by_count) - first_users.min() < 100
    assert set(first_users.index) <= set(subsample_users(ratings, 50, 5)["user_name"])
    grid = parse_grid({"SVD": {"n_factors": [3]}, "subsample_users": 30}, "s")
    table = run_grid(ratings, grid, folds=2, jobs=1, seed=5)
    assert table["users"].tolist() == [30] and table["ratings"].tolist() == [
        len(subsample_users(ratings, 30, 5))
    ]
    assert table["data"].tolist() == ["subsample of 30 of 120 users (seed 5)"]


def test_too_few_ratings_for_the_folds(taste):
    ratings, _, _ = taste
    from songrec.models.errors import ModelError

    with pytest.raises(ModelError, match="too few"):
        run_grid(ratings.head(3), parse_grid({"SVD": {}}, "x"), folds=2, jobs=1, seed=0)


def test_parallel_folds_give_the_same_scores(taste):
    ratings, _, _ = taste
    grid = parse_grid({"SVD": {"n_factors": [5], "n_epochs": [10]}, "BaselineOnly": {}}, "p")
    serial = run_grid(ratings, grid, folds=3, jobs=1, seed=4)
    parallel = run_grid(ratings, grid, folds=3, jobs=2, seed=4)
    np.testing.assert_allclose(parallel["rmse"], serial["rmse"], rtol=1e-12)
