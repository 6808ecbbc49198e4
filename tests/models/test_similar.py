"""Item-to-item: similar songs and artists from the factors, search and listings."""

from __future__ import annotations

import pytest

from songrec.models.errors import ModelError
from songrec.models.search import search_songs
from songrec.models.similar import (
    artists,
    similar_artists,
    similar_songs,
    songs_by_artist,
)


def test_similar_songs_come_from_the_same_taste_group(model, taste):
    _, _, group_of = taste
    for group in range(3):
        song = next(s for s in model.song_ids if group_of[s] == group)
        items = similar_songs(model, song, 10)
        assert len(items) == 10 and song not in {i.song_id for i in items}
        assert sum(group_of[i.song_id] == group for i in items) >= 9
        sims = [i.similarity for i in items]
        assert sims == sorted(sims, reverse=True) and all(-1 <= s <= 1 for s in sims)
    with pytest.raises(ModelError, match="unknown song id"):
        similar_songs(model, "0000000000000000")


def test_similar_artists_share_the_group(model):
    # Artist names are "Artist <group>-<n>": neighbours should carry the same group.
    items = similar_artists(model, "artist 1-0", 4)  # case-insensitive lookup
    assert all(i.artist_name.startswith("Artist 1-") for i in items)
    assert "Artist 1-0" not in {i.artist_name for i in items} and all(i.songs > 0 for i in items)
    with pytest.raises(ModelError, match="unknown artist"):
        similar_artists(model, "Nobody")


def test_search_and_listings(model):
    found = search_songs(model, "artist 2-3 track", limit=50)
    assert len(found) > 0 and (found["artist_name"] == "Artist 2-3").all()
    assert found["plays"].is_monotonic_decreasing
    assert search_songs(model, "no such words").empty
    with pytest.raises(ModelError, match="empty"):
        search_songs(model, "   ")
    names = artists(model)
    assert len(names) == model.songs["artist_name"].nunique()
    assert names == sorted(names, key=str.casefold)
    rows = songs_by_artist(model, names[0])
    assert (rows["artist_name"] == names[0]).all() and rows["plays"].is_monotonic_decreasing
