"""Grids: the built-in ones, a user's JSON/YAML file, and their expansion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from songrec.models.errors import ModelError
from songrec.models.ranking.validate import parse_grid as parse_ranking_grid
from songrec.models.rating.grid import ALGORITHMS, expand, load_grid, parse_grid

EVERY_ALGORITHM = {
    "NormalPredictor",
    "BaselineOnly",
    "SVD",
    "SVDpp",
    "NMF",
    "SlopeOne",
    "CoClustering",
    "KNNBaseline",
    "KNNWithMeans",
}


@pytest.mark.parametrize("name", ["quick", "full"])
def test_builtin_grids_cover_every_algorithm_and_instantiate(name):
    grid = load_grid(name)
    assert set(grid.algorithms) == EVERY_ALGORITHM
    for algorithm in grid.algorithms:
        for combo in grid.combinations(algorithm):
            ALGORITHMS[algorithm](**combo)  # raises on a parameter Surprise does not know


def test_full_grid_widens_the_reference_svd_grid():
    svd = load_grid("full").algorithms["SVD"]
    assert max(svd["n_factors"]) > 150 and {100, 150} <= set(svd["n_factors"])
    assert min(svd["reg_all"]) < 0.09 and max(svd["reg_all"]) >= 0.15
    assert len(svd["lr_all"]) > 1 and len(svd["n_epochs"]) > 1


def test_sim_options_expand_into_real_dicts():
    combos = expand(
        {"k": [20, 40], "sim_options": {"name": ["msd", "cosine"], "user_based": [False]}},
        quiet=True,
    )
    assert len(combos) == 4
    assert {
        "verbose": False,
        "k": 20,
        "sim_options": {"name": "cosine", "user_based": False},
    } in combos
    algo = ALGORITHMS["KNNWithMeans"](**combos[1])
    assert algo.sim_options == combos[1]["sim_options"]


def test_a_user_grid_from_json_and_yaml(tmp_path):
    spec = {"folds": 3, "algorithms": {"SVD": {"n_factors": [5, 10]}, "BaselineOnly": {}}}
    (tmp_path / "g.json").write_text(json.dumps(spec))
    (tmp_path / "g.yaml").write_text(
        "folds: 3\nalgorithms:\n  SVD:\n    n_factors: [5, 10]\n  BaselineOnly: {}\n"
    )
    for path in (tmp_path / "g.json", tmp_path / "g.yaml"):
        grid = load_grid(str(path))
        assert grid.folds == 3 and grid.size() == 3
        assert grid.combinations("SVD") == [{"n_factors": 5}, {"n_factors": 10}]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"SVD": {}, "Magic": {}}, "unknown algorithm 'Magic'"),
        ({"BaselineOnly": {}}, "must include SVD"),
        ({"SVD": {"n_factorz": [5]}}, "n_factorz"),
        ({"SVD": {"n_factors": []}}, "empty list"),
        ({"SVD": {}, "KNNBasic": {"sim_options": ["msd"]}}, "sim_options must be a mapping"),
        ({"folds": 1, "SVD": {}}, "folds must be an integer >= 2"),
    ],
)
def test_bad_grids_are_clear_errors(spec, message):
    with pytest.raises(ModelError, match=message):
        parse_grid(spec, "mine")


def test_grid_argument_errors(tmp_path):
    with pytest.raises(ModelError, match="not quick, full"):
        load_grid("medium")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ModelError, match="bad.json is not valid"):
        load_grid(str(bad))


def test_the_scale_benchmarks_grid_loads_with_one_ranking_setting():
    # tests/bench/grid_scale.json: what `bench_scale.py --grid` trains 1M songs with.
    path = Path(__file__).parents[2] / "bench" / "grid_scale.json"
    grid = load_grid(str(path))
    assert "SVD" in grid.algorithms and grid.subsample_ratings == 80_000
    ranking = parse_ranking_grid(grid.ranking)
    assert all(len(values) == 1 for values in ranking.values()), ranking
