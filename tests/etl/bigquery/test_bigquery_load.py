"""`songrec etl bigquery-load`: a Spark dump into your own table, then `etl bigquery` over it.

The real google-cloud-bigquery client against the local emulator of test_bigquery.py
(bqemulator): load jobs from local files (resumable uploads), a copy job, gs:// URIs (the
emulator serves gs://BUCKET/PATH from a local folder), and the plays query over a table with
the Spark dump's columns. What the emulator cannot do is said where it matters: it creates
no table from a Parquet load without a schema (BigQuery reads the schema from the files),
so the gs:// test creates the table first; songrec's local loads send an explicit schema.
"""

from __future__ import annotations

import json
import re
import shutil
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import test_bigquery as shared
from google.cloud import bigquery
from test_bigquery import (
    END,
    PROJECT,
    REPO,
    START,
    Emulator,
    _client,
    _duckdb_folder,
    _same_folder,
    _songrec,
    make_listens,
)

from songrec.etl.bigquery import load as bl
from songrec.etl.bigquery import plays as bq
from songrec.etl.errors import EtlError

pytestmark = pytest.mark.bigquery
# The session's emulator (test_bigquery.py starts it; one process whichever module asks).
emulator = shared.emulator

SPARK_SAMPLE = REPO.parent / "shared" / "data" / "listenbrainz-samples" / "spark-full-dump"
SPARK_NAME = "listenbrainz-spark-dump-7-20250301-000000-full"
# The sample's listens run from 2020-01-04 to 2021-08-07.
WINDOW = ("--start", "2020-01-01", "--end", "2022-01-01")
SAMPLE_ROWS = 68


def _spark_tar(tmp_path: Path) -> Path:
    """The shared sample as ListenBrainz ships a Spark dump: one plain tar, one folder."""
    tar = tmp_path / f"{SPARK_NAME}.tar"
    with tarfile.open(tar, "w") as archive:
        for file in sorted(SPARK_SAMPLE.iterdir()):
            archive.add(file, arcname=f"{SPARK_NAME}/{file.name}")
    return tar


def _jobs(client: bigquery.Client) -> dict[str, object]:
    return {job.job_id: job for job in client.list_jobs()}


def _new_jobs(client: bigquery.Client, before: dict) -> list:
    return [job for job_id, job in _jobs(client).items() if job_id not in before]


def _load(emulator: Emulator, *args: str):
    return _songrec(
        "etl", "bigquery-load", *args, "--project", PROJECT, "--api-endpoint", emulator.rest_url
    )


def _read(emulator: Emulator, table: str, out: Path, *args: str):
    return _songrec(
        "etl", "bigquery", *WINDOW, "--table", table, "--out", str(out), "--project", PROJECT,
        "--api-endpoint", emulator.rest_url, *args,
    )  # fmt: skip


def _local(out: Path, *args: str) -> None:
    result = _songrec("etl", "dump", str(SPARK_SAMPLE), *WINDOW, "--out", str(out), *args)
    assert result.returncode == 0, result.stderr


def _count(client: bigquery.Client, table: str) -> int:
    """Rows in a table, counted (bqemulator's table metadata misses rows a copy appends)."""
    return next(iter(client.query(f"SELECT COUNT(*) FROM `{table}`").result()))[0]


def _tables(client: bigquery.Client, dataset: str) -> list[str]:
    return sorted(t.table_id for t in client.list_tables(f"{PROJECT}.{dataset}"))


@pytest.mark.realdata
def test_spark_tar_loaded_then_read_equals_etl_dump(emulator: Emulator, tmp_path):
    """The shared Spark sample, as a tar: loaded member by member into a staging table,
    copied into the target once, read back by `etl bigquery` into the very folder
    `etl dump` makes of the same dump (plays, songs with recording ids, ratings)."""
    client = _client(emulator.rest_url)
    table = f"{PROJECT}.spark_tar.listens"
    before = _jobs(client)
    loaded = _load(
        emulator, str(_spark_tar(tmp_path)), "--table", table, "--dataset-location", "US"
    )
    assert loaded.returncode == 0, loaded.stderr
    assert f"{table}: {SAMPLE_ROWS} rows loaded from 7 Parquet file(s)" in loaded.stdout
    assert "(WRITE_EMPTY); the table holds 68 rows" in loaded.stdout
    assert "START_TIMESTAMP 2020-01-04 15:38:30.282842" in loaded.stdout  # the dump's own

    stored = client.get_table(table)
    assert stored.num_rows == SAMPLE_ROWS
    kinds = {f.name: (f.field_type, f.mode) for f in stored.schema}
    assert kinds["listened_at"] == ("TIMESTAMP", "NULLABLE")  # the dump's INT96 instants
    assert kinds["user_id"] == ("INTEGER", "NULLABLE")
    assert kinds["recording_name"] == ("STRING", "NULLABLE")
    assert kinds["artist_credit_mbids"] == ("STRING", "REPEATED")  # Parquet list inference
    # The staging table is gone; 7 loads went to it, one copy moved them, nothing else ran.
    assert _tables(client, "spark_tar") == ["listens"]
    jobs = _new_jobs(client, before)
    loads = [j for j in jobs if j.job_type == "load"]
    copies = [j for j in jobs if j.job_type == "copy"]
    assert len(loads) == 7 and len(copies) == 1 and len(jobs) == 8
    assert all(bl.STAGING_MARK in j.destination.table_id for j in loads)
    assert all(j.source_format == "PARQUET" for j in loads)
    assert copies[0].destination.table_id == "listens"
    assert copies[0].write_disposition == "WRITE_EMPTY"

    read = _read(emulator, table, tmp_path / "bq")
    assert read.returncode == 0, read.stderr
    _local(tmp_path / "local")
    _same_folder(tmp_path / "bq", tmp_path / "local")
    report = json.loads((tmp_path / "bq" / "etl_report.json").read_text())
    assert report["listen_columns"] == {
        "user_name": "CAST(user_id AS STRING)",
        "artist_name": "artist_name",
        "track_name": "recording_name",
        "listened_at": "listened_at",
        "recording_mbid": "recording_mbid",
    }
    assert (report["users"], report["songs"], report["listens_read"]) == (2, 50, SAMPLE_ROWS)
    songs = pq.read_table(tmp_path / "bq" / "songs.parquet")
    assert songs["recording_mbid"].null_count < songs.num_rows  # real MBIDs came through
    # The columns were mapped by a subquery around the one plays SQL; dates stayed params.
    sql = client.get_job(report["job_id"]).query
    assert "CAST(user_id AS STRING) AS user_name" in sql and "AS listen_table" in sql
    assert "@start" in sql and not re.search(r"20\d\d-\d\d-\d\d", sql)


@pytest.mark.realdata
def test_write_dispositions_never_mix_two_dumps(emulator: Emulator, tmp_path):
    client = _client(emulator.rest_url)
    table = f"{PROJECT}.spark_modes.listens"
    client.create_dataset("spark_modes", exists_ok=True)
    first = _load(emulator, str(SPARK_SAMPLE), "--table", table)  # the extracted folder
    assert first.returncode == 0, first.stderr

    before = _jobs(client)
    again = _load(emulator, str(SPARK_SAMPLE), "--table", table)
    assert again.returncode == 2
    assert again.stderr.strip().splitlines() == [
        f"error: {table} already holds 68 rows: pass --replace to overwrite it, or --append "
        "to add an incremental dump to it"
    ]
    assert _new_jobs(client, before) == []  # refused before any upload
    assert _count(client, table) == SAMPLE_ROWS

    appended = _load(emulator, str(SPARK_SAMPLE), "--table", table, "--append")
    assert appended.returncode == 0, appended.stderr
    assert "(WRITE_APPEND); the table holds 136 rows" in appended.stdout
    assert _count(client, table) == 2 * SAMPLE_ROWS

    replaced = _load(emulator, str(SPARK_SAMPLE), "--table", table, "--replace")
    assert replaced.returncode == 0, replaced.stderr
    assert "(WRITE_TRUNCATE); the table holds 68 rows" in replaced.stdout
    assert _count(client, table) == SAMPLE_ROWS

    # Another dump's columns (the public table's) are never appended to these.
    public = tmp_path / "public.parquet"
    when = [datetime(2020, 1, 1, tzinfo=UTC)]
    _parquet(public, {"listened_at": when, "user_name": ["u"], "artist_name": ["a"],
                      "track_name": ["t"]})  # fmt: skip
    other = _load(emulator, str(public), "--table", table, "--append")
    assert other.stderr.strip().splitlines() == [
        f"error: {table} has other columns than this dump: --append needs the same schema "
        "(--replace overwrites the table)"
    ]
    assert _count(client, table) == SAMPLE_ROWS

    both = _load(emulator, str(SPARK_SAMPLE), "--table", table, "--replace", "--append")
    assert both.returncode == 2
    assert (
        both.stderr.strip()
        .splitlines()[0]
        .startswith("error: --replace and --append exclude each other")
    )
    assert _tables(client, "spark_modes") == ["listens"]


def _broken_copy(source: Path, target: Path) -> None:
    """`source` rewritten uncompressed, one data page garbled: the footer (schema) reads,
    the rows do not."""
    pq.write_table(pq.read_table(source), target, compression="none", use_dictionary=False)
    data = bytearray(target.read_bytes())
    page = pq.ParquetFile(target).metadata.row_group(0).column(4).data_page_offset
    data[page : page + 40] = b"\xff" * 40
    target.write_bytes(bytes(data))


@pytest.mark.realdata
def test_failed_load_leaves_the_table_as_it_was(emulator: Emulator, tmp_path):
    """An incremental whose second file fails in BigQuery: its first file was loaded (into
    staging), yet the target keeps its rows and no staging table is left."""
    client = _client(emulator.rest_url)
    table = f"{PROJECT}.spark_broken.listens"
    client.create_dataset("spark_broken", exists_ok=True)
    assert _load(emulator, str(SPARK_SAMPLE), "--table", table).returncode == 0
    broken = tmp_path / "incremental"
    broken.mkdir()
    shutil.copy(SPARK_SAMPLE / "2.parquet", broken / "0.parquet")
    _broken_copy(SPARK_SAMPLE / "3.parquet", broken / "1.parquet")

    before = _jobs(client)
    result = _load(emulator, str(broken), "--table", table, "--append")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: BigQuery error:"), result.stderr
    assert "Traceback" not in result.stderr
    assert _count(client, table) == SAMPLE_ROWS
    assert _tables(client, "spark_broken") == ["listens"]
    done = [j for j in _new_jobs(client, before) if j.job_type == "load" and j.state == "DONE"]
    assert len(done) >= 1 and all(bl.STAGING_MARK in j.destination.table_id for j in done)


@pytest.mark.realdata
def test_gs_uris_are_one_load_job(emulator: Emulator, tmp_path):
    """gs:// URIs with a wildcard: one load job straight into the table, no staging.

    bqemulator makes no table from a Parquet load without a schema (BigQuery reads it from
    the files), so the table is created first here, as `bq mk` would."""
    folder = emulator.gcs_root / "lb-dumps" / SPARK_NAME
    folder.mkdir(parents=True)
    for file in SPARK_SAMPLE.glob("*.parquet"):
        shutil.copy(file, folder / file.name)
    client = _client(emulator.rest_url)
    client.create_dataset("spark_gcs", exists_ok=True)
    table = f"{PROJECT}.spark_gcs.listens"
    schema = bl.schema_of(pq.read_schema(SPARK_SAMPLE / "0.parquet"), "0.parquet")
    client.create_table(bigquery.Table(table, schema=schema))
    uri = f"gs://lb-dumps/{SPARK_NAME}/*.parquet"

    mixed = _load(emulator, uri, str(SPARK_SAMPLE), "--table", table)
    assert mixed.stderr.strip().splitlines() == [
        "error: load local files or gs:// URIs, not both in one run"
    ]
    before = _jobs(client)
    result = _load(emulator, uri, "--table", table)
    assert result.returncode == 0, result.stderr
    assert f"{table}: {SAMPLE_ROWS} rows loaded from 1 gs:// URI(s) (WRITE_EMPTY)" in (
        result.stdout
    )
    jobs = _new_jobs(client, before)
    assert [j.job_type for j in jobs] == ["load"]
    assert jobs[0].source_uris == [uri] and jobs[0].source_format == "PARQUET"
    assert jobs[0].write_disposition == "WRITE_EMPTY"
    assert jobs[0].configuration.parquet_options.enable_list_inference is True
    assert _tables(client, "spark_gcs") == ["listens"]

    assert _read(emulator, table, tmp_path / "bq").returncode == 0
    _local(tmp_path / "local")
    _same_folder(tmp_path / "bq", tmp_path / "local")


def _parquet(path: Path, columns: dict[str, list]) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


def test_refusals_are_one_line_and_run_nothing(emulator: Emulator, tmp_path):
    client = _client(emulator.rest_url)
    client.create_dataset("refusals", exists_ok=True)
    table = f"{PROJECT}.refusals.listens"
    before = _jobs(client)
    when = [datetime(2020, 1, 1, tzinfo=UTC)]
    not_listens = _parquet(tmp_path / "0.parquet", {"foo": [1], "bar": ["x"]})
    with pytest.raises(EtlError, match=r"0\.parquet is not a listens table: user_name needs"):
        bl.load_dump(client, [str(not_listens)], table)
    spark = {"listened_at": when, "user_id": [1], "artist_name": ["a"], "recording_name": ["t"]}
    other = {**spark, "user_id": ["one"]}  # a string user id: not the same dump
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    _parquet(mixed / "0.parquet", spark)
    _parquet(mixed / "1.parquet", other)
    with pytest.raises(EtlError, match=r"1\.parquet: its columns differ from .*0\.parquet's"):
        bl.load_dump(client, [str(mixed)], table)
    (tmp_path / "dump.tar.zst").write_bytes(b"")
    with pytest.raises(EtlError, match="a compressed tar is not a Spark dump"):
        bl.load_dump(client, [str(tmp_path / "dump.tar.zst")], table)
    with pytest.raises(EtlError, match="does not exist"):
        bl.load_dump(client, [str(tmp_path / "nothing.tar")], table)
    (tmp_path / "empty").mkdir()
    with pytest.raises(EtlError, match=r"no \.parquet files in"):
        bl.load_dump(client, [str(tmp_path / "empty")], table)
    with pytest.raises(EtlError, match="not a BigQuery table reference"):
        bl.load_dump(client, [str(mixed)], "listens; DROP TABLE x")
    lists = _parquet(tmp_path / "maps.parquet", {**spark, "tags": [{"k": 1}]})
    with pytest.raises(EtlError, match=r"column tags is struct<k: int64>, which cannot be loaded"):
        bl.load_dump(client, [str(lists)], table)
    assert _new_jobs(client, before) == []

    # A dataset that does not exist: said, or created in --dataset-location.
    good = tmp_path / "good"
    good.mkdir()
    _parquet(good / "0.parquet", spark)
    missing = _load(emulator, str(good), "--table", f"{PROJECT}.not_there.listens")
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        f"error: dataset {PROJECT}.not_there does not exist: create it (bq mk --dataset "
        f"--location=US {PROJECT}:not_there) or pass --dataset-location to have it created "
        "there"
    ]
    made = _load(
        emulator, str(good), "--table", f"{PROJECT}.made_here.listens", "--dataset-location", "EU"
    )
    assert made.returncode == 0, made.stderr
    assert client.get_dataset(f"{PROJECT}.made_here").location == "EU"
    assert _count(client, f"{PROJECT}.made_here.listens") == 1


# --- tables with other columns than the public table: how etl bigquery maps them ----------


def test_listen_columns_of_each_schema():
    public = [
        bigquery.SchemaField("listened_at", "TIMESTAMP", mode="REQUIRED"),
        bigquery.SchemaField("user_name", "STRING"),
        bigquery.SchemaField("artist_name", "STRING"),
        bigquery.SchemaField("track_name", "STRING", mode="REQUIRED"),
        bigquery.SchemaField("recording_mbid", "STRING"),
    ]
    assert bq.listen_columns(public, "t") is None  # read as it is: the SQL is unchanged
    assert bq.plays_sql_over("p.d.t", None) == bq.bigquery_plays_sql("p.d.t")
    no_mbid = bq.listen_columns(public[:4], "t")
    assert no_mbid["recording_mbid"] == "CAST(NULL AS STRING)"
    with pytest.raises(EtlError, match=r"p\.d\.t is not a listens table: artist_name needs "):
        bq.listen_columns([f for f in public if f.name != "artist_name"], "p.d.t")
    repeated = [bigquery.SchemaField("user_name", "STRING", mode="REPEATED"), *public[2:]]
    with pytest.raises(EtlError, match="user_name needs user_name"):
        bq.listen_columns(repeated + [public[0]], "t")
    mapped = bq.plays_sql_over("p.d.t", no_mbid)
    # The plays SQL around the mapping is the one text, with the table in a subquery.
    assert "CAST(NULL AS STRING) AS recording_mbid" in mapped and "FROM `p.d.t`" in mapped
    with pytest.raises(EtlError, match="not a BigQuery table reference"):
        bq.plays_sql_over("p.d.t`; DROP", no_mbid)


@pytest.mark.parametrize("kind", ["INTEGER", "DATETIME"])
def test_listened_at_as_unix_seconds_or_datetime(emulator: Emulator, kind: str, tmp_path):
    """A table of listens with listened_at as Unix seconds or a DATETIME (read as UTC) and
    no recording_mbid gives the plays the DuckDB path makes of the same listens."""
    client = _client(emulator.rest_url)
    client.create_dataset("variants", exists_ok=True)
    table = f"{PROJECT}.variants.listens_{kind.lower()}"
    client.create_table(
        bigquery.Table(
            table,
            schema=[
                bigquery.SchemaField("user_name", "STRING"),
                bigquery.SchemaField("artist_name", "STRING"),
                bigquery.SchemaField("track_name", "STRING"),
                bigquery.SchemaField("listened_at", kind),
            ],
        ),
        exists_ok=True,
    )
    listens = [{**listen, "recording_mbid": None} for listen in make_listens()]

    def when(at: datetime) -> object:
        return int(at.timestamp()) if kind == "INTEGER" else at.replace(tzinfo=None).isoformat()

    rows = [
        {k: listen[k] for k in ("user_name", "artist_name", "track_name")}
        | {"listened_at": when(listen["listened_at"])}
        for listen in listens
    ]
    for first in range(0, len(rows), 500):
        assert client.insert_rows_json(table, rows[first : first + 500]) == []
    out = tmp_path / "bq"
    result = _songrec(
        "etl", "bigquery", "--start", START.date().isoformat(), "--end", END.date().isoformat(),
        "--out", str(out), "--project", PROJECT, "--table", table,
        "--api-endpoint", emulator.rest_url,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    _duckdb_folder(listens, tmp_path / "duck")
    _same_folder(out, tmp_path / "duck")
    report = json.loads((out / "etl_report.json").read_text())
    expected = "TIMESTAMP_SECONDS(listened_at)" if kind == "INTEGER" else "TIMESTAMP(listened_at)"
    assert report["listen_columns"]["listened_at"] == expected
    assert pq.read_table(out / "songs.parquet")["recording_mbid"].null_count == report["songs"]
