"""recommend(): edge cases, reasons, no mutation, and the retrain mode."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from songrec.models.errors import ModelError
from songrec.models.ranking.matrix import listener_weights
from songrec.models.ranking.retrain import refit_with_listener
from songrec.models.recommend import EMPTY_FALLBACK, recommend, training_matrix
from songrec.models.recommender import Recommender


def _digest(model) -> str:
    digest = hashlib.sha256()
    for array in (model.item_factors, model.item_bias, model.ranking.vectors):
        digest.update(array.tobytes())
    digest.update(model.songs.to_csv().encode())
    return digest.hexdigest()


def test_empty_list_gives_the_most_popular_songs_and_says_so(model):
    result = recommend(model, [], 5)
    assert result.fallback == EMPTY_FALLBACK and result.mode == "popular"
    by_plays = model.songs.sort_values("plays", ascending=False, kind="stable")
    assert [i.song_id for i in result.items] == by_plays["song_id"].head(5).tolist()
    assert all(1 <= i.predicted_rating <= 10 and i.because is None for i in result.items)


def test_bad_input_is_a_clear_error(model):
    sid = model.song_ids[0]
    with pytest.raises(ModelError, match="unknown song id 'nope'"):
        recommend(model, [("nope", 5)])
    for bad in (0, 11, 7.5, "9", True):
        with pytest.raises(ModelError, match="rating"):
            recommend(model, [(sid, bad)])
    with pytest.raises(ModelError, match="unknown mode"):
        recommend(model, [(sid, 5)], mode="magic")
    with pytest.raises(ModelError, match="unknown ranking"):
        recommend(model, [(sid, 5)], rank_by="vibes")
    with pytest.raises(ModelError, match="at least 1"):
        recommend(model, [(sid, 5)], n=0)


def test_a_song_rated_twice_keeps_the_last_rating(model):
    a, b = model.song_ids[3], model.song_ids[40]
    twice = recommend(model, [(a, 2), (b, 9), (a, 10)], 10)
    once = recommend(model, [(b, 9), (a, 10)], 10)
    assert twice == once
    assert recommend(model, [(a, 2), (b, 9)], 10) != once


def test_results_exclude_rated_songs_are_sorted_and_explained(model):
    rated = [(model.song_ids[i], r) for i, r in ((1, 9), (50, 3), (70, 8))]
    result = recommend(model, rated, 15)
    ids = [i.song_id for i in result.items]
    assert len(ids) == 15 == len(set(ids)) and not set(ids) & {s for s, _ in rated}
    # The order is the ranking model's: its scores, recomputed here, are descending.
    idx = np.array([1, 50, 70])
    weights = listener_weights(np.array([9.0, 3.0, 8.0]), model.ranking.params.gamma)
    scores = model.ranking.score(idx, weights)[[model.index_of(s) for s in ids]]
    assert np.all(np.diff(scores) <= 1e-6)
    assert all(1 <= i.predicted_rating <= 10 for i in result.items)
    names = model.songs.iloc[[1, 50, 70]][["artist_name", "track_name"]].values
    rated_names = {f"{a} – {t}" for a, t in names}
    assert all(i.because.removeprefix("because you rated ") in rated_names for i in result.items)
    assert result.fallback is None and result.mode == "foldin" and result.rank_by == "taste"


def test_rank_by_rating_orders_by_predicted_rating(model):
    rated = [(model.song_ids[i], r) for i, r in ((1, 9), (50, 3), (70, 8))]
    result = recommend(model, rated, 15, rank_by="rating")
    predicted = [i.predicted_rating for i in result.items]
    assert predicted == sorted(predicted, reverse=True) and result.rank_by == "rating"
    liked = {
        f"{a} – {t}" for a, t in model.songs.iloc[[1, 70]][["artist_name", "track_name"]].values
    }
    assert all(i.because.removeprefix("because you rated ") in liked for i in result.items)


def test_reasons_name_the_rated_song_that_added_most(model):
    idx = np.array([2, 33, 64])
    rated = [(model.song_ids[i], 10) for i in idx]
    weights = listener_weights(np.full(3, 10.0), model.ranking.params.gamma)
    for item in recommend(model, rated, 10).items:
        pick = model.index_of(item.song_id)
        added = model.ranking.contributions(idx, weights, np.array([pick]))[0]
        best = idx[np.argmax(added)]
        name = f"{model.songs['artist_name'].iat[best]} – {model.songs['track_name'].iat[best]}"
        assert item.because == f"because you rated {name}"


def test_all_equal_ratings_and_more_songs_than_the_catalogue(model):
    rated = [(sid, 5) for sid in model.song_ids[:6]]
    result = recommend(model, rated, 10_000)
    assert len(result.items) == model.n_songs - 6
    everything = [(sid, 5) for sid in model.song_ids]
    assert recommend(model, everything, 5).items == []


def test_many_recommendations_never_change_the_model(model):
    before = _digest(model)
    rng = np.random.default_rng(0)
    for _ in range(200):
        idx = rng.choice(model.n_songs, 5, replace=False)
        recommend(model, [(model.song_ids[i], int(rng.integers(1, 11))) for i in idx], 10)
    assert _digest(model) == before
    assert not model.item_factors.flags.writeable and not model.item_bias.flags.writeable


def test_exact_retrain_recomputes_the_ranking_svd_and_follows_taste(model, taste):
    _, _, group_of = taste
    before = _digest(model)
    songs = [s for s in model.song_ids if group_of[s] == 2][:4]
    rated = [(s, 10) for s in songs]
    exact = recommend(model, rated, 10, mode="retrain")
    assert exact.mode == "retrain" and len(exact.items) == 10
    assert sum(group_of[i.song_id] == 2 for i in exact.items) >= 9
    assert recommend(model, rated, 10, mode="retrain") == exact  # seeded: repeatable
    # The refit really differs from the stored model: one more listener row.
    idx = np.array([model.index_of(s) for s in songs])
    refit = refit_with_listener(
        training_matrix(model), model.ranking.params, idx, np.full(len(idx), 10.0)
    )
    assert not np.allclose(np.abs(refit.vectors), np.abs(model.ranking.vectors), atol=1e-6)
    assert np.array_equal(refit.listeners[idx], model.ranking.listeners[idx] + 1)
    assert _digest(model) == before


def test_rating_retrain_refits_surprise_with_progress_and_follows_taste(model, taste):
    _, _, group_of = taste
    before = _digest(model)
    songs = [s for s in model.song_ids if group_of[s] == 2][:4]
    epochs = []
    result = recommend(
        model,
        [(s, 10) for s in songs],
        10,
        mode="retrain",
        progress=lambda e, n: epochs.append((e, n)),
        rank_by="rating",
    )
    n_epochs = model.params["n_epochs"]
    assert epochs == [(e, n_epochs) for e in range(1, n_epochs + 1)]
    assert result.mode == "retrain" and len(result.items) == 10
    assert sum(group_of[i.song_id] == 2 for i in result.items) >= 8
    assert not set(songs) & {i.song_id for i in result.items}
    again = recommend(model, [(s, 10) for s in songs], 10, mode="retrain", rank_by="rating")
    assert again == result  # seeded with the model's seed: repeatable
    assert _digest(model) == before


def test_recommender_counts_listeners_of_both_songs(model, model_dir) -> None:
    ratings = pd.read_parquet(model_dir / "ratings.parquet")
    listeners = ratings.groupby("song_id")["user_name"].agg(set)
    rated = [(model.song_ids[5], 10), (model.song_ids[47], 9)]
    for item in Recommender(model).recommend(rated, 10).items:
        both = len(listeners[item.because_song_id] & listeners[item.song_id])
        assert item.because.endswith(f"({both} listeners who play it also play this)") or (
            both == 1 and item.because.endswith("(1 listener who plays it also plays this)")
        )
