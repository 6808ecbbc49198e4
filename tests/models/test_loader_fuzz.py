"""The model loader on generated damage: consistent with its manifest, but malformed inside.

Whatever a file is replaced with (other arrays, other dtypes and shapes, NaN, archives,
bytes, other JSON or Parquet), load_model either loads a usable model or raises ModelError
with one line; nothing else escapes, so `songrec recommend` and the page never show a
traceback.
"""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from songrec.models.artifact import MANIFEST, file_sha256, load_model
from songrec.models.errors import ModelError
from songrec.models.recommender import Recommender

ARRAYS = ("item_factors.npy", "item_bias.npy", "rank_vectors.npy", "rank_listeners.npy")


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _npz(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, a=array)
    return buffer.getvalue()


def _filled(shape: tuple, dtype: type, fill: float) -> np.ndarray:
    if np.issubdtype(dtype, np.integer) and not np.isfinite(fill):
        fill = 0  # an integer array cannot hold NaN or infinity
    return np.full(shape, fill, dtype=dtype)


arrays = st.builds(
    _filled,
    st.sampled_from([(), (0,), (90,), (89,), (90, 8), (90, 4), (8, 90), (90, 8, 1)]),
    st.sampled_from([np.float32, np.float64, np.int64, np.float16]),
    st.sampled_from([0.0, 1.5, np.nan, np.inf, -1.0]),
)
params_edits = st.sampled_from(
    [
        lambda p: p.pop("global_mean"),
        lambda p: p.update(global_mean=None),
        lambda p: p.update(ranking="x"),
        lambda p: p["ranking"].update(k=-3),
        lambda p: p["ranking"].update(alpha="high"),
        lambda p: p["ranking"].pop("singular_values"),
        lambda p: p["ranking"].update(singular_values=["a"]),
        lambda p: p.clear(),
    ]
)


@st.composite
def damage(draw):
    kind = draw(st.sampled_from(["array", "archive", "bytes", "params", "songs"]))
    if kind in ("array", "archive"):
        array = draw(arrays)
        return draw(st.sampled_from(ARRAYS)), _npy(array) if kind == "array" else _npz(array)
    if kind == "bytes":
        name = draw(st.sampled_from([*ARRAYS, "params.json", "songs.parquet"]))
        return name, draw(st.binary(max_size=64))
    if kind == "params":
        return "params.json", draw(params_edits)
    return "songs.parquet", draw(st.sampled_from(["drop", "rows", "types"]))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(damage())
def test_only_model_errors_escape_the_loader(model_dir, tmp_path_factory, change) -> None:
    folder = shutil.copytree(model_dir, tmp_path_factory.mktemp("damaged") / "m")
    name, what = change
    path = folder / name
    if name == "params.json" and callable(what):
        params = json.loads(path.read_text())
        what(params)
        path.write_text(json.dumps(params))
    elif name == "songs.parquet" and isinstance(what, str):
        songs = pd.read_parquet(path)
        if what == "drop":
            songs = songs.drop(columns=["track_name"])
        elif what == "rows":
            songs = songs.iloc[:-1]
        else:
            songs["plays"] = songs["plays"].astype(str)
        songs.to_parquet(path, index=False)
    else:
        path.write_bytes(what)
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["files"][name] = {"sha256": file_sha256(path), "bytes": path.stat().st_size}
    (folder / MANIFEST).write_text(json.dumps(manifest))
    try:
        model = load_model(folder)
    except ModelError as exc:
        assert "\n" not in str(exc)
        return
    # What loads must serve: a recommendation and similar songs without an exception.
    recommender = Recommender(model)
    recommender.recommend([(model.song_ids[0], 9), (model.song_ids[3], 2)], 5, explain=False)
    recommender.similar_songs(model.song_ids[0], 3)
