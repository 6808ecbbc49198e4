"""`songrec etl bigquery --ratings-only`: plays, songs and ratings made inside BigQuery.

Against the emulator of test_bigquery.py (the same listens, public table schema) for what
comes down, and against its stand-in of jobs.insert/jobs.get for the bytes figures and the
guard, which bqemulator does not model.
"""

from __future__ import annotations

import json
import re

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import test_bigquery as shared
from test_bigquery import END, PROJECT, START, TABLE, Emulator, _client, _songrec, _StandIn

from songrec.etl.bigquery import plays as bq
from songrec.etl.errors import EtlError
from songrec.etl.listens import LISTEN_SCHEMA
from songrec.etl.pipeline import EtlRun, run_listens
from songrec.etl.ratings import TRANSFORMS

pytestmark = pytest.mark.bigquery
# The session's emulator, its listens table (make_listens) and the jobs stand-in.
emulator = shared.emulator
loaded = shared.loaded
stand_in = shared.stand_in


def _local_folder(listens: list[dict], out, transform: str) -> dict:
    batch = pa.Table.from_pylist(
        [{k: row.get(k) for k in LISTEN_SCHEMA.names} for row in listens], schema=LISTEN_SCHEMA
    )
    run = EtlRun(source="test", out_dir=out, start=START, end=END, transform=transform)
    return run_listens(run, [batch])


@pytest.mark.parametrize("transform", list(TRANSFORMS))
def test_ratings_made_in_bigquery_equal_local_ones(
    emulator: Emulator, loaded: list[dict], transform: str, tmp_path
):
    """Every transform's ratings, and the songs (spellings, MBIDs, popularity), made in
    BigQuery from the listens equal those the local ETL makes of the same listens, row
    for row in the same order; no plays come down."""
    client = _client(emulator.rest_url)
    out = tmp_path / "bq"
    run = EtlRun(
        source=f"bigquery({TABLE})", out_dir=out, engine="bigquery", transform=transform,
        start=START, end=END,
    )  # fmt: skip
    report = bq.run_bigquery_ratings(run, client, table=TABLE)
    local = _local_folder(loaded, tmp_path / "local", transform)

    assert sorted(p.name for p in out.iterdir()) == [
        "etl_report.json",
        "ratings.parquet",
        "songs.parquet",
    ]
    ratings = pq.read_table(out / "ratings.parquet")
    assert ratings.equals(pq.read_table(tmp_path / "local" / "ratings.parquet"))
    assert pq.read_table(out / "songs.parquet").equals(
        pq.read_table(tmp_path / "local" / "songs.parquet")
    )
    assert ratings.num_rows > 100 and ratings.schema.field("rating").type == pa.int8()
    for key in ("users", "songs", "pairs", "transform", "start", "end"):
        assert report[key] == local[key], key
    # As on the plays path, BigQuery's listens_read counts the listens its query kept.
    kept = pc.sum(pq.read_table(tmp_path / "local" / "plays.parquet")["plays"]).as_py()
    assert report["listens_read"] == kept < len(loaded)
    saved = json.loads((out / "etl_report.json").read_text())
    assert saved["ratings_only"] is True and saved["source_kind"] == "bigquery"
    # The song ids and the transform ran in BigQuery (one query), dates as parameters.
    sql = client.get_job(report["job_id"]).query
    assert "TO_HEX(MD5(" in sql and "@start" in sql and "@end" in sql
    assert not re.search(r"20\d\d-\d\d-\d\d", sql)
    if transform == "quantile":
        assert "PERCENT_RANK()" in sql


def test_ratings_only_cli_and_what_it_cannot_do(emulator: Emulator, loaded, tmp_path):
    out = tmp_path / "bq"
    result = _songrec(
        "etl", "bigquery", "--start", "2019-03-01", "--end", "2019-04-01", "--out", str(out),
        "--project", PROJECT, "--table", TABLE, "--api-endpoint", emulator.rest_url,
        "--ratings-only", "--transform", "log",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "transform log" in result.stdout
    assert "no plays.parquet, so `songrec etl ratings`, evaluate and graphs" in result.stdout
    assert not (out / "plays.parquet").exists()
    # Re-rating needs plays: refused on one line, the folder left as it was.
    before = pq.read_table(out / "ratings.parquet")
    rerate = _songrec("etl", "ratings", "--data", str(out), "--transform", "cap")
    assert rerate.returncode == 2
    lines = rerate.stderr.strip().splitlines()
    assert len(lines) == 1 and "plays.parquet" in lines[0], rerate.stderr
    assert pq.read_table(out / "ratings.parquet").equals(before)


def test_ratings_only_refuses_what_the_plays_path_refuses(emulator: Emulator, loaded, tmp_path):
    client = _client(emulator.rest_url)
    run = EtlRun(source="t", out_dir=tmp_path / "x", start=START, end=END, transform="nope")
    with pytest.raises(EtlError, match="unknown transform 'nope'"):
        bq.run_bigquery_ratings(run, client, table=TABLE)
    run = EtlRun(source="t", out_dir=tmp_path / "x", start=START, end=END)
    with pytest.raises(EtlError, match=r"cannot find .*listenbrainz\.nope"):
        bq.run_bigquery_ratings(run, client, table=f"{PROJECT}.listenbrainz.nope")
    empty = EtlRun(
        source="t", out_dir=tmp_path / "x", start=START.replace(year=2001),
        end=END.replace(year=2001),
    )  # fmt: skip
    with pytest.raises(EtlError, match="no valid listens"):
        bq.run_bigquery_ratings(empty, client, table=TABLE)
    assert not (tmp_path / "x").exists()


# --- the bytes figures and the guard, on the stand-in -----------------------------------


def test_ratings_only_dry_run_and_guards(stand_in: str, tmp_path):
    _StandIn.scan_bytes = 2**40  # 1 TiB
    dry = _songrec(
        "etl", "bigquery", "--start", "2016-01-01", "--end", "2020-08-06", "--dry-run",
        "--ratings-only", "--transform", "quantile", "--project", PROJECT,
        "--api-endpoint", stand_in,
    )  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert "would scan 1,099,511,627,776 bytes" in dry.stdout and "about $6.25" in dry.stdout
    [sent] = _StandIn.inserted
    assert sent["configuration"]["dryRun"] is True
    assert "PERCENT_RANK()" in sent["configuration"]["query"]["query"]  # the ratings query

    _StandIn.inserted = []
    refused = _songrec(
        "etl", "bigquery", "--start", "2016-01-01", "--end", "2020-08-06", "--ratings-only",
        "--out", str(tmp_path / "out"), "--project", PROJECT, "--api-endpoint", stand_in,
    )  # fmt: skip
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "error: the query would scan 1,099.51 GB, over the --max-gb 50 guard; "
        "raise --max-gb or narrow --start/--end"
    ]
    assert [j["configuration"].get("dryRun") for j in _StandIn.inserted] == [True]

    # The estimate passes, BigQuery bills more and refuses: its guard was sent.
    _StandIn.inserted, _StandIn.scan_bytes, _StandIn.billed_needed = [], 10**6, 10_485_760
    run = EtlRun(source="t", out_dir=tmp_path / "out", start=START, end=END)
    with pytest.raises(EtlError, match="over the --max-gb 0.005 guard"):
        bq.run_bigquery_ratings(run, _client(stand_in), table=TABLE, max_gb=0.005)
    query = _StandIn.inserted[-1]["configuration"]["query"]
    assert query["maximumBytesBilled"] == str(5 * 10**6)
    assert {p["name"]: p["parameterType"]["type"] for p in query["queryParameters"]} == {
        "start": "TIMESTAMP",
        "end": "TIMESTAMP",
    }
    assert not (tmp_path / "out").exists()
