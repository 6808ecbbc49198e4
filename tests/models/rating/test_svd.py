"""Surprise SVD with per-epoch progress is exactly the plain fit."""

from __future__ import annotations

import numpy as np
from surprise import SVD

from songrec.models.rating.svd import fit_svd, svd_params
from songrec.models.rating.trainset import trainset_from_frame


def test_progress_per_epoch_and_identical_model(taste):
    ratings, _, _ = taste
    trainset = trainset_from_frame(ratings)
    seen = []
    params = {"n_factors": 6, "n_epochs": 7, "reg_all": 0.05, "not_svd": 1}
    ours = fit_svd(trainset, params, 11, lambda epoch, total: seen.append((epoch, total)))
    assert seen == [(e, 7) for e in range(1, 8)]
    plain = SVD(n_factors=6, n_epochs=7, reg_all=0.05, random_state=11).fit(trainset)
    for name in ("pu", "qi", "bu", "bi"):
        np.testing.assert_array_equal(getattr(ours, name), getattr(plain, name))
    assert "all_ratings" not in vars(trainset)  # the hook is removed after the fit


def test_svd_params_keeps_only_svd_hyper_parameters():
    params = svd_params({"n_factors": 150, "reg_all": 0.1, "trim": {}, "seed": 3})
    assert params == {"n_factors": 150, "n_epochs": 20, "lr_all": 0.005, "reg_all": 0.1}


def test_every_hyper_parameter_a_grid_can_tune_reaches_the_fit():
    # A grid may tune any argument of Surprise's SVD; the holdout and the final fit must
    # use the same value, not silently fall back to Surprise's default.
    tuned = {"n_factors": 4, "n_epochs": 3, "init_mean": 0.3, "reg_bu": 0.5, "lr_qi": 0.02}
    params = svd_params({**tuned, "seed": 1})
    assert params == {**svd_params({}), **tuned}
    algo = SVD(**params)
    assert (algo.init_mean, algo.reg_bu, algo.lr_qi) == (0.3, 0.5, 0.02)
