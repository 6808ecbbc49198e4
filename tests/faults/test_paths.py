"""Paths go to DuckDB as parameters: quotes, glob characters and spaces in names are data."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from songrec.etl.dump_parquet import read_parquet_files
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
