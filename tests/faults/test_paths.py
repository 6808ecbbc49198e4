"""Paths go to DuckDB as parameters: quotes, glob characters and spaces in names are data."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from songrec.etl.dumps.parquet import read_parquet_files
from songrec.etl.listens import Rejects
from songrec.etl.plays_formats import read_hetrec

NAMES = ["?.parquet", "[ab].parquet", "it's here.parquet", "*.parquet", "x{1,2}.parquet"]


def _spark_file(path: Path, user: str) -> None:
    when = datetime(2020, 1, 1, tzinfo=UTC)
    pq.write_table(
        pa.table(
            {
                "user_id": pa.array([user]),
                "artist_name": ["A"],
                "recording_name": ["T"],
                "listened_at": pa.array([when], pa.timestamp("s", tz="UTC")),
            }
        ),
        path,
    )


@pytest.mark.parametrize("name", NAMES)
def test_a_parquet_file_is_read_once_whatever_its_name(tmp_path, name) -> None:
    # Other files a pattern reading of the name would match.
    for other in ("a.parquet", "b.parquet", "x1.parquet", "it.parquet"):
        _spark_file(tmp_path / other, "other")
    _spark_file(tmp_path / name, "me")
    for files in ([tmp_path / name], [tmp_path / name, tmp_path / "a.parquet"]):
        tables = list(read_parquet_files(files, Rejects()))
        users = sorted(u for t in tables for u in t.column("user_name").to_pylist())
        assert users == sorted(["me"] + ["other"] * (len(files) - 1))


@pytest.mark.parametrize("folder", ["it's", "what?", "[x]", "a b"])
def test_a_plays_file_in_an_awkward_folder(tmp_path, folder) -> None:
    source = Path(__file__).resolve().parents[3] / "shared" / "data" / "hetrec2011-lastfm-2k"
    if not source.is_dir():
        source = None
    target = tmp_path / folder
    target.mkdir()
    (target / "user_artists.dat").write_text(
        "userID\tartistID\tweight\n2\t51\t13883\n2\t52\t11690\n"
    )
    (target / "artists.dat").write_text(
        "id\tname\turl\tpictureURL\n51\tDuran Duran\tu\tp\n52\tMorcheeba\tu\tp\n"
    )
    rows = read_hetrec(target / "user_artists.dat")
    assert sorted(rows.column("artist_name").to_pylist()) == ["Duran Duran", "Morcheeba"]


@pytest.mark.parametrize("folder", ["it's", "what?", "[x]", "~", "file:", "a b", "{1,2}", "*"])
def test_duckdb_writes_the_folder_where_it_was_asked(tmp_path, monkeypatch, folder) -> None:
    """DuckDB writes the Parquet files itself (COPY ... TO a path parameter): a folder
    named like a pattern, a home (`~`) or a scheme (`file:`) is just a folder."""
    from click.testing import CliRunner

    from songrec.app.cli import cli

    monkeypatch.chdir(tmp_path)
    out = Path(folder) / "data"  # relative, as typed
    runner = CliRunner()
    args = ["etl", "sample", "--out", str(out), "--users", "20", "--songs", "50"]
    done = runner.invoke(cli, [*args, "--listens", "500"], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    files = ["etl_report.json", "plays.parquet", "ratings.parquet", "songs.parquet"]
    files.append("spellings.parquet")
    assert sorted(p.name for p in (tmp_path / folder / "data").iterdir()) == files
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder]  # nothing beside it
    before = pq.read_table(tmp_path / folder / "data" / "plays.parquet")
    rerated = runner.invoke(cli, ["etl", "ratings", "--data", str(out), "--transform", "log"])
    assert rerated.exit_code == 0, rerated.output
    assert pq.read_table(tmp_path / folder / "data" / "plays.parquet").equals(before)
    ratings = pq.read_table(tmp_path / folder / "data" / "ratings.parquet")
    assert ratings.num_rows == before.num_rows
    assert sorted(p.name for p in (tmp_path / folder / "data").iterdir()) == files
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder]
