"""Fold-in: the exact ridge solution of the SVD objective, and taste that shows."""

from __future__ import annotations

import numpy as np

from songrec.models.rating.foldin import BIAS_REG_FACTOR, fold_in, predict_all
from songrec.models.recommend import recommend


def test_fold_in_is_the_ridge_minimum():
    rng = np.random.default_rng(0)
    factors = rng.normal(0, 0.3, (50, 4)).astype(np.float32)
    bias = rng.normal(0, 0.5, 50).astype(np.float32)
    idx = np.array([3, 7, 11, 20, 42])
    ratings = np.array([9.0, 2.0, 7.0, 10.0, 4.0])
    reg, bias_reg, mean = 0.1, 0.7, 3.0
    b, p = fold_in(factors, bias, mean, idx, ratings, reg, bias_reg)
    # The same objective as an augmented least-squares problem.
    n = len(idx)
    design = np.hstack([np.ones((n, 1)), factors[idx]])
    penalty = np.diag(np.sqrt(np.r_[bias_reg * n, np.full(4, reg * n)]))
    target = np.r_[ratings - mean - bias[idx], np.zeros(5)]
    expected, *_ = np.linalg.lstsq(np.vstack([design, penalty]), target, rcond=None)
    np.testing.assert_allclose(np.r_[b, p], expected, rtol=1e-6, atol=1e-9)
    scores = predict_all(factors, bias, mean, b, p)
    np.testing.assert_allclose(scores[idx], mean + b + bias[idx] + factors[idx] @ p, rtol=1e-5)


def test_no_ratings_is_the_unknown_user():
    b, p = fold_in(np.ones((3, 2), np.float32), np.zeros(3, np.float32), 2.0, [], [], 0.1)
    assert b == 0.0 and not p.any()


def test_the_bias_does_not_swallow_a_favourites_only_listener(model):
    # Rated only favourites, all 10: with an equal penalty the bias takes most of the
    # signal; the stronger bias penalty moves it into the factors.
    idx = np.arange(5)
    tens = np.full(5, 10.0)
    reg = model.params["reg_all"]
    args = (model.item_factors, model.item_bias, model.global_mean, idx, tens, reg)
    equal_b, equal_p = fold_in(*args, bias_reg=reg)
    b, p = fold_in(*args)
    assert BIAS_REG_FACTOR > 1
    assert abs(b) < abs(equal_b) and np.linalg.norm(p) > np.linalg.norm(equal_p)


def test_favourites_only_listener_gets_their_taste_not_the_popular_list(model, taste):
    _, _, group_of = taste
    popular = recommend(model, [], 10)
    # The planted data makes the generic list all group 0.
    assert {group_of[item.song_id] for item in popular.items} == {0}
    rng = np.random.default_rng(5)
    for group in (1, 2):
        songs = [s for s in model.song_ids if group_of[s] == group]
        rated = [(s, 10) for s in rng.choice(songs, 4, replace=False)]
        result = recommend(model, rated, 10)
        in_group = sum(group_of[item.song_id] == group for item in result.items)
        assert in_group >= 9, (group, in_group)


def test_a_free_bias_would_fall_into_the_trap(model, taste):
    # The same listeners with an unpenalized bias get (almost) no songs of their group:
    # the data really can trap a fold-in whose bias soaks up the ratings.
    _, _, group_of = taste
    rng = np.random.default_rng(5)
    for group in (1, 2):
        own = np.array([i for i, s in enumerate(model.song_ids) if group_of[s] == group])
        idx = rng.choice(own, 4, replace=False)
        args = (model.item_factors, model.item_bias, model.global_mean, idx, np.full(4, 10.0))
        for bias_reg, low, high in ((0.0, 0, 3), (None, 9, 10)):
            b, p = fold_in(*args, model.params["reg_all"], bias_reg)
            scores = predict_all(model.item_factors, model.item_bias, model.global_mean, b, p)
            scores[idx] = -np.inf
            top = np.argsort(-scores)[:10]
            in_group = sum(group_of[model.song_ids[t]] == group for t in top)
            assert low <= in_group <= high, (group, bias_reg, in_group)
