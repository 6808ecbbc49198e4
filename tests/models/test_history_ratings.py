"""A listener's history -> ratings for a model trained by the real ETL and `train`.

The model here is trained on a ratings folder the ETL wrote from listens (transform
"log", recorded by the model), so its song ids are the ETL's: a history holding the same
listens as one training listener must be rated exactly as the ETL rated that listener.
"""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pytest

from songrec.etl.history import History, SongPlays, read_history
from songrec.etl.pipeline import EtlRun, run_listens
from songrec.etl.ratings import DEFAULT_TRANSFORM, transform_ratings
from songrec.etl.songs import song_id
from songrec.models.artifact import load_model
from songrec.models.errors import ModelError
from songrec.models.history import (
    HISTORY_USER,
    ImportedHistory,
    import_history,
    model_transform,
    summary,
)
from songrec.models.train import save_result, train

TRANSFORM = "log"
GRID = {
    "folds": 2,
    "algorithms": {"SVD": {"n_factors": [6], "n_epochs": [20]}},
    "ranking": {"gamma": [1.0], "alpha": [0.0], "beta_offset": [0.0], "k": [4], "shrink": [0.0]},
}


def taste_listens(seed: int = 0) -> list[tuple[str, str, str]]:
    """(user, artist, track) listens: three taste groups, each playing its own two
    artists a lot (1..25 plays a song) and a few other songs once or twice."""
    rng = np.random.default_rng(seed)
    songs = {
        g: [(f"Band {'ABC'[g]}{a}", f"Song {a}{t}") for a in range(2) for t in range(10)]
        for g in range(3)
    }
    listens = []
    for g in range(3):
        others = [s for h in range(3) if h != g for s in songs[h]]
        for u in range(20):
            user = f"listener_{g}_{u:02d}"
            for i in rng.choice(20, 12, replace=False):
                listens += [(user, *songs[g][i])] * int(rng.integers(1, 26))
            for i in rng.choice(40, 4, replace=False):
                listens += [(user, *others[i])] * int(rng.integers(1, 3))
    return listens


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(model, ETL ratings folder, listens): listens -> ETL (log) -> train -> save -> load."""
    folder = tmp_path_factory.mktemp("history_model")
    listens = taste_listens()
    table = pa.table(
        {
            "user_name": [x[0] for x in listens],
            "artist_name": [x[1] for x in listens],
            "track_name": [x[2] for x in listens],
            "listened_at": pa.array(
                [1_600_000_000 + 60 * i for i in range(len(listens))], pa.timestamp("s", tz="UTC")
            ),
        }
    )
    data = folder / "data"
    run_listens(EtlRun(source="test", out_dir=data, transform=TRANSFORM), [table])
    grid = folder / "grid.json"
    grid.write_text(json.dumps(GRID))
    result = train(data, top_songs=1000, grid=str(grid), jobs=1, seed=1)
    save_result(result, folder / "model")
    return load_model(folder / "model"), data, listens


def export_of(listens: list[tuple[str, str]]) -> bytes:
    """(artist, track) listens as the lines of a ListenBrainz user export."""
    return b"".join(
        orjson.dumps(
            {
                "listened_at": 1_700_000_000 + i,
                "track_metadata": {"artist_name": artist, "track_name": track},
            }
        )
        + b"\n"
        for i, (artist, track) in enumerate(listens)
    )


def test_the_model_records_the_etl_transform(trained):
    model, _, _ = trained
    assert model_transform(model) == (TRANSFORM, None)


def test_a_training_listeners_history_gets_the_etls_ratings(trained):
    model, data, listens = trained
    user = "listener_1_03"
    mine = [(artist, track) for u, artist, track in listens if u == user]
    imported = import_history(read_history(export_of(mine), "mine.jsonl"), model)
    ratings = pd.read_parquet(data / "ratings.parquet")
    etl = ratings[ratings.user_name == user]
    assert dict(imported.entries) == dict(zip(etl.song_id, etl.rating.astype(int), strict=True))
    assert (imported.matched, imported.unmatched, imported.unmatched_examples) == (16, 0, [])
    assert imported.transform == TRANSFORM and imported.transform_note is None
    # Most played first.
    plays = Counter(song_id(a, t) for a, t in mine)
    order = [plays[sid] for sid, _ in imported.entries]
    assert order == sorted(order, reverse=True)
    assert imported.listens_kept == imported.listens_read == len(mine)
    assert imported.matched_plays == len(mine) and imported.unmatched_plays == 0


def test_unmatched_songs_are_reported_and_the_transform_sees_the_whole_history(trained):
    model, _, listens = trained
    mine = [(a, t) for u, a, t in listens if u == "listener_2_00"]
    strangers = [("Nobody Known", "First")] * 40 + [("Nobody Known", "Second")] * 3
    strangers += [("Also Unknown", f"Song {i}") for i in range(6)]
    history = read_history(export_of(mine + strangers), "h.jsonl")
    imported = import_history(history, model, limit=5)
    assert imported.matched == 16 and imported.unmatched == 8 and imported.songs == 24
    assert imported.unmatched_examples[:2] == [
        ("Nobody Known", "First"),
        ("Nobody Known", "Second"),
    ]
    assert len(imported.unmatched_examples) == 5
    assert len(imported.entries) == 5 and imported.left_out == 11
    assert imported.unmatched_plays == len(strangers)
    # Rated over the whole history (the strangers' 40 plays set the listener's top), then
    # matched: the ratings are those of transform_ratings on every song of the history.
    table = history.plays_table("someone")
    whole = transform_ratings(table, TRANSFORM).to_pandas()
    expected = dict(zip(whole.song_id, whole.rating.astype(int), strict=True))
    assert all(rating == expected[sid] for sid, rating in imported.entries)
    assert all(model.has_song(sid) for sid, _ in imported.entries)
    # ... which is not what rating the matched songs alone would give.
    alone = (
        pa.table(
            {
                "user_name": ["someone"] * len(mine),
                "song_id": [song_id(a, t) for a, t in mine],
            }
        )
        .group_by(["user_name", "song_id"])
        .aggregate([([], "count_all")])
    )
    alone = alone.rename_columns(["user_name", "song_id", "plays"])
    rated_alone = transform_ratings(alone, TRANSFORM).to_pandas()
    alone_ratings = dict(zip(rated_alone.song_id, rated_alone.rating.astype(int), strict=True))
    assert any(rating != alone_ratings[sid] for sid, rating in imported.entries)
    line = summary(imported)
    total = len(mine) + len(strangers)
    assert line == (
        f"history: {total:,} listens, 24 songs, 16 in the catalogue (8 not); the 5 most played kept"
    )
    assert "\n" not in line


def test_a_model_without_a_recorded_transform_falls_back_to_the_default(trained):
    model, _, listens = trained
    params = {**model.params, "ranking": {**model.params["ranking"], "transform": "-"}}
    unrecorded = type(model)(
        song_ids=model.song_ids,
        item_factors=model.item_factors,
        item_bias=model.item_bias,
        global_mean=model.global_mean,
        params=params,
        songs=model.songs,
        ranking=model.ranking,
    )
    transform, note = model_transform(unrecorded)
    assert transform == DEFAULT_TRANSFORM and "does not record" in note
    mine = [(a, t) for u, a, t in listens if u == "listener_0_05"]
    imported = import_history(read_history(export_of(mine), "h.jsonl"), unrecorded)
    plays = Counter(song_id(a, t) for a, t in mine)
    assert dict(imported.entries) == {sid: min(n, 10) for sid, n in plays.items()}  # cap
    assert imported.transform_note == note
    # A transform given explicitly wins over the model's.
    forced = import_history(read_history(export_of(mine), "h.jsonl"), model, transform="cap")
    assert forced.entries == imported.entries and forced.transform_note is None


def test_no_song_in_the_catalogue_and_a_bad_limit(trained):
    model, _, _ = trained
    history = History(
        plays=(SongPlays(song_id("X", "Y"), "X", "Y", 3, None),),
        listens_read=4,
        listens_kept=3,
        rejected_by_reason={"bad_track_name": 1},
        format="lastfm-csv",
    )
    imported = import_history(history, model)
    assert isinstance(imported, ImportedHistory)
    assert (imported.entries, imported.matched, imported.unmatched) == ([], 0, 1)
    assert summary(imported) == (
        "history: 3 listens (1 more rejected: bad_track_name 1), 1 song, 0 in the catalogue (1 not)"
    )
    with pytest.raises(ModelError, match="limit"):
        import_history(history, model, limit=-1)
    assert HISTORY_USER == "you"
