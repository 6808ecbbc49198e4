"""Small ratings folders with planted taste groups, and models trained on them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from songrec.models.artifact import TrainedModel, load_model
from songrec.models.train import save_result, train

TINY_GRID = {
    "folds": 2,
    "algorithms": {
        "NormalPredictor": {},
        "BaselineOnly": {},
        "SVD": {"n_factors": [8, 16], "n_epochs": [30], "lr_all": [0.01], "reg_all": [0.05]},
        "KNNWithMeans": {"k": [10], "sim_options": {"name": ["msd"], "user_based": [False]}},
    },
    "ranking": {"gamma": [0, 1], "alpha": [0, 0.2], "k": [4, 8], "shrink": [0, 2]},
}


def taste_data(
    groups: int = 3,
    users_per_group: int = 40,
    songs_per_group: int = 30,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """(ratings, songs, group of each song): each group of listeners loves its own songs.

    A listener rates 15 songs of their group high (7..10) and 8 songs of other groups low
    (1..3), except group 0's songs, which everyone rates 4..7: group 0 has the highest item
    biases and the most plays, so the generic list (global mean + item bias, or popularity)
    is group 0, and a list that follows another group's taste must come from the factors.
    """
    rng = np.random.default_rng(seed)
    song_ids = [f"{i:016x}" for i in rng.choice(2**40, groups * songs_per_group, replace=False)]
    group_of = {sid: i // songs_per_group for i, sid in enumerate(song_ids)}
    rows = []
    for g in range(groups):
        own = [s for s in song_ids if group_of[s] == g]
        other = [s for s in song_ids if group_of[s] != g]
        for u in range(users_per_group):
            user = f"user_{g}_{u:03d}"
            for sid in rng.choice(own, 15, replace=False):
                rows.append((user, sid, int(rng.integers(7, 11))))
            for sid in rng.choice(other, 8, replace=False):
                low, high = (4, 8) if group_of[sid] == 0 else (1, 4)
                rows.append((user, sid, int(rng.integers(low, high))))
    ratings = pd.DataFrame(rows, columns=["user_name", "song_id", "rating"])
    ratings["rating"] = ratings["rating"].astype("int8")
    counts = ratings.groupby("song_id")["rating"].agg(["size", "sum"])
    boost = np.array([3 if group_of[s] == 0 else 1 for s in counts.index])
    songs = pd.DataFrame(
        {
            "song_id": counts.index,
            "artist_name": [f"Artist {group_of[s]}-{i % 5}" for i, s in enumerate(counts.index)],
            "track_name": [f"Track {i:03d}" for i in range(len(counts))],
            "plays": (counts["sum"].to_numpy() * boost).astype("int64"),
            "raw_plays": (counts["sum"].to_numpy() * boost * 2).astype("int64"),
            "listeners": counts["size"].to_numpy().astype("int64"),
        }
    )
    return ratings, songs, group_of


def write_folder(folder: Path, ratings: pd.DataFrame, songs: pd.DataFrame) -> Path:
    """A ratings folder in the ETL's layout (ratings.parquet, songs.parquet)."""
    folder.mkdir(parents=True, exist_ok=True)
    ratings.to_parquet(folder / "ratings.parquet", index=False)
    songs.to_parquet(folder / "songs.parquet", index=False)
    return folder


@pytest.fixture(scope="session")
def folder_writer():
    """`write_folder(folder, ratings, songs)` for tests that build their own folder."""
    return write_folder


@pytest.fixture(scope="session")
def taste_factory():
    """`taste_data(groups, users_per_group, songs_per_group, seed)`."""
    return taste_data


@pytest.fixture(scope="session")
def taste() -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """The planted-taste data set."""
    return taste_data()


@pytest.fixture(scope="session")
def taste_dir(tmp_path_factory, taste) -> Path:
    """The planted-taste data as a ratings folder."""
    ratings, songs, _ = taste
    return write_folder(tmp_path_factory.mktemp("taste") / "data", ratings, songs)


@pytest.fixture(scope="session")
def tiny_grid(tmp_path_factory) -> Path:
    """A JSON grid small enough for unit tests."""
    import json

    path = tmp_path_factory.mktemp("grid") / "tiny.json"
    path.write_text(json.dumps(TINY_GRID))
    return path


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory, taste_dir, tiny_grid) -> Path:
    """A model trained (tiny grid) and saved once for the whole session."""
    result = train(taste_dir, top_songs=1000, grid=str(tiny_grid), jobs=1, seed=3)
    out = tmp_path_factory.mktemp("model") / "model"
    save_result(result, out)
    return out


@pytest.fixture(scope="session")
def model(model_dir) -> TrainedModel:
    """The session's model, loaded (shared: tests must not change it)."""
    return load_model(model_dir)
