"""Listens -> plays inside BigQuery; only the plays come down (Storage API, Arrow).

Flow: `connect` builds the clients (Application Default Credentials, or anonymous ones
against an emulator endpoint); `estimate` dry-runs the one listens -> plays query
(etl/sql/listens_to_plays.sql, dates as TIMESTAMP parameters) for its bytes and cost;
`run_bigquery` refuses a query over the bytes guard, runs it with `maximum_bytes_billed`
as the server-side guard, streams the result batch by batch into the run's capped DuckDB and
writes the ratings folder. Every expected failure becomes one `EtlError` line.
The query reads user_name, artist_name, track_name, listened_at and recording_mbid (a
nullable STRING in the public table's schema). A --table with other columns for them (a
Spark dump loaded by etl.bigquery.load: user_id, recording_name) is read through a
subquery that maps its columns, chosen from the table's schema (`listen_columns`); the
plays SQL itself is the same text either way.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import requests
import sqlglot
from google.api_core import exceptions as api_errors
from google.auth import exceptions as auth_errors
from google.cloud import bigquery
from sqlglot import exp

from songrec.etl.aggregate import Engine
from songrec.etl.errors import EtlError
from songrec.etl.output import (
    RATINGS_FILE,
    REPORT_FILE,
    SONGS_FILE,
    check_out_dir,
    write_atomically,
    write_report,
)
from songrec.etl.pipeline import EtlRun, run_partial_plays, source_kind
from songrec.etl.query import (
    PLACEHOLDER_TABLE,
    PUBLIC_TABLE,
    bigquery_plays_sql,
    plays_sql_text,
    validate_table,
)
from songrec.etl.ratings import PLACEHOLDER_TABLE as PLAYS_PLACEHOLDER
from songrec.etl.ratings import check_transform, ratings_sql_text

log = logging.getLogger(__name__)

# On-demand query pricing, US multi-region (the public ListenBrainz table's), per TiB.
ON_DEMAND_USD_PER_TIB = 6.25
TIB = 2**40
GB = 10**9
DEFAULT_MAX_GB = 50.0
# BigQuery's own wording when maximum_bytes_billed stops a query (reason
# bytesBilledLimitExceeded): "Query exceeded limit for bytes billed: 500. 10485760 or
# higher required."
_BYTES_GUARD_RE = re.compile(r"exceeded limit for bytes billed", re.IGNORECASE)
_BYTES_NEEDED_RE = re.compile(r"(\d+) or higher required", re.IGNORECASE)


@dataclass(frozen=True)
class Estimate:
    """What a dry run says the query would scan and cost."""

    table: str
    bytes_processed: int

    @property
    def usd(self) -> float:
        """Estimated on-demand cost in US dollars."""
        return self.bytes_processed / TIB * ON_DEMAND_USD_PER_TIB


def connect(
    project: str | None, api_endpoint: str | None = None, storage_api: bool = True
) -> tuple[bigquery.Client, object | None]:
    """A BigQuery client and, for real runs, a Storage API read client (None: REST download).

    Credentials and the default project come from Application Default Credentials; with
    `api_endpoint` (a local emulator) the credentials are anonymous and results come down
    over REST.
    """
    if api_endpoint:
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials

        if not project:
            raise EtlError("no project: pass --project with --api-endpoint")
        client = bigquery.Client(
            project=project,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=api_endpoint),
        )
        return client, None
    import google.auth

    try:
        credentials, default_project = google.auth.default(scopes=list(bigquery.Client.SCOPE))
    except auth_errors.DefaultCredentialsError as exc:
        raise EtlError(
            "no Google Cloud credentials: run `gcloud auth application-default login` "
            f"or set GOOGLE_APPLICATION_CREDENTIALS ({_one_line(exc)})"
        ) from None
    project = project or default_project
    if not project:
        raise EtlError("no Google Cloud project: pass --project or set GOOGLE_CLOUD_PROJECT")
    client = bigquery.Client(project=project, credentials=credentials)
    read_client = None
    if storage_api:
        from google.cloud import bigquery_storage

        read_client = bigquery_storage.BigQueryReadClient(credentials=credentials)
    return client, read_client


# The columns the plays SQL reads from `listen_table`, in order.
LISTEN_COLUMNS = ("user_name", "artist_name", "track_name", "listened_at", "recording_mbid")
_INTEGER = ("INTEGER", "INT64")
# What each of them may be in a table, by (column, BigQuery type): the expression giving
# it. The public table's columns first, then a Spark dump's (loaded by etl.bigquery.load).
# Only these fixed texts reach the SQL; a table's own column names never do.
_SOURCES: dict[str, list[tuple[str, tuple[str, ...], str]]] = {
    "user_name": [
        ("user_name", ("STRING",), "user_name"),
        ("user_id", _INTEGER, "CAST(user_id AS STRING)"),
        ("user_id", ("STRING",), "user_id"),
    ],
    "artist_name": [("artist_name", ("STRING",), "artist_name")],
    "track_name": [
        ("track_name", ("STRING",), "track_name"),
        ("recording_name", ("STRING",), "recording_name"),
    ],
    "listened_at": [
        ("listened_at", ("TIMESTAMP",), "listened_at"),
        # A Parquet timestamp not marked UTC-adjusted may load as DATETIME: read as UTC,
        # as `songrec etl dump` reads it.
        ("listened_at", ("DATETIME",), "TIMESTAMP(listened_at)"),
        ("listened_at", _INTEGER, "TIMESTAMP_SECONDS(listened_at)"),
    ],
    "recording_mbid": [("recording_mbid", ("STRING",), "recording_mbid")],
}
_NO_MBID = "CAST(NULL AS STRING)"


def listen_columns(schema: list[bigquery.SchemaField], table: str) -> dict[str, str] | None:
    """How a table of this schema gives each column the plays SQL reads.

    None when it holds all five as they are (the public table's schema); else one BigQuery
    expression per column (a Spark dump: `CAST(user_id AS STRING)`, `recording_name`...).
    A table without recording_mbid gives NULL ids. Raises EtlError when a column has no
    usable source.
    """
    fields = {
        field.name.lower(): field.field_type.upper()
        for field in schema
        if (field.mode or "NULLABLE").upper() != "REPEATED"
    }
    chosen: dict[str, str] = {}
    for column, sources in _SOURCES.items():
        found = next((expr for name, types, expr in sources if fields.get(name) in types), None)
        if found is None and column == "recording_mbid" and "recording_mbid" not in fields:
            found = _NO_MBID
        if found is None:
            raise EtlError(
                f"{table} is not a listens table: {column} needs "
                + " or ".join(f"{name} ({'/'.join(types)})" for name, types, _ in sources)
                + f"; it has {', '.join(f'{n} {t}' for n, t in fields.items()) or 'no columns'}"
            )
        chosen[column] = found
    if all(chosen[column] == column for column in LISTEN_COLUMNS):
        return None
    return chosen


def plays_sql_over(table: str, columns: dict[str, str] | None = None) -> str:
    """The plays query reading `table` (validated), through a subquery mapping its columns
    when `columns` (from `listen_columns`) says so; the plays SQL text is unchanged."""
    if columns is None:
        return bigquery_plays_sql(table)
    validate_table(table)
    mapping = exp.select(
        *(sqlglot.parse_one(columns[name], read="bigquery").as_(name) for name in LISTEN_COLUMNS)
    ).from_(exp.to_table(f"`{table}`", dialect="bigquery"))
    tree = sqlglot.parse_one(plays_sql_text(), read="bigquery")
    for node in list(tree.find_all(exp.Table)):
        if node.name == PLACEHOLDER_TABLE:
            node.replace(mapping.subquery(PLACEHOLDER_TABLE, copy=True))
    return tree.sql(dialect="bigquery", pretty=True, comments=False)


def table_columns(client: bigquery.Client, table: str) -> dict[str, str] | None:
    """`listen_columns` of a table as BigQuery describes it (a metadata read, not billed)."""
    validate_table(table)
    with _api_errors(table):
        schema = client.get_table(table).schema
    return listen_columns(schema, table)


# --ratings-only: plays -> songs and ratings inside BigQuery, one query, one scan. The CTEs
# `partial` (the listens -> plays SQL) and `rated` (the transform's SQL, etl/sql/
# ratings_<name>.sql, reading `song_plays`) are filled in from their own files; the rest
# is the BigQuery twin of etl.aggregate's merge: song_id is md5(<artist_key's UTF-8
# length> ':' artist_key track_key), first 16 hex digits; the displayed spelling is the
# one played most (ties to the greatest spelling), the song's recording MBID the valid one
# with most plays (ties to the greatest). One row per (user, song); the song's own columns
# ride on the row of its first listener only (NULL elsewhere), so songs cost one row each.
_RATINGS_ONLY_SQL = """
WITH partial AS (
  SELECT 1
), keyed AS (
  SELECT
    user_name,
    SUBSTR(TO_HEX(MD5(CONCAT(CAST(BYTE_LENGTH(artist_key) AS STRING), ':', artist_key,
      track_key))), 1, 16) AS song_id,
    artist_spelling,
    track_spelling,
    recording_mbid,
    plays
  FROM partial
), song_plays AS (
  SELECT user_name, song_id, SUM(plays) AS plays
  FROM keyed
  GROUP BY user_name, song_id
), rated AS (
  SELECT 1
), spellings AS (
  SELECT song_id, artist_spelling, track_spelling, SUM(plays) AS n
  FROM keyed
  GROUP BY song_id, artist_spelling, track_spelling
), display AS (
  SELECT song_id, artist_spelling AS artist_name, track_spelling AS track_name
  FROM (
    SELECT
      song_id,
      artist_spelling,
      track_spelling,
      ROW_NUMBER() OVER (
        PARTITION BY song_id ORDER BY n DESC, artist_spelling DESC, track_spelling DESC
      ) AS pick
    FROM spellings
  )
  WHERE pick = 1
), mbid_plays AS (
  SELECT song_id, recording_mbid, SUM(plays) AS n
  FROM keyed
  WHERE recording_mbid IS NOT NULL
  GROUP BY song_id, recording_mbid
), mbid AS (
  SELECT song_id, recording_mbid
  FROM (
    SELECT
      song_id,
      recording_mbid,
      ROW_NUMBER() OVER (PARTITION BY song_id ORDER BY n DESC, recording_mbid DESC) AS pick
    FROM mbid_plays
  )
  WHERE pick = 1
), popularity AS (
  SELECT
    song_id,
    SUM(LEAST(plays, 10)) AS capped_plays,
    SUM(plays) AS raw_plays,
    COUNT(*) AS listeners,
    MIN(user_name) AS first_listener
  FROM song_plays
  GROUP BY song_id
)
SELECT
  r.user_name,
  r.song_id,
  r.rating,
  d.artist_name,
  d.track_name,
  p.capped_plays,
  p.raw_plays,
  p.listeners,
  m.recording_mbid
FROM rated AS r
LEFT JOIN popularity AS p
  ON p.song_id = r.song_id AND p.first_listener = r.user_name
LEFT JOIN display AS d
  ON d.song_id = p.song_id
LEFT JOIN mbid AS m
  ON m.song_id = p.song_id
"""
# The CTE the transform's SQL reads its plays from.
_SONG_PLAYS = "song_plays"


def ratings_only_sql(table: str, transform: str, columns: dict[str, str] | None = None) -> str:
    """One BigQuery query: listens of `table` -> plays -> songs and `transform` ratings.

    Built from three texts (the plays SQL, the transform's SQL, `_RATINGS_ONLY_SQL`) as
    syntax trees: only the validated table reference and fixed column expressions enter.
    """
    check_transform(transform)
    plays = sqlglot.parse_one(plays_sql_over(table, columns), read="bigquery")
    rated = sqlglot.parse_one(ratings_sql_text(transform), read="bigquery")
    for node in list(rated.find_all(exp.Table)):
        if node.name == PLAYS_PLACEHOLDER:
            node.replace(exp.to_table(_SONG_PLAYS))
    tree = sqlglot.parse_one(_RATINGS_ONLY_SQL, read="bigquery")
    bodies = {"partial": plays, "rated": rated}
    for cte in tree.find_all(exp.CTE):
        if cte.alias in bodies:
            cte.set("this", bodies.pop(cte.alias))
    assert not bodies, f"ratings-only template lacks {sorted(bodies)}"
    return tree.sql(dialect="bigquery", pretty=True, comments=False)


def job_config(
    start: datetime, end: datetime, max_bytes: int | None = None, dry_run: bool = False
) -> bigquery.QueryJobConfig:
    """The query's parameters (@start/@end as TIMESTAMP) and its bytes-billed guard."""
    config = bigquery.QueryJobConfig(
        query_parameters=[
            bigquery.ScalarQueryParameter("start", "TIMESTAMP", start),
            bigquery.ScalarQueryParameter("end", "TIMESTAMP", end),
        ],
        dry_run=dry_run,
    )
    if max_bytes is not None:
        config.maximum_bytes_billed = int(max_bytes)
    if dry_run:
        # A cached result would report 0 bytes: ask what the scan itself costs.
        config.use_query_cache = False
    return config


def estimate(
    client: bigquery.Client, table: str, start: datetime, end: datetime, sql: str | None = None
) -> Estimate:
    """Dry-run the plays query (`sql`, else the one for the table's columns): bytes it
    would scan; nothing runs, nothing is billed."""
    _check_window(start, end)
    if sql is None:
        sql = plays_sql_over(table, table_columns(client, table))
    with _api_errors(table):
        job = client.query(sql, job_config=job_config(start, end, dry_run=True))
    found = Estimate(table=table, bytes_processed=int(job.total_bytes_processed or 0))
    log.info("dry run: %s would scan %d bytes (~$%.4f)", table, found.bytes_processed, found.usd)
    return found


def query_plays(
    client: bigquery.Client,
    table: str,
    start: datetime,
    end: datetime,
    max_bytes: int,
    sql: str | None = None,
) -> tuple[bigquery.QueryJob, bigquery.table.RowIterator]:
    """Run the plays query under the bytes guard; returns the finished job and its rows."""
    _check_window(start, end)
    if sql is None:
        sql = plays_sql_over(table, table_columns(client, table))
    with _api_errors(table, max_bytes):
        job = client.query(sql, job_config=job_config(start, end, max_bytes=max_bytes))
        rows = job.result()
    log.info(
        "query %s done: %s rows, %s bytes processed, %s billed",
        job.job_id,
        rows.total_rows,
        job.total_bytes_processed,
        job.total_bytes_billed,
    )
    return job, rows


def iter_plays(
    rows: bigquery.table.RowIterator, read_client: object | None = None
) -> Iterator[pa.Table]:
    """The result as Arrow tables, through the Storage API when a read client is given."""
    with _api_errors("query result"):
        for batch in rows.to_arrow_iterable(bqstorage_client=read_client):
            if batch.num_rows:
                yield pa.Table.from_batches([batch])


def run_bigquery(
    run: EtlRun,
    client: bigquery.Client,
    read_client: object | None = None,
    table: str = PUBLIC_TABLE,
    max_gb: float = DEFAULT_MAX_GB,
    on_batch: Callable[[int, int | None], None] | None = None,
) -> dict:
    """Dry-run, check the bytes guard, run the query, stream plays down, write the folder.

    `on_batch(rows, total_rows)` is called after each downloaded batch (a progress bar).
    """
    started = time.perf_counter()
    job, rows, facts = _run_query(
        run, client, table, max_gb, lambda columns: plays_sql_over(table, columns)
    )
    run.extra.update(facts, download="storage-api" if read_client is not None else "rest")

    def progress(count: int) -> None:
        if on_batch is not None:
            on_batch(count, rows.total_rows)

    # Batches go straight into the run's capped DuckDB, which merges them, rates and writes
    # the folder itself (as for local sources): memory does not grow with the plays. BigQuery
    # returns plays, not listens: listens_read counts the listens the query kept.
    return run_partial_plays(run, iter_plays(rows, read_client), on_batch=progress, started=started)


# The files a --ratings-only folder holds, as the local ETL writes them.
RATINGS_SCHEMA = pa.schema(
    [("user_name", pa.string()), ("song_id", pa.string()), ("rating", pa.int8())]
)
SONGS_SCHEMA = pa.schema(
    [
        ("song_id", pa.string()),
        ("artist_name", pa.string()),
        ("track_name", pa.string()),
        ("plays", pa.int64()),
        ("raw_plays", pa.int64()),
        ("listeners", pa.int64()),
        ("recording_mbid", pa.string()),
    ]
)
_WRITE_ROWS = 1_000_000


class _RatingsSink:
    """The ratings-only result, kept in a spilling DuckDB until it is written out sorted
    (ratings by user_name, song_id; songs by plays descending, song_id), as the local ETL
    orders them. Memory stays bounded: DuckDB spills to a private temp folder."""

    def __init__(self, memory_limit: str | None, threads: int | None) -> None:
        # The run's engine: its memory limit, and a spill folder a later run cleans up
        # after a killed one.
        self.engine = Engine(memory_limit, threads)
        self.con = self.engine.con
        self.con.execute(
            "CREATE TABLE result (user_name VARCHAR, song_id VARCHAR, rating BIGINT, "
            "artist_name VARCHAR, track_name VARCHAR, capped_plays BIGINT, raw_plays BIGINT, "
            "listeners BIGINT, recording_mbid VARCHAR)"
        )

    def add(self, part: pa.Table) -> None:
        self.con.register("incoming", part)
        try:
            self.con.execute(
                "INSERT INTO result SELECT user_name, song_id, rating, artist_name, track_name, "
                "capped_plays, raw_plays, listeners, recording_mbid FROM incoming"
            )
        finally:
            self.con.unregister("incoming")

    def counts(self) -> tuple[int, int, int, int]:
        """(listens the query kept, users, songs, pairs)."""
        listens, users, songs, pairs = self.con.execute(
            "SELECT coalesce(sum(raw_plays), 0), count(DISTINCT user_name), "
            "count(capped_plays), count(*) FROM result"
        ).fetchall()[0]
        return int(listens), int(users), int(songs), int(pairs)

    def write(self, ratings_path: Path, songs_path: Path) -> None:
        self._write(
            "SELECT user_name, song_id, CAST(rating AS TINYINT) AS rating FROM result "
            "ORDER BY user_name, song_id",
            RATINGS_SCHEMA,
            ratings_path,
        )
        self._write(
            "SELECT song_id, artist_name, track_name, capped_plays AS plays, raw_plays, "
            "listeners, recording_mbid FROM result WHERE capped_plays IS NOT NULL "
            "ORDER BY plays DESC, song_id",
            SONGS_SCHEMA,
            songs_path,
        )

    def _write(self, sql: str, schema: pa.Schema, path: Path) -> None:
        reader = self.con.sql(sql).to_arrow_reader(_WRITE_ROWS)
        with pq.ParquetWriter(path, schema, compression="zstd") as writer:
            for batch in reader:
                writer.write_table(pa.Table.from_batches([batch]).cast(schema))

    def close(self) -> None:
        """Release the engine and its spill folder."""
        self.engine.close()


def run_bigquery_ratings(
    run: EtlRun,
    client: bigquery.Client,
    read_client: object | None = None,
    table: str = PUBLIC_TABLE,
    max_gb: float = DEFAULT_MAX_GB,
    on_batch: Callable[[int, int | None], None] | None = None,
) -> dict:
    """--ratings-only: plays, songs and the transform's ratings all computed in BigQuery;
    only ratings and songs come down. The folder has no plays.parquet: `songrec etl
    ratings` (re-rating), evaluation and graphs, which read plays, cannot use it."""
    started = time.perf_counter()
    job, rows, facts = _run_query(
        run, client, table, max_gb, lambda columns: ratings_only_sql(table, run.transform, columns)
    )
    sink = _RatingsSink(run.memory_limit, run.threads)
    try:
        for part in iter_plays(rows, read_client):
            sink.add(part)
            if on_batch is not None:
                on_batch(part.num_rows, rows.total_rows)
        listens, users, songs, pairs = sink.counts()
        if pairs == 0:
            raise EtlError(f"no valid listens in {run.source}: nothing to write")
        report = {
            "source": run.source,
            "source_kind": source_kind(run),
            "synthetic": False,
            "engine": run.engine,
            "transform": run.transform,
            "listens_read": listens,
            "listens_rejected": run.rejects.total,
            "rejected_by_reason": dict(sorted(run.rejects.counts.items())),
            "rejected_examples": dict(sorted(run.rejects.examples.items())),
            "users": users,
            "songs": songs,
            "pairs": pairs,
            "start": run.start.isoformat(),
            "end": run.end.isoformat(),
            **run.extra,
            **facts,
            "download": "storage-api" if read_client is not None else "rest",
            # Ratings were made in BigQuery and plays never came down: no plays.parquet.
            "ratings_only": True,
        }

        def fill(tmp: Path) -> None:
            sink.write(tmp / RATINGS_FILE, tmp / SONGS_FILE)
            report["seconds"] = round(time.perf_counter() - started, 3)
            write_report(report, tmp / REPORT_FILE)

        write_atomically(run.out_dir, fill, run.force)
    finally:
        sink.close()
    log.info("wrote %s: %d users, %d songs, %d ratings", run.out_dir, users, songs, pairs)
    return report


def _run_query(
    run: EtlRun,
    client: bigquery.Client,
    table: str,
    max_gb: float,
    make_sql: Callable[[dict | None], str],
) -> tuple[object, object, dict]:
    """Check the run, dry-run the query `make_sql(table's columns)` makes against the
    bytes guard, run it: (job, rows, the report's facts of the job)."""
    check_transform(run.transform)
    check_out_dir(run.out_dir, run.force)
    validate_table(table)
    max_bytes = int(max_gb * GB)
    _check_window(run.start, run.end)
    columns = table_columns(client, table)
    sql = make_sql(columns)
    found = estimate(client, table, run.start, run.end, sql)
    if found.bytes_processed > max_bytes:
        raise EtlError(_guard_message(found.bytes_processed, max_bytes))
    job, rows = query_plays(client, table, run.start, run.end, max_bytes, sql)
    billed = int(job.total_bytes_billed or 0)
    facts = {
        "table": table,
        "job_id": job.job_id,
        "bytes_estimated": found.bytes_processed,
        "bytes_processed": int(job.total_bytes_processed or 0),
        "bytes_billed": billed,
        "estimated_usd": round(billed / TIB * ON_DEMAND_USD_PER_TIB, 4),
    }
    if columns is not None:
        # How the table's own columns were read (a Spark dump's user_id, recording_name...).
        facts["listen_columns"] = columns
    return job, rows, facts


def _check_window(start: datetime, end: datetime) -> None:
    if end <= start:
        raise EtlError(f"--end ({end:%Y-%m-%d}) must come after --start ({start:%Y-%m-%d})")


def _guard_message(needed: int | None, max_bytes: int) -> str:
    scan = f"would scan {needed / GB:,.2f} GB" if needed else "would scan more"
    return (
        f"the query {scan}, over the --max-gb {max_bytes / GB:g} guard; "
        "raise --max-gb or narrow --start/--end"
    )


def _one_line(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)
    return " ".join(str(text).split())


@contextmanager
def _api_errors(table: str, max_bytes: int | None = None) -> Iterator[None]:
    """Turn the API's expected refusals into one-line EtlErrors."""
    try:
        yield
    except auth_errors.GoogleAuthError as exc:
        raise EtlError(f"Google Cloud credentials refused: {_one_line(exc)}") from None
    except api_errors.GoogleAPICallError as exc:
        message = _one_line(exc)
        reasons = {e.get("reason") for e in exc.errors or [] if isinstance(e, dict)}
        if "bytesBilledLimitExceeded" in reasons or _BYTES_GUARD_RE.search(message):
            needed = _BYTES_NEEDED_RE.search(message)
            raise EtlError(
                _guard_message(int(needed.group(1)) if needed else None, max_bytes or 0)
            ) from None
        if isinstance(exc, api_errors.NotFound):
            raise EtlError(
                f"BigQuery cannot find {table}: {_first_error(exc)} (check --table and --project)"
            ) from None
        if isinstance(exc, api_errors.Forbidden | api_errors.Unauthorized):
            raise EtlError(f"BigQuery refused access: {_first_error(exc)}") from None
        raise EtlError(f"BigQuery error: {_first_error(exc)}") from None
    except (api_errors.RetryError, requests.exceptions.ConnectionError) as exc:
        # The client retries a lost connection for minutes before giving up.
        raise EtlError(f"cannot reach BigQuery: {_one_line(exc)}") from None


def _first_error(exc: api_errors.GoogleAPICallError) -> str:
    errors = getattr(exc, "errors", None) or []
    if errors and isinstance(errors[0], dict) and errors[0].get("message"):
        return " ".join(str(errors[0]["message"]).split())
    return _one_line(exc).split(" Location:")[0]
