"""A small model trained once per session by the models' own `train`, and page helpers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from songrec.etl.songs import song_id
from songrec.models.artifact import load_model, save_model
from songrec.models.train import train

APP = Path(__file__).resolve().parents[2] / "app" / "streamlit_app.py"
SVD_ONLY_GRID = {
    "folds": 2,
    "algorithms": {
        "SVD": {"n_factors": [8], "n_epochs": [25], "lr_all": [0.01], "reg_all": [0.05]}
    },
}


def listening_data(
    groups: int = 4, artists_per_group: int = 3, songs_per_artist: int = 8, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(ratings, songs): listeners of each taste group rate its artists high, others low."""
    rng = np.random.default_rng(seed)
    n_songs = groups * artists_per_group * songs_per_artist
    group = np.arange(n_songs) // (artists_per_group * songs_per_artist)
    artist = [
        f"Band {chr(65 + g)}{(i // songs_per_artist) % artists_per_group}"
        for i, g in enumerate(group)
    ]
    # Ids as the ETL makes them (a history file is matched by its names), a few per seed
    # different so that two models do not share songs.
    tracks = [f"Song {i:03d}" + ("" if seed == 1 else f" ({seed})") for i in range(n_songs)]
    song_ids = [song_id(a, t) for a, t in zip(artist, tracks, strict=True)]
    rows = []
    for g in range(groups):
        own = [s for s, sg in zip(song_ids, group, strict=True) if sg == g]
        other = [s for s, sg in zip(song_ids, group, strict=True) if sg != g]
        for u in range(30):
            user = f"listener_{g}_{u:02d}"
            for sid in rng.choice(own, 14, replace=False):
                rows.append((user, sid, int(rng.integers(6, 11))))
            for sid in rng.choice(other, 8, replace=False):
                rows.append((user, sid, int(rng.integers(1, 4))))
    ratings = pd.DataFrame(rows, columns=["user_name", "song_id", "rating"])
    ratings["rating"] = ratings["rating"].astype("int8")
    plays = ratings.groupby("song_id")["rating"].sum().reindex(song_ids, fill_value=0)
    songs = pd.DataFrame(
        {
            "song_id": song_ids,
            "artist_name": artist,
            "track_name": tracks,
            "plays": plays.to_numpy().astype("int64"),
            "raw_plays": (plays.to_numpy() * 2).astype("int64"),
            "listeners": ratings.groupby("song_id")
            .size()
            .reindex(song_ids, fill_value=0)
            .to_numpy()
            .astype("int64"),
        }
    )
    return ratings, songs


def build_model(folder: Path, seed: int = 1, report: dict | None = None) -> Path:
    """Train the small model with the models' `train` and save it with `save_model`;
    `report` is written as the data folder's etl_report.json (what the ETL says it read)."""
    ratings, songs = listening_data(seed=seed)
    data = folder / "data"
    data.mkdir(parents=True)
    ratings.to_parquet(data / "ratings.parquet", index=False)
    songs.to_parquet(data / "songs.parquet", index=False)
    if report is not None:
        (data / "etl_report.json").write_text(json.dumps(report))
    grid = folder / "grid.json"
    grid.write_text(json.dumps(SVD_ONLY_GRID))
    result = train(data, top_songs=10_000, grid=str(grid), jobs=1, seed=seed)
    return save_model(
        result.model, folder / "model", ratings=result.ratings, fingerprint=result.fingerprint
    )


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """The session's small model folder (do not change it; copy it to tamper with it)."""
    return build_model(tmp_path_factory.mktemp("app_model"))


@pytest.fixture(scope="session")
def other_model_dir(tmp_path_factory) -> Path:
    """A model of other listening data (other song ids): a retrain on new data."""
    return build_model(tmp_path_factory.mktemp("other_model"), seed=2)


@pytest.fixture(scope="session")
def synthetic_model_dir(tmp_path_factory) -> Path:
    """The small model as if trained on `songrec etl sample` output."""
    report = {"source": "sample(users=120)", "source_kind": "sample", "synthetic": True}
    return build_model(tmp_path_factory.mktemp("synthetic_model"), report=report)


@pytest.fixture(scope="session")
def model(model_dir):
    """The session's model, loaded separately from the page's cached copy."""
    return load_model(model_dir)


@pytest.fixture
def page_env(model_dir, tmp_path, monkeypatch) -> Path:
    """Point the page at the session model and a fresh list store; returns the store path."""
    lists = tmp_path / "lists.sqlite3"
    monkeypatch.setenv("SONGREC_MODEL", str(model_dir))
    monkeypatch.setenv("SONGREC_LISTS", str(lists))
    return lists


@pytest.fixture
def tampered_model_dir(model_dir, tmp_path) -> Path:
    """A copy of the model whose factors were changed after training."""
    copy = tmp_path / "tampered"
    shutil.copytree(model_dir, copy)
    factors = copy / "item_factors.npy"
    data = bytearray(factors.read_bytes())
    data[-1] ^= 0xFF
    factors.write_bytes(bytes(data))
    return copy
