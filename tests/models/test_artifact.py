"""The model folder: round trip, checksums, atomic replacement, no pickle."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from songrec.models.artifact import MANIFEST, REQUIRED, file_sha256, load_model, save_model
from songrec.models.data import ratings_fingerprint
from songrec.models.errors import ModelError


def test_round_trip_is_exact_and_read_only(model_dir, model, taste):
    again = load_model(model_dir)
    for name in ("item_factors", "item_bias", "song_ids"):
        np.testing.assert_array_equal(getattr(again, name), getattr(model, name))
        assert not getattr(model, name).flags.writeable
    assert model.item_factors.dtype == np.float32 and model.item_bias.dtype == np.float32
    pd.testing.assert_frame_equal(again.songs, model.songs)
    assert again.global_mean == model.global_mean and again.params == model.params
    assert model.songs["song_id"].tolist() == model.song_ids.tolist()
    assert model.index_of(model.song_ids[5]) == 5
    with pytest.raises(ModelError, match="unknown song id"):
        model.index_of("ffffffffffffffff")
    with pytest.raises(ValueError):
        model.item_factors[0, 0] = 1.0


def test_manifest_lists_every_file_with_its_checksum(model_dir, model):
    manifest = json.loads((model_dir / MANIFEST).read_text())
    on_disk = {p.name for p in model_dir.iterdir()} - {MANIFEST}
    assert set(manifest["files"]) == on_disk and set(REQUIRED) <= on_disk
    assert "gscv_results.csv" in on_disk
    for name, entry in manifest["files"].items():
        assert entry["sha256"] == file_sha256(model_dir / name)
        assert entry["bytes"] == (model_dir / name).stat().st_size
    assert manifest["versions"]["scikit-surprise"] and manifest["created_at"]
    kept = pd.read_parquet(model_dir / "ratings.parquet")
    assert manifest["training_data"]["sha256"] == ratings_fingerprint(kept)
    # Arrays are plain .npy: loadable without pickle.
    np.load(model_dir / "item_factors.npy", allow_pickle=False)


@pytest.mark.parametrize("name", ["item_factors.npy", "songs.parquet", "ratings.parquet"])
def test_a_changed_file_is_refused_naming_it(tmp_path, model_dir, name):
    copy = shutil.copytree(model_dir, tmp_path / "m")
    data = bytearray((copy / name).read_bytes())
    data[-20] ^= 0xFF
    (copy / name).write_bytes(bytes(data))
    with pytest.raises(ModelError, match=f"checksum mismatch for {name}"):
        load_model(copy)


def test_missing_pieces_are_clear_errors(tmp_path, model_dir):
    with pytest.raises(ModelError, match="does not exist"):
        load_model(tmp_path / "nothing")
    copy = shutil.copytree(model_dir, tmp_path / "m")
    (copy / "item_bias.npy").unlink()
    with pytest.raises(ModelError, match="item_bias.npy is missing"):
        load_model(copy)
    (copy / MANIFEST).unlink()
    with pytest.raises(ModelError, match="no manifest.json"):
        load_model(copy)
    (copy / MANIFEST).write_text("{}")
    with pytest.raises(ModelError, match="not a valid songrec manifest"):
        load_model(copy)
    manifest = json.loads((model_dir / MANIFEST).read_text())
    manifest["files"]["../evil"] = {"sha256": "0", "bytes": 0}
    (copy / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="bad file name"):
        load_model(copy)


def test_retrain_rechecks_the_ratings_file(tmp_path, model_dir):
    copy = shutil.copytree(model_dir, tmp_path / "m")
    model = load_model(copy)
    (copy / "ratings.parquet").write_bytes(b"changed after loading")
    with pytest.raises(ModelError, match="checksum mismatch for ratings.parquet"):
        model.read_ratings()


def test_save_refuses_to_overwrite_without_force_and_replaces_with_it(tmp_path, model):
    out = tmp_path / "out"
    save_model(model, out)
    before = load_model(out)
    with pytest.raises(ModelError, match="already exists; pass --force"):
        save_model(model, out)
    (out / "stale.txt").write_text("from an older model")
    save_model(before, out, force=True)
    assert not (out / "stale.txt").exists()
    np.testing.assert_array_equal(load_model(out).item_factors, model.item_factors)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary folder left behind


def test_a_failed_save_leaves_the_old_model(tmp_path, model):
    out = tmp_path / "out"
    save_model(model, out)
    before = file_sha256(out / MANIFEST)
    with pytest.raises(ModelError, match="cannot add a file"):
        save_model(model, out, extra_files={"params.json": b"{}"}, force=True)
    broken = type(model)(
        model.song_ids,
        model.item_factors,
        model.item_bias,
        1.0,
        {},
        model.songs,
        ranking=model.ranking,
    )  # no ratings: the save fails halfway
    with pytest.raises(ModelError, match="without its ratings"):
        save_model(broken, out, force=True)
    assert file_sha256(out / MANIFEST) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def _reseal(folder) -> None:
    """Rewrite the manifest so every file's checksum matches again (a consistent folder)."""
    manifest = json.loads((folder / MANIFEST).read_text())
    for name in manifest["files"]:
        path = folder / name
        manifest["files"][name] = {"sha256": file_sha256(path), "bytes": path.stat().st_size}
    (folder / MANIFEST).write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("name", "change", "message"),
    [
        ("rank_vectors.npy", lambda a: np.where(a == a.max(), np.nan, a), "not finite"),
        ("item_bias.npy", lambda a: np.full_like(a, np.inf), "not finite"),
        ("rank_vectors.npy", lambda a: a.astype(np.float32), "not a float16"),
        ("rank_listeners.npy", lambda a: a[:-1], "inconsistent ranking model"),
        ("item_factors.npy", lambda a: a[:, 0], "not a float32 array of 2"),
    ],
)
def test_consistent_but_malformed_arrays_are_refused(tmp_path, model_dir, name, change, message):
    folder = shutil.copytree(model_dir, tmp_path / "m")
    np.save(folder / name, change(np.load(folder / name)))
    _reseal(folder)
    with pytest.raises(ModelError, match=message):
        load_model(folder)


@pytest.mark.parametrize(
    "edit",
    [
        lambda p: p.pop("global_mean"),
        lambda p: p.update(global_mean="x"),
        lambda p: p.pop("ranking"),
        lambda p: p["ranking"].update(k=0),
        lambda p: p["ranking"].update(singular_values=[float("nan")]),
    ],
)
def test_consistent_but_malformed_params_are_refused(tmp_path, model_dir, edit):
    folder = shutil.copytree(model_dir, tmp_path / "m")
    params = json.loads((folder / "params.json").read_text())
    edit(params)
    (folder / "params.json").write_text(json.dumps(params))
    _reseal(folder)
    with pytest.raises(ModelError, match="params.json|ranking parameters"):
        load_model(folder)


def test_a_model_of_an_older_format_asks_for_a_retrain(tmp_path, model_dir):
    folder = shutil.copytree(model_dir, tmp_path / "m")
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["format"] = 1
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="retrain with `songrec train`"):
        load_model(folder)


def test_an_archive_under_an_array_name_is_refused(tmp_path, model_dir):
    folder = shutil.copytree(model_dir, tmp_path / "m")
    factors = np.load(folder / "item_factors.npy")
    with open(folder / "item_factors.npy", "wb") as handle:
        np.savez(handle, factors=factors)
    _reseal(folder)
    with pytest.raises(ModelError, match="item_factors.npy is not a single array"):
        load_model(folder)


@pytest.mark.parametrize("column", ["song_id", "artist_name", "track_name", "plays"])
def test_a_songs_table_without_a_needed_column_is_refused(tmp_path, model_dir, column):
    folder = shutil.copytree(model_dir, tmp_path / "m")
    songs = pd.read_parquet(folder / "songs.parquet").drop(columns=[column])
    songs.to_parquet(folder / "songs.parquet", index=False)
    _reseal(folder)
    with pytest.raises(ModelError, match=f"songs.parquet lacks column\\(s\\) {column}"):
        load_model(folder)


A = "c7d0bf6e-b2aa-4ffa-bded-2448415b39b0"
B = "2d6f51c6-afc5-457e-9c58-689679c08d30"


def _with_songs(model, songs: pd.DataFrame):
    """The model with another songs table (same rows)."""
    return dataclasses.replace(model, songs=songs)


def test_recording_ids_are_kept_through_save_and_load(tmp_path, model):
    ids = [A if i % 3 == 0 else B if i % 3 == 1 else None for i in range(model.n_songs)]
    mapped = _with_songs(model, model.songs.assign(recording_mbid=ids))
    assert list(mapped.recording_mbids) == ids and mapped.recording_mbid(1) == B
    assert not mapped.recording_mbids.flags.writeable
    save_model(mapped, tmp_path / "m")
    again = load_model(tmp_path / "m")
    assert list(again.recording_mbids) == ids
    assert [again.recording_mbid(i) for i in range(3)] == [A, B, None]
    column = pq.read_schema(tmp_path / "m" / "songs.parquet").field("recording_mbid")
    assert column.type == pa.string() and column.nullable
    # Every value null: still a string column, read back as None.
    none = _with_songs(model, model.songs.assign(recording_mbid=[None] * model.n_songs))
    save_model(none, tmp_path / "n")
    assert pq.read_schema(tmp_path / "n" / "songs.parquet").field("recording_mbid").type == (
        pa.string()
    )
    assert all(m is None for m in load_model(tmp_path / "n").recording_mbids)


def test_a_model_trained_on_a_folder_without_ids_has_none(model):
    # The planted-taste folder predates the column: every song's id is None.
    assert len(model.recording_mbids) == model.n_songs
    assert all(m is None for m in model.recording_mbids)


def test_an_older_model_folder_without_the_column_still_loads(tmp_path, model_dir):
    folder = shutil.copytree(model_dir, tmp_path / "m")
    songs = pd.read_parquet(folder / "songs.parquet")
    songs.drop(columns=["recording_mbid"], errors="ignore").to_parquet(
        folder / "songs.parquet", index=False
    )
    _reseal(folder)
    old = load_model(folder)
    assert "recording_mbid" not in old.songs.columns
    assert old.recording_mbid(0) is None and all(m is None for m in old.recording_mbids)


@pytest.mark.parametrize("bad", [A.upper(), " " + A, "not an id", A[:-1]])
def test_a_songs_table_with_a_bad_recording_id_is_refused(tmp_path, model_dir, bad):
    folder = shutil.copytree(model_dir, tmp_path / "m")
    songs = pd.read_parquet(folder / "songs.parquet")
    songs["recording_mbid"] = [bad] + [None] * (len(songs) - 1)
    songs.to_parquet(folder / "songs.parquet", index=False)
    _reseal(folder)
    with pytest.raises(ModelError, match="recording_mbid value\\(s\\) are not MusicBrainz"):
        load_model(folder)
    # Changed without a new checksum: refused before any value is read.
    copy = shutil.copytree(model_dir, tmp_path / "c")
    songs.to_parquet(copy / "songs.parquet", index=False)
    with pytest.raises(ModelError, match="checksum mismatch for songs.parquet"):
        load_model(copy)


def test_the_data_source_is_recorded_in_params_and_manifest(tmp_path, model_dir, model):
    # The planted-taste folder has no ETL report: an unknown, not synthetic, source.
    assert model.data_source == {"kind": "unknown", "synthetic": False, "description": None}
    assert model.synthetic is False
    manifest = json.loads((model_dir / MANIFEST).read_text())
    params = json.loads((model_dir / "params.json").read_text())
    assert manifest["data_source"] == params["data_source"] == model.data_source
    # A made-up source, saved and loaded.
    source = {"kind": "sample", "synthetic": True, "description": "sample(users=1)"}
    made_up = dataclasses.replace(model, params={**model.params, "data_source": source})
    save_model(made_up, tmp_path / "s")
    again = load_model(tmp_path / "s")
    assert again.data_source == source and again.synthetic is True
    assert again.manifest["data_source"] == source


def test_an_edited_data_source_is_refused(tmp_path, model_dir):
    # The manifest's copy must agree with the checksummed params.json.
    folder = shutil.copytree(model_dir, tmp_path / "m")
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["data_source"]["synthetic"] = True
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="data_source differs"):
        load_model(folder)
    # params.json edited: its checksum no longer matches.
    folder = shutil.copytree(model_dir, tmp_path / "p")
    params = json.loads((folder / "params.json").read_text())
    params["data_source"]["kind"] = "spark-dump"
    (folder / "params.json").write_text(json.dumps(params))
    with pytest.raises(ModelError, match="checksum mismatch for params.json"):
        load_model(folder)


def test_an_older_model_without_a_data_source_says_unknown(tmp_path, model_dir):
    folder = shutil.copytree(model_dir, tmp_path / "m")
    params = json.loads((folder / "params.json").read_text())
    del params["data_source"]
    (folder / "params.json").write_text(json.dumps(params))
    manifest = json.loads((folder / MANIFEST).read_text())
    del manifest["data_source"]
    (folder / MANIFEST).write_text(json.dumps(manifest))
    _reseal(folder)
    old = load_model(folder)
    assert old.data_source["kind"] == "unknown" and old.synthetic is False
