"""The whole training run on planted-taste data (tiny grid); what the model keeps of its
data (the source's kind, recording MBIDs)."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from surprise import SVD

from songrec.app.cli import cli
from songrec.etl.mbids import is_mbid
from songrec.etl.sample import SampleSpec, sample_listens
from songrec.models.artifact import load_model
from songrec.models.errors import ModelError
from songrec.models.rating.trainset import trainset_from_frame
from songrec.models.train import holdout_scores, save_result, train


def test_train_picks_the_best_svd_and_fits_it_on_everything(model_dir, model, taste):
    ratings, songs, _ = taste
    results = pd.read_csv(model_dir / "gscv_results.csv")
    for column in (
        "algorithm",
        "params",
        "rmse",
        "mae",
        "rmse_std",
        "mae_std",
        "fit_time",
        "test_time",
        "status",
    ):
        assert column in results.columns
    svd = results[results["algorithm"] == "SVD"]
    best = json.loads(svd.loc[svd["rmse"].idxmin(), "params"])
    params = model.params
    assert params["n_factors"] == best["n_factors"] == model.n_factors
    assert params["cv"]["rmse"] == pytest.approx(svd["rmse"].min())
    assert 0 < params["holdout"]["rmse"] < 5 and params["holdout"]["test_ratings"] > 0
    assert params["trim"]["songs_kept"] == model.n_songs == songs["song_id"].nunique()
    # The saved factors are the SVD fitted on all kept ratings, in the song table's order.
    algo = SVD(
        **{k: params[k] for k in ("n_factors", "n_epochs", "lr_all", "reg_all")},
        random_state=params["seed"],
    )
    trainset = trainset_from_frame(ratings)
    algo.fit(trainset)
    rows = [trainset.to_inner_iid(s) for s in model.song_ids]
    np.testing.assert_allclose(model.item_factors, algo.qi[rows].astype(np.float32))
    np.testing.assert_allclose(model.item_bias, algo.bi[rows].astype(np.float32))
    assert model.global_mean == pytest.approx(ratings["rating"].mean())


def test_holdout_is_scored_on_unseen_ratings(taste):
    ratings, _, _ = taste
    params = {"n_factors": 8, "n_epochs": 30, "lr_all": 0.01, "reg_all": 0.05}
    scores = holdout_scores(ratings, params, seed=1)
    assert scores["train_ratings"] + scores["test_ratings"] == len(ratings)
    assert 0.15 < scores["test_ratings"] / len(ratings) < 0.25
    mean_only = float(np.sqrt(((ratings["rating"] - ratings["rating"].mean()) ** 2).mean()))
    assert scores["rmse"] < mean_only  # the taste structure is learnable


def test_bad_arguments(taste_dir, tiny_grid):
    with pytest.raises(ModelError, match="--jobs"):
        train(taste_dir, grid=str(tiny_grid), jobs=0)
    with pytest.raises(ModelError, match="not quick, full"):
        train(taste_dir, grid="huge")


def _track_mbid(track: str) -> str:
    """A made-up recording MBID per track name, whatever its case and spacing."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, " ".join(track.lower().split())))


def _sample_folder(out, *, as_dump: bool):
    """A small `etl sample` folder, or the same listens written as a ListenBrainz JSON
    listens dump (a real format, with a recording MBID on most listens) and read by
    `etl dump`."""
    size = ["--users", "80", "--songs", "120", "--listens", "8000", "--seed", "5"]
    if not as_dump:
        args = ["etl", "sample", "--out", str(out), *size]
        result = CliRunner().invoke(cli, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return out
    lines = []
    spec = SampleSpec(users=80, songs=120, listens=8000, seed=5)
    for batch in sample_listens(spec):
        for row in batch.to_pylist():
            # One id per track name; every seventh listen an unmapped one, some upper-cased.
            mbid = _track_mbid(row["track_name"])
            n = len(lines)
            info = {} if n % 7 == 0 else {"recording_mbid": mbid.upper() if n % 5 == 0 else mbid}
            meta = {k: row[k] for k in ("artist_name", "track_name")}
            listen = {
                "user_name": row["user_name"],
                "timestamp": int(row["listened_at"].timestamp()),
                "track_metadata": {**meta, "additional_info": info},
            }
            lines.append(json.dumps(listen))
    dump = out.parent / f"{out.name}.listens"
    dump.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(cli, ["etl", "dump", str(dump), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_the_model_records_its_data_source_and_recording_ids(tmp_path, tiny_grid):
    made_up = _sample_folder(tmp_path / "sample", as_dump=False)
    real = _sample_folder(tmp_path / "dump", as_dump=True)
    models = {}
    for name, folder in (("sample", made_up), ("dump", real)):
        result = train(folder, top_songs=100, grid=str(tiny_grid), jobs=1, seed=2)
        fresh = result.model
        save_result(result, tmp_path / f"model-{name}")
        models[name] = (fresh, load_model(tmp_path / f"model-{name}"))
    fresh, loaded = models["sample"]
    for model in (fresh, loaded):
        assert model.synthetic is True
        assert model.data_source["kind"] == "sample"
        assert model.data_source["description"].startswith("sample(")
        assert all(m is None for m in model.recording_mbids)
    assert loaded.manifest["data_source"] == loaded.data_source  # what the app reads
    fresh, loaded = models["dump"]
    for model in (fresh, loaded):
        assert model.synthetic is False
        assert model.data_source["kind"] == "listenbrainz-dump"
        assert model.data_source["description"].startswith("dump:")
    # The ids of songs.parquet, row for row, canonical, and through save and load.
    songs = pq.read_table(tmp_path / "dump" / "songs.parquet").to_pylist()
    by_song = {s["song_id"]: s["recording_mbid"] for s in songs}
    expected = [by_song[sid] for sid in loaded.song_ids]
    assert list(loaded.recording_mbids) == list(fresh.recording_mbids) == expected
    assert all(is_mbid(m) for m in expected) and len(expected) == loaded.n_songs == 100
    assert loaded.recording_mbid(0) == expected[0]
    assert expected[0] == _track_mbid(loaded.track_names[0])
