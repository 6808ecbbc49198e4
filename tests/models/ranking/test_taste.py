"""Planted taste groups: the served list follows likes, avoids dislikes; similar stays in group."""

from __future__ import annotations

import numpy as np

from songrec.models.recommender import Recommender


def _planted_lists(model, group_of, mode: str = "foldin"):
    """Per (liked, disliked) pair of groups: 5 liked songs rated 10, 2 disliked rated 2."""
    recommender = Recommender(model)
    rng = np.random.default_rng(7)
    groups = sorted(set(group_of.values()))
    results = []
    for liked in groups:
        for disliked in groups:
            if liked == disliked:
                continue
            for _ in range(4):
                own = [s for s in model.song_ids if group_of[s] == liked]
                other = [s for s in model.song_ids if group_of[s] == disliked]
                rated = [(s, 10) for s in rng.choice(own, 5, replace=False)]
                rated += [(s, 2) for s in rng.choice(other, 2, replace=False)]
                items = recommender.recommend(rated, 10, mode).items
                picks = [group_of[i.song_id] for i in items]
                results.append((picks.count(liked), picks.count(disliked)))
    return np.array(results)


def test_likes_lead_and_dislikes_stay_out(model, taste) -> None:
    _, _, group_of = taste
    for mode in ("foldin", "retrain"):
        counts = _planted_lists(model, group_of, mode)
        liked, disliked = counts[:, 0], counts[:, 1]
        assert liked.mean() >= 9.5 and liked.min() >= 8, (mode, counts)
        assert disliked.mean() <= 0.5, (mode, counts)


def test_similar_songs_and_artists_stay_in_their_group(model, taste) -> None:
    _, _, group_of = taste
    recommender = Recommender(model)
    shares = []
    for song in model.song_ids:
        items = recommender.similar_songs(song, 10)
        shares.append(sum(group_of[i.song_id] == group_of[song] for i in items))
    assert np.mean(shares) >= 9.5 and min(shares) >= 8
    group_of_artist = {
        a: group_of[s] for a, s in zip(model.songs["artist_name"], model.song_ids, strict=True)
    }
    for artist, group in group_of_artist.items():
        near = recommender.similar_artists(artist, 3)
        assert sum(group_of_artist[a.artist_name] == group for a in near) >= 2, artist
