"""Recommender: one face over both models (fit, load, recommend, fold-in, similar)."""

from __future__ import annotations

import numpy as np

from songrec.models.ranking.matrix import listener_weights
from songrec.models.recommender import Recommender


def test_fit_then_recommend_follows_taste(taste_dir, tiny_grid, taste) -> None:
    _, _, group_of = taste
    recommender, result = Recommender.fit(
        taste_dir, top_songs=1000, grid=str(tiny_grid), jobs=1, seed=3
    )
    assert recommender.model is result.model and not result.curve.empty
    songs = [s for s in recommender.model.song_ids if group_of[s] == 1][:5]
    items = recommender.recommend([(s, 10) for s in songs], 10).items
    assert sum(group_of[i.song_id] == 1 for i in items) >= 9


def test_load_and_fold_in_place_the_listener_where_scores_come_from(model_dir) -> None:
    recommender = Recommender.load(model_dir)
    model = recommender.model
    rated = [(model.song_ids[i], r) for i, r in ((4, 10), (9, 8), (30, 2))]
    position = recommender.fold_in(rated)
    assert position.shape == (model.ranking.rank,)
    idx = np.array([4, 9, 30])
    weights = listener_weights(np.array([10.0, 8.0, 2.0]), model.ranking.params.gamma)
    expected = model.ranking.score(idx, weights)
    scores = (model.ranking.vectors @ position) * model.ranking.out_scale
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)


def test_excluded_songs_are_never_recommended(model):
    recommender = Recommender(model)
    rated = [(str(model.song_ids[i]), 9) for i in range(3)]
    first = [i.song_id for i in recommender.recommend(rated, n=10).items]
    for mode in ("foldin", "retrain"):
        again = recommender.recommend(rated, n=10, mode=mode, exclude={*first[:4], "unknown"})
        ids = [i.song_id for i in again.items]
        assert len(ids) == 10 and not set(ids) & set(first[:4])


def test_not_for_me_is_a_dislike_even_among_low_ratings(model_dir, taste):
    """A play-count listener (every rating low) says "not for me" to a song of group 2: with
    the flag its group sinks; by the rating rule alone a 1 among 1s and 2s is a like."""
    _, _, group_of = taste
    recommender = Recommender.load(model_dir)
    ids = [str(s) for s in recommender.model.song_ids]
    ones = [s for s in ids if group_of[s] == 1][:3]
    twos = [s for s in ids if group_of[s] == 2][:5]
    rated = [(s, 2) for s in ones] + [(s, 1) for s in twos]
    for mode in ("foldin", "retrain"):
        plain = recommender.recommend(rated, 10, mode=mode).items
        said = recommender.recommend(rated, 10, mode=mode, disliked=set(twos)).items
        in_two = [sum(group_of[i.song_id] == 2 for i in items) for items in (plain, said)]
        assert in_two[1] == 0 and in_two[1] < in_two[0], (mode, in_two)
