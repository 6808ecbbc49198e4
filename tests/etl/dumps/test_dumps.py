"""`songrec etl dump`: ListenBrainz dumps, Spark dumps and user exports in their real layouts."""

from __future__ import annotations

import gzip
import json
import lzma
import os
import tarfile
import threading
from collections import Counter
from pathlib import Path

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from click.testing import CliRunner

from songrec.app.cli import cli
from songrec.etl.dumps.formats import plan_inputs, total_bytes
from songrec.etl.dumps.reader import read_inputs
from songrec.etl.listens import Rejects
from songrec.etl.mbids import valid_mbid
from songrec.etl.songs import song_id


def _dump(*args: str) -> None:
    result = CliRunner().invoke(cli, ["etl", "dump", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output


def _plays(out: Path) -> dict[tuple[str, str], int]:
    plays = pd.read_parquet(out / "plays.parquet")
    return dict(zip(zip(plays.user_name, plays.song_id, strict=True), plays.plays, strict=True))


def _report(out: Path) -> dict:
    return json.loads((out / "etl_report.json").read_text())


def test_full_dump_tar_zst_into_the_ratings_folder(tmp_path, lb, listens):
    months = lb.by_month(listens)
    first = next(iter(months))
    # Bad lines inside the first month's member, among good ones.
    months[first][1:1] = [b"{not json", lb.dump_line(lb.Listen("dave", "", "Song", 1))]
    path = lb.write_listens_dump(tmp_path / f"{lb.DUMP_NAME}.tar.zst", months)
    out = tmp_path / "out"
    _dump(str(path), "--out", str(out))

    assert _plays(out) == lb.expected_plays(listens)
    assert lb.songs_of(out) == lb.expected_songs(listens)
    ratings = pd.read_parquet(out / "ratings.parquet")
    got = dict(
        zip(zip(ratings.user_name, ratings.song_id, strict=True), ratings.rating, strict=True)
    )
    assert got == {key: min(n, 10) for key, n in lb.expected_plays(listens).items()}

    report = _report(out)
    member = f"{lb.DUMP_NAME}/listens/{first}.listens"  # month not zero-padded
    assert report["listens_read"] == len(listens) + 2
    assert report["rejected_by_reason"] == {"bad_artist_name": 1, "invalid_json": 1}
    assert report["rejected_examples"] == {
        "invalid_json": [f"{member}:2"],
        "bad_artist_name": [f"{member}:3"],
    }
    assert report["dump_metadata"] == {
        path.name: {"TIMESTAMP": "2025-03-01 00:00:00", "SCHEMA_SEQUENCE": "1"}
    }
    assert report["users"] == 3 and report["songs"] == 4
    assert len(months) > 2  # several listens/<YYYY>/<M>.listens members were read
    assert report["source_kind"] == "listenbrainz-dump" and report["synthetic"] is False
    assert report["listen_formats"] == ["listenbrainz-dump"]


def test_dump_read_from_a_pipe_without_touching_disk(tmp_path, lb, listens, monkeypatch):
    """A stream that cannot seek, and no temporary file anywhere: never unpacked."""
    archive = lb.write_listens_dump(tmp_path / "source.tar.zst", lb.by_month(listens))
    pipe = tmp_path / "pipe" / f"{lb.DUMP_NAME}.tar.zst"
    pipe.parent.mkdir()
    os.mkfifo(pipe)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr("tempfile.tempdir", None)
    writer = threading.Thread(target=lambda: pipe.write_bytes(archive.read_bytes()))
    writer.start()
    out = tmp_path / "out"
    _dump(str(pipe), "--out", str(out))
    writer.join()
    assert _plays(out) == lb.expected_plays(listens)
    assert list(scratch.iterdir()) == [] and [p.name for p in pipe.parent.iterdir()] == [pipe.name]


def test_incremental_xz_dump_adds_to_the_full_one(tmp_path, lb, listens):
    full, later = listens[:20], listens[20:]
    a = lb.write_listens_dump(tmp_path / f"{lb.DUMP_NAME}.tar.zst", lb.by_month(full))
    name = lb.DUMP_NAME.replace("full", "incremental")
    b = lb.write_listens_dump(
        tmp_path / f"{name}.tar.xz", lb.by_month(later), compression="xz", incremental=True
    )
    out = tmp_path / "out"
    _dump(str(a), str(b), "--out", str(out))
    assert _plays(out) == lb.expected_plays(listens)
    assert _report(out)["dump_metadata"][b.name] == {
        "START_TIMESTAMP": "2025-02-28 00:00:00",
        "END_TIMESTAMP": "2025-03-01 00:00:00",
        "SCHEMA_SEQUENCE": "1",
    }


def _as_ids(plays: dict, ids: dict[str, int]) -> dict:
    return {(str(ids[user]), song): n for (user, song), n in plays.items()}


@pytest.mark.parametrize("layout", ["tar", "folder"])
def test_spark_dump_equals_the_json_dump_and_counts_unusable_rows(tmp_path, lb, listens, layout):
    ids = {"alice": 11, "bob": 12, "carol": 13}
    bad = lb.spark_table([listens[0]] * 5, ids)
    bad = bad.set_column(2, "user_id", pa.array([None, 11, 11, 11, 11], pa.int64()))
    bad = bad.set_column(4, "artist_name", pa.array(["x", " \t", "x", "x", "x"]))
    bad = bad.set_column(8, "recording_name", pa.array(["x", "x", None, "x", "x"]))
    bad = bad.set_column(0, "listened_at", pa.array([1, 1, 1, None, -5_000], pa.timestamp("ms")))
    tables = [
        lb.spark_table(listens[:15], ids),
        pa.concat_tables([lb.spark_table(listens[15:], ids), bad]),
    ]
    # A quote in the folder's name must not reach DuckDB's SQL unescaped.
    target = tmp_path / (f"{lb.SPARK_NAME}.tar" if layout == "tar" else "rob's spark dump")
    lb.write_spark_dump(target, tables)
    out = tmp_path / "out"
    _dump(str(target), "--out", str(out))

    assert _plays(out) == _as_ids(lb.expected_plays(listens), ids)
    # The recording_mbid column, checked and chosen as the JSON dump's additional_info.
    mbids = {sid: song["recording_mbid"] for sid, song in lb.expected_songs(listens).items()}
    assert {sid: song["recording_mbid"] for sid, song in lb.songs_of(out).items()} == mbids
    report = _report(out)
    assert report["rejected_by_reason"] == {
        "bad_user_name": 1,
        "bad_artist_name": 1,
        "bad_track_name": 1,
        "missing_timestamp": 1,
        "bad_timestamp": 1,
    }
    first_bad = len(listens) - 15 + 1
    assert report["rejected_examples"]["bad_user_name"] == [f"1.parquet:row {first_bad}"]
    assert report["rejected_examples"]["bad_timestamp"] == [f"1.parquet:row {first_bad + 4}"]
    assert report["listens_read"] == len(listens) + 5
    assert report["dump_metadata"][target.name]["SCHEMA_SEQUENCE"] == "1"


def _spark_members(lb, listens: list, ids: dict[str, int]) -> list[pa.Table]:
    """Five Spark members of the small listens, two of them with unusable rows."""
    bad = lb.spark_table([listens[0]] * 3, ids)
    bad = bad.set_column(4, "artist_name", pa.array([" ", "x", "\t"]))
    bad = bad.set_column(0, "listened_at", pa.array([1, -5_000, 1], pa.timestamp("ms")))
    cuts = [0, 4, 9, 13, 18, len(listens)]
    tables = [lb.spark_table(listens[a:b], ids) for a, b in zip(cuts, cuts[1:], strict=False)]
    tables[1] = pa.concat_tables([tables[1], bad])
    tables[3] = pa.concat_tables([bad, tables[3]])
    return tables


@pytest.mark.parametrize("layout", ["tar", "folder"])
def test_spark_members_read_together_equal_members_read_one_by_one(
    tmp_path, lb, listens, layout, monkeypatch
):
    """Consecutive members are aggregated by one query (etl.dumps.staged.parquet_groups): the
    folder, rejects and their row examples equal those of one query per member."""
    ids = {"alice": 11, "bob": 12, "carol": 13}
    name = f"{lb.SPARK_NAME}.tar" if layout == "tar" else "spark"
    dump = lb.write_spark_dump(tmp_path / name, _spark_members(lb, listens, ids))
    _dump(str(dump), "--out", str(tmp_path / "together"))
    monkeypatch.setattr("songrec.etl.aggregate.QUERY_ROWS", 1)  # a query per member
    _dump(str(dump), "--out", str(tmp_path / "alone"))
    for file in ("plays", "songs", "ratings", "spellings"):
        together = pq.read_table(tmp_path / "together" / f"{file}.parquet")
        assert together.equals(pq.read_table(tmp_path / "alone" / f"{file}.parquet")), file
    together, alone = _report(tmp_path / "together"), _report(tmp_path / "alone")
    for key in ("listens_read", "rejected_by_reason", "rejected_examples", "pairs"):
        assert together[key] == alone[key], key
    assert together["rejected_by_reason"] == {"bad_artist_name": 4, "bad_timestamp": 2}
    assert together["rejected_examples"]["bad_timestamp"] == ["1.parquet:row 7", "3.parquet:row 2"]
    assert _plays(tmp_path / "together") == _as_ids(lb.expected_plays(listens), ids)


def test_a_corrupt_member_among_others_is_named_in_one_line(tmp_path, lb, listens, cli_error):
    """A member whose footer reads but whose pages do not fails the query of its group;
    the error names that member, not the group."""
    ids = {"alice": 11, "bob": 12, "carol": 13}
    dump = lb.write_spark_dump(tmp_path / "spark", _spark_members(lb, listens, ids))
    member = dump / "2.parquet"
    data = bytearray(member.read_bytes())
    footer = int.from_bytes(data[-8:-4], "little") + 8
    data[4 : len(data) - footer] = bytes(len(data) - footer - 4)  # pages zeroed, footer kept
    member.write_bytes(bytes(data))
    error = cli_error("etl", "dump", str(dump), "--out", str(tmp_path / "out"))
    assert error.startswith("error: 2.parquet: corrupt or unreadable Parquet"), error
    assert not (tmp_path / "out").exists()


def _sample_plays(files: list[Path]) -> Counter:
    """Plays of the real Spark sample, counted in plain Python from its Parquet files."""
    counts: Counter = Counter()
    for file in files:
        table = pq.read_table(file, columns=["user_id", "artist_name", "recording_name"])
        for row in table.to_pylist():
            counts[(str(row["user_id"]), song_id(row["artist_name"], row["recording_name"]))] += 1
    return counts


def _most_played_mbids(pairs: list[tuple[str, str | None]]) -> dict[str, str | None]:
    """song_id -> the valid MBID its (song_id, raw mbid) listens carry most (ties to the
    greatest), None for a song without one: what songs.parquet must hold."""
    counts: dict[str, Counter] = {}
    for sid, raw in pairs:
        ids = counts.setdefault(sid, Counter())
        if valid_mbid(raw) is not None:
            ids[valid_mbid(raw)] += 1
    return {sid: max(c, key=lambda m: (c[m], m)) if c else None for sid, c in counts.items()}


def _sample_mbids(files: list[Path]) -> dict[str, str | None]:
    """The recording MBID of each song of the real Spark sample, from its Parquet files."""
    pairs = []
    for file in files:
        table = pq.read_table(file, columns=["artist_name", "recording_name", "recording_mbid"])
        pairs += [
            (song_id(r["artist_name"], r["recording_name"]), r["recording_mbid"])
            for r in table.to_pylist()
        ]
    return _most_played_mbids(pairs)


@pytest.mark.realdata
def test_real_spark_sample_as_folder_and_as_tars(tmp_path, lb):
    folder = lb.SAMPLES / "spark-full-dump"
    files = sorted(folder.glob("*.parquet"))
    expected = _sample_plays(files)
    mbids = _sample_mbids(files)
    # The sample maps most listens, not all: both kinds are there.
    assert None in mbids.values() and sum(m is not None for m in mbids.values()) > 20
    tar_path = tmp_path / f"{lb.SPARK_NAME}.tar"
    with tarfile.open(tar_path, "w") as tar:
        for file in sorted(folder.iterdir()):
            tar.add(file, arcname=file.name)
    # Not a published layout, but a compressed tar of Parquet files reads too.
    zst_path = tmp_path / "spark.tar.zst"
    with zst_path.open("wb") as raw, zstandard.ZstdCompressor().stream_writer(raw) as sink:
        sink.write(tar_path.read_bytes())
    for source, out in (
        (folder, tmp_path / "a"),
        (tar_path, tmp_path / "b"),
        (zst_path, tmp_path / "c"),
    ):
        _dump(str(source), "--out", str(out))
        assert _plays(out) == dict(expected)
        report = _report(out)
        assert report["listens_read"] == sum(expected.values()) == 68
        assert report["dump_metadata"][source.name]["START_TIMESTAMP"].startswith("2020-01-04")
        assert report["rejected_by_reason"] == {}
        assert (report["source_kind"], report["synthetic"]) == ("spark-dump", False)
        songs = lb.songs_of(out)
        assert {sid: song["recording_mbid"] for sid, song in songs.items()} == mbids


@pytest.mark.realdata
def test_real_user_export_and_invalid_lines(tmp_path, lb):
    export = lb.SAMPLES / "user_export.jsonl"
    mixed = lb.SAMPLES / "mixed_validity.jsonl"
    out = tmp_path / "out"
    _dump(str(export), str(mixed), "--user", "rob", "--out", str(out))
    expected: Counter = Counter()
    for path in (export, mixed):
        for line in path.read_bytes().splitlines():
            meta = orjson.loads(line)["track_metadata"]
            if meta["artist_name"] and meta["track_name"]:
                expected[("rob", song_id(meta["artist_name"], meta["track_name"]))] += 1
    assert _plays(out) == dict(expected) and sum(expected.values()) == 5
    # Recording MBIDs: the export's mbid_mapping (the mixed file's listens carry none).
    pairs = []
    for path in (export, mixed):
        for line in path.read_bytes().splitlines():
            meta = orjson.loads(line)["track_metadata"]
            if meta["artist_name"] and meta["track_name"]:
                mapped = (meta.get("mbid_mapping") or {}).get("recording_mbid")
                pairs.append((song_id(meta["artist_name"], meta["track_name"]), mapped))
    mbids = _most_played_mbids(pairs)
    assert sum(m is not None for m in mbids.values()) == 2  # both export listens are mapped
    assert {sid: song["recording_mbid"] for sid, song in lb.songs_of(out).items()} == mbids
    report = _report(out)
    assert report["rejected_examples"] == {
        "bad_artist_name": ["mixed_validity.jsonl:2"],
        "bad_track_name": ["mixed_validity.jsonl:4"],
    }
    assert report["listens_read"] == 7
    assert (report["source_kind"], report["synthetic"]) == ("user-export", False)


def test_export_zip_takes_its_user_from_user_json(tmp_path, lb, listens, cli_error):
    mine = [x for x in listens if x.user == "alice"]
    months = {m: [lb.export_line(x) for x in group] for m, group in _months(mine).items()}
    with_user = lb.write_export_zip(tmp_path / "listenbrainz_rob_1740000000.zip", "rob", months)
    out = tmp_path / "out"
    _dump(str(with_user), "--out", str(out))
    expected = {("rob", s): n for (_, s), n in lb.expected_plays(mine).items()}
    assert _plays(out) == expected  # feedback.jsonl is not read as listens
    assert _report(out)["source_kind"] == "user-export"

    anonymous = lb.write_export_zip(tmp_path / "export.zip", None, months)
    error = cli_error("etl", "dump", str(anonymous), "--out", str(tmp_path / "x"))
    assert "pass --user NAME" in error
    _dump(str(anonymous), "--user", "rob", "--out", str(tmp_path / "y"))
    assert _plays(tmp_path / "y") == expected


def _months(listens) -> dict[str, list]:
    from datetime import UTC, datetime

    months: dict[str, list] = {}
    for x in listens:
        when = datetime.fromtimestamp(x.ts, UTC)
        months.setdefault(f"{when.year}/{when.month}", []).append(x)
    return months


def test_export_files_compressed_or_as_one_json_array(tmp_path, lb, listens):
    lines = b"".join(lb.export_line(x) + b"\n" for x in listens)
    files = [tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl.xz", tmp_path / "c.jsonl.zst"]
    files[0].write_bytes(gzip.compress(lines))
    files[1].write_bytes(lzma.compress(lines))
    files[2].write_bytes(zstandard.ZstdCompressor().compress(lines))
    older = tmp_path / "rob_lb-2020-01-01.json"  # older exports: one JSON array
    older.write_bytes(orjson.dumps([orjson.loads(lb.export_line(x)) for x in listens]))
    out = tmp_path / "out"
    _dump(*map(str, [*files, older]), "--user", "rob", "--out", str(out))
    # Four files of the same listens, all of one user.
    merged: Counter = Counter()
    for (_, song), n in lb.expected_plays(listens).items():
        merged[("rob", song)] += 4 * n
    assert _plays(out) == dict(merged)
    assert _report(out)["listens_read"] == 4 * len(listens)
    # The MBIDs of mbid_mapping, the most played valid one per song (four times each).
    mbids = {sid: song["recording_mbid"] for sid, song in lb.expected_songs(listens).items()}
    assert {sid: song["recording_mbid"] for sid, song in lb.songs_of(out).items()} == mbids


def test_formats_mixed_in_one_run_are_named(tmp_path, lb, listens):
    dump = lb.write_listens_dump(tmp_path / f"{lb.DUMP_NAME}.tar.zst", lb.by_month(listens))
    export = tmp_path / "mine.jsonl"
    export.write_bytes(b"".join(lb.export_line(x) + b"\n" for x in listens))
    out = tmp_path / "out"
    _dump(str(dump), str(export), "--user", "rob", "--out", str(out))
    report = _report(out)
    assert report["source_kind"] == "mixed" and report["synthetic"] is False
    assert report["listen_formats"] == ["listenbrainz-dump", "user-export"]
    # Two copies of every listen: the same most played MBID per song.
    mbids = {sid: song["recording_mbid"] for sid, song in lb.expected_songs(listens).items()}
    assert {sid: song["recording_mbid"] for sid, song in lb.songs_of(out).items()} == mbids


def test_listeners_keyed_by_id_and_by_name_are_not_mixed(tmp_path, lb, listens, cli_error):
    # A Spark dump has user ids, no names: with a JSON dump or an export, every listener
    # of both would count twice. Refused in either order, before anything is written:
    # from the names where they tell the format (a folder, a file), else at the first
    # member of the other kind inside a tar.
    json_dump = lb.write_listens_dump(tmp_path / f"{lb.DUMP_NAME}.tar.zst", lb.by_month(listens))
    export = tmp_path / "mine.jsonl"
    export.write_bytes(b"".join(lb.export_line(x) + b"\n" for x in listens))
    ids = {"alice": 1, "bob": 2, "carol": 3}
    tables = [lb.spark_table(listens, ids)]
    folder = lb.write_spark_dump(tmp_path / "spark", tables)
    tar = lb.write_spark_dump(
        tmp_path / "listenbrainz-spark-dump-1-20250101-000000-full.tar", tables
    )
    out = tmp_path / "out"
    cases = [
        ((folder, json_dump), f"{lb.DUMP_NAME}/listens/", "JSON listens dumps"),
        ((json_dump, folder), str(folder), "JSON listens dumps"),
        ((json_dump, tar), "0.parquet", "JSON listens dumps"),
        ((tar, json_dump), f"{lb.DUMP_NAME}/listens/", "JSON listens dumps"),
        ((export, tar), "0.parquet", "user exports"),
        ((tar, folder / "0.parquet", export), str(export), "user exports"),
    ]
    for paths, where, other in cases:
        error = cli_error("etl", "dump", *map(str, paths), "--user", "rob", "--out", str(out))
        assert error.startswith(f"error: {where}") and f"{other} by user name" in error, error
        assert "Spark dumps key listeners by user id" in error and "twice" in error
        assert not out.exists()


def test_folder_of_listens_files_and_date_window(tmp_path, lb, listens):
    folder = tmp_path / "listens"
    for month, lines in lb.by_month(listens).items():
        year, number = month.split("/")
        (folder / year).mkdir(parents=True, exist_ok=True)
        (folder / year / f"{int(number)}.listens").write_bytes(b"\n".join(lines) + b"\n")
    (folder / "COPYING").write_text("CC0")
    out = tmp_path / "out"
    start, end = "2023-12-01", "2024-01-15"
    _dump(str(folder), "--out", str(out), "--start", start, "--end", end)
    lo, hi = (pd.Timestamp(d, tz="UTC").timestamp() for d in (start, end))
    kept = [x for x in listens if lo <= x.ts < hi]
    assert 0 < len(kept) < len(listens)
    assert _plays(out) == lb.expected_plays(kept)
    assert _report(out)["listens_read"] == len(listens)


def test_progress_reports_every_byte_of_the_inputs(tmp_path, lb, listens):
    by_name = [
        lb.write_listens_dump(tmp_path / f"{lb.DUMP_NAME}.tar.zst", lb.by_month(listens)),
        lb.write_export_zip(tmp_path / "e.zip", "rob", {"2023/11": [lb.export_line(listens[0])]}),
    ]
    spark = lb.write_spark_dump(
        tmp_path / "spark", [lb.spark_table(listens, {"alice": 1, "bob": 2, "carol": 3})]
    )
    # One run holds listeners keyed by name or by id (test_listeners_keyed_by_id...).
    for paths, listens_read in ((by_name, len(listens) + 1), ([spark], len(listens))):
        inputs = plan_inputs(paths)
        seen: list[int] = []
        rows = sum(t.num_rows for t in read_inputs(inputs, Rejects(), {}, seen.append))
        assert rows == listens_read
        stored = sum(
            p.stat().st_size if p.is_file() else sum(f.stat().st_size for f in p.glob("*.parquet"))
            for p in paths
        )
        assert sum(seen) == total_bytes(inputs) == stored
        assert all(n > 0 for n in seen)


def _no_leftovers(out: Path) -> None:
    assert not out.exists()
    assert [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")] == []


def test_bad_inputs_are_one_line_errors(tmp_path, lb, listens, cli_error):
    out = tmp_path / "out"

    def fails(*paths: Path, extra: tuple[str, ...] = ()) -> str:
        error = cli_error("etl", "dump", *map(str, paths), "--out", str(out), *extra)
        _no_leftovers(out)
        return error

    assert "no such file or folder" in fails(tmp_path / "missing.tar.zst")
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    assert "not a ListenBrainz listens format" in fails(notes)
    garbage = tmp_path / f"{lb.DUMP_NAME}.tar.zst"
    garbage.write_bytes(b"this is not zstd at all" * 10)
    assert "corrupt or truncated" in fails(garbage)
    good = lb.write_listens_dump(tmp_path / "good.tar.zst", lb.by_month(listens))
    truncated = tmp_path / "truncated.tar.zst"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    assert "corrupt or truncated" in fails(truncated)
    bad_spark = tmp_path / "spark.tar"
    with tarfile.open(bad_spark, "w") as tar:
        (tmp_path / "0.parquet").write_bytes(b"PAR1 not really")
        tar.add(tmp_path / "0.parquet", arcname="0.parquet")
    assert "corrupt or truncated" in fails(bad_spark)
    # A plain Spark tar cut inside a member's bytes (staged by the kernel's copy).
    whole = lb.write_spark_dump(
        tmp_path / "whole.tar", [lb.spark_table(listens, {"alice": 1, "bob": 2, "carol": 3})]
    )
    with tarfile.open(whole) as tar:
        member = tar.getmember("0.parquet")
    cut_spark = tmp_path / "cut.tar"
    cut_spark.write_bytes(whole.read_bytes()[: member.offset_data + member.size // 2])
    assert "corrupt or truncated" in fails(cut_spark)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "README").write_text("nothing here")
    assert "no listens files" in fails(empty)
    invalid = tmp_path / "all_bad.listens"
    invalid.write_bytes(b"{oops\n[]\n")
    assert "no valid listens" in fails(invalid)
    export = tmp_path / "export.jsonl"
    export.write_bytes(lb.export_line(listens[0]) + b"\n")
    assert "pass --user NAME" in fails(export)
    assert "must come before" in fails(
        export, extra=("--user", "x", "--start", "2024-02-01", "--end", "2024-01-01")
    )
    public = tmp_path / "listenbrainz-public-dump.tar.zst"
    lb.write_listens_dump(public, {})
    assert "no listens in this archive" in fails(public)


def test_error_in_a_real_process_is_one_line_and_exit_2(tmp_path, lb):
    result = lb.songrec("etl", "dump", str(tmp_path / "nope.tar.zst"), "--out", str(tmp_path / "o"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: no such file or folder: {tmp_path / 'nope.tar.zst'}"
    ]


def test_a_real_dump_run_logs_the_reading_then_the_build_steps(tmp_path, lb, listens):
    # stderr is a pipe (a log): one line per bar. The steps after the reading (merging,
    # writing each file) take minutes on a full dump, so they have a bar of their own.
    path = lb.write_listens_dump(tmp_path / "d.tar.zst", lb.by_month(listens))
    result = lb.songrec("etl", "dump", str(path), "--out", str(tmp_path / "o"))
    assert result.returncode == 0, result.stderr
    bars = [line for line in result.stderr.splitlines() if line.startswith(("dump:", "build:"))]
    assert [line.split(":")[0] for line in bars] == ["dump", "build"], result.stderr
    assert bars[1].startswith("build: 100% 7/7 ") and bars[1].endswith(", written]")


def test_existing_output_needs_force(tmp_path, lb, listens, cli_error):
    path = lb.write_listens_dump(tmp_path / "d.tar.zst", lb.by_month(listens))
    out = tmp_path / "out"
    _dump(str(path), "--out", str(out))
    before = (out / "plays.parquet").read_bytes()
    assert "pass --force" in cli_error("etl", "dump", str(path), "--out", str(out))
    assert (out / "plays.parquet").read_bytes() == before
    _dump(str(path), "--out", str(out), "--force", "--transform", "quantile")
    assert _report(out)["transform"] == "quantile"
