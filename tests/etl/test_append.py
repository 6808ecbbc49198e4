"""`etl dump INCREMENTAL --append DIR`: an incremental dump added to a folder equals one run
over all the listens; a dump already applied, an older folder or another window is refused."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from songrec.app.cli import cli
from songrec.etl.listens import LISTEN_SCHEMA
from songrec.etl.pipeline import EtlRun, run_listens

TABLES = ("plays", "songs", "ratings", "spellings")
# Report fields that may differ between an appended folder and one run over everything.
TIMING = ("seconds", "duckdb")
INCREMENTAL = "listenbrainz-listens-dump-8-20250302-000000-incremental"


def _dump(*args: str) -> None:
    result = CliRunner().invoke(cli, ["etl", "dump", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output


def _tables(folder: Path) -> dict[str, pa.Table]:
    return {name: pq.read_table(folder / f"{name}.parquet") for name in TABLES}


def _report(folder: Path) -> dict:
    return json.loads((folder / "etl_report.json").read_text())


def _same_folder(a: Path, b: Path) -> None:
    """The same tables, rows in the same order, and the same report but for timing."""
    ta, tb = _tables(a), _tables(b)
    for name in TABLES:
        assert ta[name].equals(tb[name]), name
    ra, rb = _report(a), _report(b)
    for key in TIMING:
        ra.pop(key), rb.pop(key)
    assert ra == rb


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture
def dumps(tmp_path, lb, listens):
    """A full dump and an incremental of later listens, both with a bad line: the
    incremental brings new listeners and songs, plays of pairs the full dump has (later
    times), and enough lower-case "golden brown" listens with the other MBID to change
    that song's displayed spelling and recording."""
    full, later = listens[:20], listens[20:]
    extra = [
        lb.Listen("alice", "the stranglers", "golden brown", lb.small_listens()[-1].ts + n, mbid)
        for n, mbid in enumerate([lb.GOLDEN_BROWN_2] * 6)
    ]
    extra.append(lb.Listen("dave", "New Artist", "New Song", 1_800_000_000, None))
    months = lb.by_month(full)
    months[next(iter(months))].insert(1, b"{not json")
    a = lb.write_listens_dump(tmp_path / f"{lb.DUMP_NAME}.tar.zst", months)
    later_months = lb.by_month(later + extra)
    later_months[next(iter(later_months))].append(lb.dump_line(lb.Listen("eve", " ", "x", 5)))
    b = lb.write_listens_dump(tmp_path / f"{INCREMENTAL}.tar.zst", later_months, incremental=True)
    return a, b, listens + extra


@pytest.mark.parametrize("transform", ["cap", "quantile"])
def test_an_appended_incremental_equals_one_run_over_both(tmp_path, lb, dumps, transform):
    full, incremental, everything = dumps
    appended, once = tmp_path / "appended", tmp_path / "once"
    _dump(str(full), "--out", str(appended), "--transform", transform)
    before = lb.songs_of(appended)
    _dump(str(incremental), "--append", str(appended))  # keeps the folder's transform
    _dump(str(full), str(incremental), "--out", str(once), "--transform", transform)
    _same_folder(appended, once)
    # What the incremental changed, against plain Python over all the listens.
    plays = pq.read_table(appended / "plays.parquet").to_pylist()
    assert {(r["user_name"], r["song_id"]): r["plays"] for r in plays} == lb.expected_plays(
        everything
    )
    songs = lb.songs_of(appended)
    assert songs == lb.expected_songs(everything) != before
    golden = next(s for s, row in songs.items() if row["track_name"].lower() == "golden brown")
    assert songs[golden]["artist_name"] == "the stranglers" != before[golden]["artist_name"]
    assert songs[golden]["recording_mbid"] == lb.GOLDEN_BROWN_2
    report = _report(appended)
    assert report["transform"] == transform
    assert [d["name"] for d in report["dumps_applied"]] == [full.name, incremental.name]
    # Hashed while the run read them (one dump at a time here): the files' own sha256.
    assert [d["sha256"] for d in report["dumps_applied"]] == [
        hashlib.sha256(path.read_bytes()).hexdigest() for path in (full, incremental)
    ]
    assert report["listens_read"] == len(everything) + 2 and report["listens_rejected"] == 2
    assert set(report["dump_metadata"]) == {full.name, incremental.name}
    assert report["users"] == 4 and report["source_kind"] == "listenbrainz-dump"


def test_append_can_change_the_transform(tmp_path, dumps):
    full, incremental, _ = dumps
    appended, once = tmp_path / "appended", tmp_path / "once"
    _dump(str(full), "--out", str(appended))
    _dump(str(incremental), "--append", str(appended), "--transform", "log")
    _dump(str(full), str(incremental), "--out", str(once), "--transform", "log")
    _same_folder(appended, once)


def test_a_dump_is_applied_once(tmp_path, dumps, cli_error):
    full, incremental, _ = dumps
    folder = tmp_path / "data"
    _dump(str(full), "--out", str(folder))
    _dump(str(incremental), "--append", str(folder))
    before = _snapshot(folder)
    again = cli_error("etl", "dump", str(incremental), "--append", str(folder))
    assert f"{incremental.name} is already in {folder}" in again and "added once" in again
    renamed = tmp_path / "copy-incremental.tar.zst"
    renamed.write_bytes(incremental.read_bytes())
    error = cli_error("etl", "dump", str(renamed), "--append", str(folder))
    assert f"applied as {incremental.name}" in error
    assert "already in" in cli_error("etl", "dump", str(full), "--append", str(folder))
    twice = cli_error("etl", "dump", str(full), str(renamed), str(incremental), "--out", "x")
    assert "holds the same bytes as" in twice
    assert _snapshot(folder) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_folders_append_cannot_add_to_are_one_line(tmp_path, lb, dumps, cli_error):
    full, incremental, _ = dumps
    old = tmp_path / "old"
    _dump(str(full), "--out", str(old))
    # A folder written before spellings.parquet (and dumps_applied) existed.
    (old / "spellings.parquet").unlink()
    report = _report(old)
    del report["dumps_applied"]
    (old / "etl_report.json").write_text(json.dumps(report))
    before = _snapshot(old)
    error = cli_error("etl", "dump", str(incremental), "--append", str(old))
    assert "rebuild this folder with etl dump" in error
    assert _snapshot(old) == before
    sample = tmp_path / "sample"
    args = ["etl", "sample", "--out", str(sample), "--users", "5", "--songs", "20"]
    assert CliRunner().invoke(cli, [*args, "--listens", "100"]).exit_code == 0
    error = cli_error("etl", "dump", str(incremental), "--append", str(sample))
    assert "made from sample, not by etl dump" in error
    missing = cli_error("etl", "dump", str(incremental), "--append", str(tmp_path / "nope"))
    assert "no such folder" in missing
    dated = tmp_path / "dated"
    _dump(str(full), "--out", str(dated), "--start", "2023-01-01")
    error = cli_error(
        "etl", "dump", str(incremental), "--append", str(dated), "--start", "2024-01-01"
    )
    assert "--append reads the same window" in error
    _dump(str(incremental), "--append", str(dated))  # the folder's window: fine
    assert _report(dated)["start"] == "2023-01-01T00:00:00+00:00"
    both = cli_error("etl", "dump", str(incremental), "--append", str(dated), "--out", "x")
    assert "either --out" in both
    neither = cli_error("etl", "dump", str(incremental))
    assert "either --out" in neither


def test_a_folder_keeps_one_kind_of_listener_key(tmp_path, lb, listens, dumps, cli_error):
    # A Spark dump keys listeners by user id, a JSON dump by name: appending one kind to
    # a folder of the other would count every listener twice, so it is refused, the
    # folder untouched. Spark to Spark appends.
    full, incremental, _ = dumps
    ids = {"alice": 1, "bob": 2, "carol": 3}
    spark_full = lb.write_spark_dump(tmp_path / "spark-full", [lb.spark_table(listens[:20], ids)])
    spark_incremental = lb.write_spark_dump(
        tmp_path / "listenbrainz-spark-dump-2-20250302-000000-incremental.tar",
        [lb.spark_table(listens[20:], ids)],
    )
    by_id, by_name = tmp_path / "by-id", tmp_path / "by-name"
    _dump(str(spark_full), "--out", str(by_id))
    _dump(str(full), "--out", str(by_name))
    for folder, dump in ((by_id, incremental), (by_name, spark_incremental)):
        before = _snapshot(folder)
        error = cli_error("etl", "dump", str(dump), "--append", str(folder))
        assert "Spark dumps key listeners by user id, JSON listens dumps by user name" in error
        assert _snapshot(folder) == before
    _dump(str(spark_incremental), "--append", str(by_id))
    assert _report(by_id)["listens_read"] == len(listens)
    assert _report(by_id)["listen_formats"] == ["spark-dump"]


def test_a_pipe_cannot_be_appended(tmp_path, dumps, cli_error):
    import os

    full, incremental, _ = dumps
    folder = tmp_path / "data"
    _dump(str(full), "--out", str(folder))
    pipe = tmp_path / "pipe" / incremental.name
    pipe.parent.mkdir()
    os.mkfifo(pipe)
    writer = threading.Thread(target=lambda: pipe.write_bytes(incremental.read_bytes()))
    writer.start()
    try:
        error = cli_error("etl", "dump", str(pipe), "--append", str(folder))
    finally:
        with open(pipe, "rb") as drain:  # let the writer finish whatever happened
            drain.read()
        writer.join()
    assert "needs dumps it can fingerprint" in error


def _table(rows: list[tuple[str, str, str, int, str | None]]) -> pa.Table:
    return pa.Table.from_arrays(
        [
            pa.array([r[0] for r in rows]),
            pa.array([r[1] for r in rows]),
            pa.array([r[2] for r in rows]),
            pa.array([r[3] for r in rows], pa.int64()).cast(pa.timestamp("s", tz="UTC")),
            pa.array([r[4] for r in rows], pa.string()),
        ],
        schema=LISTEN_SCHEMA,
    )


def _run(out: Path, parts: list[list], transform: str, batch: int) -> None:
    """The listens of `parts`: the first as a new folder, each other one appended."""
    for number, rows in enumerate(parts):
        run = EtlRun(
            source=f"dump:part{number}",
            out_dir=out,
            transform=transform if number == 0 else None,
            append=number > 0,
            extra={"dumps_applied": [{"name": f"part{number}", "sha256": f"{number:064x}"}]},
            source_kind="listenbrainz-dump",
        )
        batches = [_table(rows[i : i + batch]) for i in range(0, len(rows), batch)]
        run_listens(run, batches)


GOLDEN = "c7d0bf6e-b2aa-4ffa-bded-2448415b39b0"
OTHER = "2d6f51c6-afc5-457e-9c58-689679c08d30"
listen = st.tuples(
    st.sampled_from(["u1", "u2", "ü3"]),
    st.sampled_from(["The Band", "the band", "THE  BAND", "Other"]),
    st.sampled_from(["Song", "song", "Song ", "Another"]),
    st.integers(0, 2_000_000_000),
    st.sampled_from([None, GOLDEN, GOLDEN.upper(), OTHER, "not an id"]),
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(listen, min_size=1, max_size=40),
    st.lists(st.integers(0, 40), max_size=3),
    st.sampled_from(["cap", "quantile", "log", "listenbrainz"]),
    st.integers(1, 7),
)
def test_split_into_appends_equals_one_run(tmp_path_factory, rows, cuts, transform, batch):
    """The same listens, as one run or as a first part and appended parts of any sizes
    (read in batches of any size): the same plays, songs, spellings and ratings."""
    bounds = sorted({min(c, len(rows)) for c in cuts if 0 < c < len(rows)})
    parts = [rows[a:b] for a, b in zip([0, *bounds], [*bounds, len(rows)], strict=True)]
    base = tmp_path_factory.mktemp("split")
    _run(base / "once", [rows], transform, batch=len(rows))
    _run(base / "parts", parts, transform, batch=batch)
    once, split = _tables(base / "once"), _tables(base / "parts")
    for name in TABLES:
        assert once[name].equals(split[name]), name
    report = _report(base / "parts")
    assert report["listens_read"] == len(rows) and report["transform"] == transform
    assert [d["name"] for d in report["dumps_applied"]] == [f"part{n}" for n in range(len(parts))]


def test_two_appends_at_once_both_land(tmp_path):
    """Two runs appending to one folder at the same time: the folder lock makes the second
    wait for the first, so neither's listens are lost."""
    rows = [("u", "A", f"T{n}", 1_600_000_000 + n, None) for n in range(30)]
    _run(tmp_path / "once", [rows], "cap", batch=30)
    _run(tmp_path / "data", [rows[:10]], "cap", batch=10)
    errors: list[BaseException] = []

    def append(number: int, part: list) -> None:
        run = EtlRun(
            source=f"dump:part{number}",
            out_dir=tmp_path / "data",
            transform=None,
            append=True,
            extra={"dumps_applied": [{"name": f"part{number}", "sha256": f"{number:064x}"}]},
        )
        try:
            run_listens(run, [_table(part)])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=append, args=(1, rows[10:20])),
        threading.Thread(target=append, args=(2, rows[20:])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _tables(tmp_path / "once")["plays"].equals(_tables(tmp_path / "data")["plays"])
    assert len(_report(tmp_path / "data")["dumps_applied"]) == 3
