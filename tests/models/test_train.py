"""The whole training run on planted-taste data (tiny grid)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from surprise import SVD

from songrec.models.errors import ModelError
from songrec.models.rating.trainset import trainset_from_frame
from songrec.models.train import holdout_scores, train


def test_train_picks_the_best_svd_and_fits_it_on_everything(model_dir, model, taste):
    ratings, songs, _ = taste
    results = pd.read_csv(model_dir / "gscv_results.csv")
    for column in (
        "algorithm",
        "params",
        "rmse",
        "mae",
        "rmse_std",
        "mae_std",
        "fit_time",
        "test_time",
        "status",
    ):
        assert column in results.columns
    svd = results[results["algorithm"] == "SVD"]
    best = json.loads(svd.loc[svd["rmse"].idxmin(), "params"])
    params = model.params
    assert params["n_factors"] == best["n_factors"] == model.n_factors
    assert params["cv"]["rmse"] == pytest.approx(svd["rmse"].min())
    assert 0 < params["holdout"]["rmse"] < 5 and params["holdout"]["test_ratings"] > 0
    assert params["trim"]["songs_kept"] == model.n_songs == songs["song_id"].nunique()
    # The saved factors are the SVD fitted on all kept ratings, in the song table's order.
    algo = SVD(
        **{k: params[k] for k in ("n_factors", "n_epochs", "lr_all", "reg_all")},
        random_state=params["seed"],
    )
    trainset = trainset_from_frame(ratings)
    algo.fit(trainset)
    rows = [trainset.to_inner_iid(s) for s in model.song_ids]
    np.testing.assert_allclose(model.item_factors, algo.qi[rows].astype(np.float32))
    np.testing.assert_allclose(model.item_bias, algo.bi[rows].astype(np.float32))
    assert model.global_mean == pytest.approx(ratings["rating"].mean())


def test_holdout_is_scored_on_unseen_ratings(taste):
    ratings, _, _ = taste
    params = {"n_factors": 8, "n_epochs": 30, "lr_all": 0.01, "reg_all": 0.05}
    scores = holdout_scores(ratings, params, seed=1)
    assert scores["train_ratings"] + scores["test_ratings"] == len(ratings)
    assert 0.15 < scores["test_ratings"] / len(ratings) < 0.25
    mean_only = float(np.sqrt(((ratings["rating"] - ratings["rating"].mean()) ** 2).mean()))
    assert scores["rmse"] < mean_only  # the taste structure is learnable


def test_bad_arguments(taste_dir, tiny_grid):
    with pytest.raises(ModelError, match="--jobs"):
        train(taste_dir, grid=str(tiny_grid), jobs=0)
    with pytest.raises(ModelError, match="not quick, full"):
        train(taste_dir, grid="huge")
