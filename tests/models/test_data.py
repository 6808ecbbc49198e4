"""Reading a ratings folder (its songs' recording ids, its source) and the top-N trim."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from songrec.models.data import folder_source, load_ratings, ratings_fingerprint, trim_top_songs
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


A = "c7d0bf6e-b2aa-4ffa-bded-2448415b39b0"


def test_recording_ids_are_optional_and_checked(tmp_path, taste, folder_writer):
    ratings, songs, _ = taste
    # A folder written before the ETL kept ids: every song's is None.
    _, read = load_ratings(folder_writer(tmp_path / "old", ratings, songs))
    assert read["recording_mbid"].tolist() == [None] * len(songs)
    # Nulls of any kind read as None; a value that is no id is dropped, not trusted.
    ids = [A, None, float("nan"), A.upper(), "junk"] + [None] * (len(songs) - 5)
    with_ids = songs.assign(recording_mbid=pd.Series(ids, dtype=object))
    _, read = load_ratings(folder_writer(tmp_path / "new", ratings, with_ids))
    assert read["recording_mbid"].tolist()[:5] == [A, None, None, None, None]
    # The trim keeps the column with its song.
    _, kept_songs, _ = trim_top_songs(ratings, read, 10)
    assert "recording_mbid" in kept_songs.columns


def test_folder_source_reads_the_etl_report(tmp_path):
    assert folder_source(tmp_path) == {"kind": "unknown", "synthetic": False, "description": None}
    report = {"source": "sample(users=5)", "source_kind": "sample", "synthetic": True}
    (tmp_path / "etl_report.json").write_text(json.dumps(report))
    assert folder_source(tmp_path) == {
        "kind": "sample",
        "synthetic": True,
        "description": "sample(users=5)",
    }
    # A report from before the field: its text, an unknown kind.
    (tmp_path / "etl_report.json").write_text(json.dumps({"source": "dump:x"}))
    assert folder_source(tmp_path) == {
        "kind": "unknown",
        "synthetic": False,
        "description": "dump:x",
    }
