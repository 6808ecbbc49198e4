"""The ETL core: listens -> plays, songs, ratings; song identity; atomic output; sample, ratings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from click.testing import CliRunner

from songrec.app.cli import cli
from songrec.etl.errors import EtlError
from songrec.etl.listens import LISTEN_SCHEMA, Rejects
from songrec.etl.pipeline import SOURCE_KINDS, EtlRun, run_listens
from songrec.etl.ratings import TRANSFORMS
from songrec.etl.sample import SampleSpec, _catalog
from songrec.etl.songs import song_id


def _batches(listens, size: int = 7):
    """Listens as Arrow batches in LISTEN_SCHEMA, a few rows at a time."""
    for start in range(0, len(listens), size):
        part = listens[start : start + size]
        yield pa.Table.from_arrays(
            [
                pa.array([x.user for x in part]),
                pa.array([x.artist for x in part]),
                pa.array([x.track for x in part]),
                pa.array([x.ts for x in part], pa.int64()).cast(pa.timestamp("s", tz="UTC")),
                pa.array([x.mbid for x in part], pa.string()),
            ],
            schema=LISTEN_SCHEMA,
        )


def _run(listens, out: Path, force: bool = False, transform: str = "cap") -> dict:
    run = EtlRun(source="test", out_dir=out, force=force, transform=transform)
    return run_listens(run, _batches(listens))


def _tables(out: Path) -> dict[str, pd.DataFrame]:
    return {
        name: pd.read_parquet(out / f"{name}.parquet") for name in ("plays", "songs", "ratings")
    }


def test_folder_contents_equal_an_independent_count(tmp_path, lb, listens):
    report = _run(listens, tmp_path / "out")
    t = _tables(tmp_path / "out")
    plays = t["plays"]
    assert dict(
        zip(zip(plays.user_name, plays.song_id, strict=True), plays.plays, strict=True)
    ) == (lb.expected_plays(listens))
    # First and last listen of each pair.
    for row in plays.itertuples():
        times = [
            x.ts
            for x in listens
            if x.user == row.user_name and song_id(x.artist, x.track) == row.song_id
        ]
        assert row.first_listened_at.timestamp() == min(times)
        assert row.last_listened_at.timestamp() == max(times)
    assert lb.songs_of(tmp_path / "out") == lb.expected_songs(listens)
    ratings = t["ratings"]
    assert dict(
        zip(zip(ratings.user_name, ratings.song_id, strict=True), ratings.rating, strict=True)
    ) == {key: min(n, 10) for key, n in lb.expected_plays(listens).items()}
    assert report["pairs"] == len(plays) and report["songs"] == len(t["songs"])
    assert report["users"] == 3 and report["listens_read"] == len(listens)
    assert json.loads((tmp_path / "out" / "etl_report.json").read_text())["seconds"] >= 0
    # Songs are ordered by popularity, the reference's "top N" trim.
    assert list(t["songs"].plays) == sorted(t["songs"].plays, reverse=True)


def test_spelling_variants_are_one_song_with_the_most_common_spelling(tmp_path, lb, listens):
    _run(listens, tmp_path / "out")
    songs = _tables(tmp_path / "out")["songs"].set_index("song_id")
    golden = song_id("The Stranglers", "Golden Brown")
    # Spelled 4 ways over 8 plays; "The Stranglers / Golden Brown" 4 times.
    assert song_id("  THE  stranglers\t", "golden   BROWN ") == golden
    assert songs.loc[golden, ["artist_name", "track_name"]].tolist() == [
        "The Stranglers",
        "Golden Brown",
    ]
    assert songs.loc[golden, "raw_plays"] == 8 and songs.loc[golden, "listeners"] == 2
    # "Björk / Jóga" (4 plays) beats "björk / jóga" (1): case-folding is Unicode-aware.
    bjork = song_id("BJÖRK", "JÓGA")
    assert songs.loc[bjork, "artist_name"] == "Björk" and songs.loc[bjork, "raw_plays"] == 5
    # Altered State: 12 capped to 10 for alice, + 1 (bob) + 2 (carol, spelled with a tab).
    assert songs.loc[song_id("Sweet Garden", "Altered State"), "plays"] == 13
    assert len(songs) == 4


def test_song_ids_are_stable_across_runs_and_batchings(tmp_path, lb, listens):
    _run(listens, tmp_path / "a")
    run = EtlRun(source="test", out_dir=tmp_path / "b")
    run_listens(run, _batches(list(reversed(listens)), size=3))
    a, b = _tables(tmp_path / "a"), _tables(tmp_path / "b")
    for name in ("plays", "songs", "ratings"):
        pd.testing.assert_frame_equal(a[name], b[name])
    expected_ids = {song_id(x.artist, x.track) for x in listens}
    assert set(a["songs"].song_id) == expected_ids
    assert all(len(s) == 16 and int(s, 16) >= 0 for s in expected_ids)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _siblings(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir())


@pytest.mark.parametrize("failure", [EtlError("bad batch"), KeyboardInterrupt()])
def test_failed_run_leaves_the_previous_folder_untouched(tmp_path, lb, listens, failure):
    out = tmp_path / "out"
    _run(listens, out)
    before = _snapshot(out)

    def failing():
        yield from _batches(listens[:10])
        raise failure

    with pytest.raises(type(failure)):
        run_listens(EtlRun(source="test", out_dir=out, force=True), failing())
    assert _snapshot(out) == before
    assert _siblings(out) == ["out"]  # no temporary folder left behind


def test_failure_while_writing_leaves_no_temp_folder(tmp_path, lb, listens, monkeypatch):
    out = tmp_path / "out"
    _run(listens, out)
    before = _snapshot(out)

    def broken(report, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("songrec.etl.pipeline.write_report", broken)
    with pytest.raises(OSError):
        _run(listens[:5], out, force=True)
    assert _snapshot(out) == before and _siblings(out) == ["out"]


def test_existing_folder_is_replaced_only_with_force(tmp_path, lb, listens):
    out = tmp_path / "out"
    _run(listens, out)
    before = _snapshot(out)
    with pytest.raises(EtlError, match="--force"):
        _run(listens[:5], out)
    assert _snapshot(out) == before
    report = _run(listens[:5], out, force=True)
    assert report["listens_read"] == 5 and _snapshot(out) != before
    assert _siblings(out) == ["out"]


def test_no_valid_listens_is_an_error_and_writes_nothing(tmp_path):
    rejects = Rejects()
    rejects.add("invalid_json", "f:1")
    run = EtlRun(source="empty", out_dir=tmp_path / "out", rejects=rejects)
    with pytest.raises(EtlError, match="no valid listens"):
        run_listens(run, iter([LISTEN_SCHEMA.empty_table()]))
    assert _siblings(tmp_path / "out") == []


def _sample(out: Path, *extra: str) -> None:
    args = ["etl", "sample", "--out", str(out), "--users", "60", "--songs", "300"]
    result = CliRunner().invoke(cli, [*args, "--listens", "6000", *extra], catch_exceptions=False)
    assert result.exit_code == 0, result.output


def test_etl_sample_builds_a_deterministic_folder(tmp_path):
    _sample(tmp_path / "a")
    _sample(tmp_path / "b")
    _sample(tmp_path / "c", "--seed", "7")
    a, b, c = (_tables(tmp_path / x) for x in "abc")
    for name in ("plays", "songs", "ratings"):
        pd.testing.assert_frame_equal(a[name], b[name])
    assert not a["plays"].equals(c["plays"])
    report = json.loads((tmp_path / "a" / "etl_report.json").read_text())
    assert report["listens_read"] == a["plays"].plays.sum() and report["listens_rejected"] == 0
    # The sample says it is made up, for the models trained on it; and names no recordings.
    assert report["source_kind"] == "sample" and report["synthetic"] is True
    assert report["source"].startswith("sample(")
    assert a["songs"].recording_mbid.isna().all()
    assert report["users"] == a["plays"].user_name.nunique() == 60
    assert len(a["ratings"]) == len(a["plays"]) == report["pairs"]
    # Song popularity is the sum of capped plays, as the reference trimmed by.
    capped = a["plays"].assign(c=a["plays"].plays.clip(upper=10)).groupby("song_id").c.sum()
    assert a["songs"].set_index("song_id").plays.to_dict() == capped.to_dict()
    # About half of user-song pairs are played once, as in the reference data.
    assert 0.3 < (a["plays"].plays == 1).mean() < 0.7


def test_etl_ratings_recomputes_from_plays_only(tmp_path):
    out = tmp_path / "data"
    _sample(out)
    plays_before = (out / "plays.parquet").read_bytes()
    cap = pd.read_parquet(out / "ratings.parquet")
    result = CliRunner().invoke(
        cli, ["etl", "ratings", "--data", str(out), "--transform", "quantile"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    quantile = pd.read_parquet(out / "ratings.parquet")
    assert summary["transform"] == "quantile" and summary["ratings"] == len(quantile) == len(cap)
    assert sum(summary["rating_counts"].values()) == len(quantile)
    rerated = json.loads((out / "etl_report.json").read_text())
    assert rerated["transform"] == "quantile"
    assert rerated["source_kind"] == "sample" and rerated["synthetic"] is True
    assert (out / "plays.parquet").read_bytes() == plays_before
    assert quantile.rating.between(1, 10).all()
    # cap gives most pairs a low rating; quantile spreads each listener over the scale.
    assert quantile.rating.mean() > cap.rating.mean()
    per_user = quantile.groupby("user_name").rating.agg(["min", "max"])
    assert (per_user["max"] == 10).mean() > 0.9
    assert sorted(p.name for p in out.iterdir()) == [
        "etl_report.json",
        "plays.parquet",
        "ratings.parquet",
        "songs.parquet",
        "spellings.parquet",
    ]


def test_etl_ratings_refuses_unknown_transforms_and_folders(tmp_path):
    runner = CliRunner()
    bad = runner.invoke(cli, ["etl", "ratings", "--data", str(tmp_path), "--transform", "nope"])
    assert bad.exit_code == 2 and "nope" in bad.output
    assert set(TRANSFORMS) >= {"cap", "quantile"}
    with pytest.raises(EtlError, match="not a songrec data folder"):
        runner.invoke(cli, ["etl", "ratings", "--data", str(tmp_path)], catch_exceptions=False)


@pytest.mark.parametrize(
    ("source", "engine", "kind", "extra"),
    [
        ("sample(users=1)", "duckdb", "sample", {}),
        ("test", "duckdb", "unknown", {}),
        ("bigquery(t, a..b)", "bigquery", "bigquery", {}),
        ("hetrec:/x/user_artists.dat", "duckdb", "hetrec", {}),
        ("msd-triplets:t.txt", "duckdb", "msd-triplets", {}),
        ("dump:a", "duckdb", "spark-dump", {"listen_formats": ["spark-dump"]}),
        ("dump:a,b", "duckdb", "mixed", {"listen_formats": ["spark-dump", "user-export"]}),
    ],
)
def test_the_report_names_its_kind_of_source(tmp_path, lb, listens, source, engine, kind, extra):
    run = EtlRun(source=source, out_dir=tmp_path / "out", engine=engine, extra=dict(extra))
    report = run_listens(run, _batches(listens))
    assert report["source_kind"] == kind and kind in SOURCE_KINDS
    assert report["synthetic"] is (kind == "sample")
    written = json.loads((tmp_path / "out" / "etl_report.json").read_text())
    assert (written["source_kind"], written["synthetic"]) == (kind, kind == "sample")


def test_a_source_kind_can_be_given_but_must_be_known(tmp_path, lb, listens):
    run = EtlRun(source="anything", out_dir=tmp_path / "a", source_kind="user-export")
    assert run_listens(run, _batches(listens))["source_kind"] == "user-export"
    with pytest.raises(EtlError, match="unknown source kind"):
        EtlRun(source="x", out_dir=tmp_path / "b", source_kind="nope")


def test_sample_has_unique_artist_names_past_the_word_pairs():
    """More artists (80,000 songs / 8) than the 9,180 spelled word-pair forms: still unique."""
    catalog = _catalog(SampleSpec(users=10, songs=80_000, listens=1_000), np.random.default_rng(1))
    assert len(catalog.artist_names) == 10_000 == len(set(catalog.artist_names))


def test_a_batch_aggregated_in_the_background_fails_in_the_callers_thread(tmp_path, listens):
    """Batches are aggregated in a thread while the caller reads on; a failing one is
    raised to the caller at the next step, and the run writes nothing."""
    import duckdb

    from songrec.etl.aggregate import PlaysAggregator

    good = next(_batches(listens))
    bad = good.set_column(0, "user_name", pa.array(range(good.num_rows), pa.int64()))
    aggregator = PlaysAggregator(buffer_rows=1)
    try:
        aggregator.add(good)
        aggregator.add(bad)  # no string functions on numbers: the query fails, later
        with pytest.raises(duckdb.Error, match="regexp"):
            aggregator.listens_kept()
    finally:
        aggregator.close()
    with pytest.raises(duckdb.Error):
        run_listens(EtlRun(source="t", out_dir=tmp_path / "out"), [bad])
    assert not (tmp_path / "out").exists()


def test_the_steps_after_reading_are_reported_in_order(tmp_path):
    listens = pa.table(
        {
            "user_name": ["ann", "bob"],
            "artist_name": ["A", "B"],
            "track_name": ["x", "y"],
            "listened_at": pa.array([1_700_000_000, 1_700_000_100], pa.timestamp("s", tz="UTC")),
        }
    )
    heard = []
    run = EtlRun(source="test", out_dir=tmp_path / "out", on_step=lambda *a: heard.append(a))
    run_listens(run, [listens])
    names = [
        "merging plays",
        "merging spellings",
        "songs",
        "writing plays.parquet",
        "writing songs.parquet",
        "writing ratings.parquet",
        "writing spellings.parquet",
        "written",
    ]
    assert heard == [(done, 7, name) for done, name in enumerate(names)]
