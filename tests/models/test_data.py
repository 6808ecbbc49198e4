"""Reading a ratings folder and the top-N trim."""

from __future__ import annotations

import pandas as pd
import pytest

from songrec.models.data import load_ratings, ratings_fingerprint, trim_top_songs
from songrec.models.errors import ModelError


def test_load_checks_the_folder(tmp_path, taste, folder_writer):
    ratings, songs, _ = taste
    with pytest.raises(ModelError, match="does not exist"):
        load_ratings(tmp_path / "nowhere")
    folder = folder_writer(tmp_path / "bad", ratings.drop(columns="rating"), songs)
    with pytest.raises(ModelError, match="lacks column"):
        load_ratings(folder)
    broken = ratings.assign(rating=ratings["rating"].astype(int) + 5)
    with pytest.raises(ModelError, match="outside 1..10"):
        load_ratings(folder_writer(tmp_path / "range", broken, songs))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="ratings.parquet not found"):
        load_ratings(tmp_path / "empty")


def test_trim_keeps_most_played_songs_and_their_users():
    ratings = pd.DataFrame(
        {
            "user_name": ["b", "a", "a", "c", "c"],
            "song_id": ["s1", "s2", "s1", "s3", "s4"],
            "rating": [5, 3, 10, 1, 2],
        }
    )
    songs = pd.DataFrame(
        {
            "song_id": ["s1", "s2", "s3", "s4", "s5"],
            "artist_name": list("ABCDE"),
            "track_name": list("vwxyz"),
            "plays": [30, 20, 20, 5, 100],  # s5 has no ratings: never kept
        }
    )
    kept, kept_songs, report = trim_top_songs(ratings, songs, 2)
    assert kept_songs["song_id"].tolist() == ["s1", "s2"]  # s2 beats s3 on the id tie-break
    assert kept[["user_name", "song_id"]].values.tolist() == [["a", "s1"], ["a", "s2"], ["b", "s1"]]
    assert (report.songs_kept, report.users_kept, report.ratings_kept) == (2, 2, 3)
    assert (report.users_before, report.ratings_before) == (3, 5)
    assert report.density == pytest.approx(3 / 4)
    with pytest.raises(ModelError, match="at least 1"):
        trim_top_songs(ratings, songs, 0)


def test_fingerprint_ignores_row_order_but_not_values(taste):
    ratings, _, _ = taste
    shuffled = ratings.sample(frac=1.0, random_state=1)
    assert ratings_fingerprint(shuffled) == ratings_fingerprint(ratings)
    changed = ratings.copy()
    changed.loc[0, "rating"] = 11 - changed.loc[0, "rating"]
    assert ratings_fingerprint(changed) != ratings_fingerprint(ratings)
