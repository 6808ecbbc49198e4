"""Spark listens dumps (Parquet) -> Arrow batches of listens, unusable rows counted by reason.

ListenBrainz's Spark dump holds `N.parquet` files with listened_at, user_id (a number, no
user name), artist_name and recording_name among other columns; a Parquet file with
user_name/track_name (e.g. the BigQuery table exported) reads the same way. A folder of such
files is read by DuckDB directly (the fast path); a member of a tar archive is read by
pyarrow in record batches, never extracted. Rows the listens -> plays query would drop
(null or blank names, no time) are dropped here and counted, so the report accounts for
every row. The dump's recording_mbid column (nullable; NULL for files without one) is
passed on unchecked: the listens -> plays query keeps only canonical ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from songrec.etl.errors import EtlError
from songrec.etl.listen_blocks import usable_sql
from songrec.etl.listens import BATCH_ROWS, LISTEN_SCHEMA, Rejects

# What each listen field may be called, in order of preference.
_USER = (("user_name", "{}"), ("user_id", "CAST({} AS VARCHAR)"))
_TRACK = ("track_name", "recording_name")
# 9999-12-31 23:59:59 UTC, the latest time a listen may carry, in Unix seconds.
LATEST_SECOND = 253_402_300_799


def listen_select(schema: pa.Schema, relation: str, extra_columns: str = "") -> str:
    """The query mapping a Parquet schema's columns to listens, with a reject `reason`."""
    names = set(schema.names)
    user = next((expr.format(name) for name, expr in _USER if name in names), None)
    track = next((name for name in _TRACK if name in names), None)
    if user is None or track is None or not {"artist_name", "listened_at"} <= names:
        raise EtlError(
            "not a listens Parquet file: needs listened_at, user_id (or user_name), "
            f"artist_name and recording_name (or track_name); it has {', '.join(schema.names)}"
        )
    kind = schema.field("listened_at").type
    # Ticks since 1970 (UTC), then whole seconds (floored) by integer arithmetic: a cast to
    # TIMESTAMPTZ and date_trunc go through ICU's calendar, ten times slower (1.5 s of a
    # 10M-listen dump). A timestamp without a zone is UTC, as the session's TimeZone.
    # Nanoseconds are counted as they are (DuckDB has no epoch_us of TIMESTAMPTZ_NS, and a
    # cast to microseconds would round).
    if pa.types.is_timestamp(kind):
        epoch, per_second = ("epoch_ns", 10**9) if kind.unit == "ns" else ("epoch_us", 10**6)
        # DuckDB reads the int64 extremes as infinite timestamps, which have no epoch: the
        # ticks are those extremes again (the largest nanoseconds are a time in 2262).
        ticks = (
            f"coalesce({epoch}(listened_at), CASE listened_at::VARCHAR "
            f"WHEN 'infinity' THEN {2**63 - 1} WHEN '-infinity' THEN {-(2**63 - 1)} END)"
        )
    elif pa.types.is_integer(kind) or pa.types.is_floating(kind):
        ticks, per_second = "epoch_us(to_timestamp(listened_at))", 10**6
    else:
        raise EtlError(f"listened_at is {kind}, not a timestamp or Unix seconds")
    # Any type a writer gave it reads as text; the query then checks the text.
    mbid = "TRY_CAST(recording_mbid AS VARCHAR)" if "recording_mbid" in names else "NULL"
    return f"""
    SELECT u AS user_name, a AS artist_name, t AS track_name,
           make_timestamptz(ticks // {per_second} * 1000000) AS listened_at,
           m AS recording_mbid,
           CASE WHEN NOT ({usable_sql("u")}) THEN 'bad_user_name'
                WHEN NOT ({usable_sql("a")}) THEN 'bad_artist_name'
                WHEN NOT ({usable_sql("t")}) THEN 'bad_track_name'
                WHEN ticks IS NULL THEN 'missing_timestamp'
                WHEN ticks < 0 OR ticks > {LATEST_SECOND * per_second} THEN 'bad_timestamp'
           END AS reason {extra_columns}
    FROM (SELECT {user} AS u, artist_name AS a, {track} AS t, {ticks} AS ticks,
                 {mbid}::VARCHAR AS m {extra_columns}
          FROM {relation})
    """


def _connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")  # songrec has its own
    con.execute("SET preserve_insertion_order = false")
    return con


def keep_valid(
    batch: pa.RecordBatch | pa.Table, rejects: Rejects, where: Callable[[int], str]
) -> pa.Table:
    """Listens of a classified batch; rows with a `reason` are counted (`where(row)` names one)."""
    reason = batch.column("reason")
    if reason.null_count < len(reason):
        counts = pc.value_counts(reason.drop_null())
        reasons = np.asarray(reason.fill_null("").to_numpy(zero_copy_only=False))
        for item in counts.to_pylist():
            name, count = item["values"], item["counts"]
            first = np.flatnonzero(reasons == name)[:5]
            for k, row in enumerate(first):
                # The last example carries the rest of the count.
                n = 1 if k < len(first) - 1 else count - (len(first) - 1)
                rejects.add(name, where(int(row)), n)
        batch = batch.filter(pc.is_null(reason))
    return pa.Table.from_arrays(
        [
            batch.column("user_name").cast(pa.string()),
            batch.column("artist_name").cast(pa.string()),
            batch.column("track_name").cast(pa.string()),
            batch.column("listened_at").cast(pa.timestamp("s", tz="UTC")),
            batch.column("recording_mbid").cast(pa.string()),
        ],
        schema=LISTEN_SCHEMA,
    )


# DuckDB reads these in a file name as a pattern, even in a parameter ("?.parquet" read
# every one-letter file): such files are read through pyarrow instead.
GLOB_CHARACTERS = frozenset("*?[]{}")


def read_parquet_files(
    files: list[Path],
    rejects: Rejects,
    on_rows: Callable[[int], None] | None = None,
    batch_rows: int = BATCH_ROWS,
) -> Iterator[pa.Table]:
    """Listens of local Parquet files, read by DuckDB (parallel, only the needed columns).

    The paths go to DuckDB as a query parameter, never as SQL text.
    """
    plain = [f for f in files if not GLOB_CHARACTERS & set(str(f))]
    for path in files:
        if path not in plain:
            yield from _read_one_file(path, rejects, on_rows, batch_rows)
    if not plain:
        return
    con = _connect()
    try:
        sql = listen_select(
            pq.read_schema(plain[0]),
            "read_parquet($files, filename = true, file_row_number = true)",
            ", filename, file_row_number",
        )
        reader = con.sql(sql, params={"files": [str(f) for f in plain]}).to_arrow_reader(batch_rows)
        for batch in reader:
            names = batch.column("filename")
            rows = batch.column("file_row_number")

            def where(i: int, names=names, rows=rows) -> str:
                return f"{Path(names[i].as_py()).name}:row {rows[i].as_py() + 1}"

            table = keep_valid(batch, rejects, where)
            if on_rows is not None:
                on_rows(batch.num_rows)
            if table.num_rows:
                yield table
    finally:
        con.close()


def _read_one_file(
    path: Path, rejects: Rejects, on_rows: Callable[[int], None] | None, batch_rows: int
) -> Iterator[pa.Table]:
    """One local file through pyarrow (a name DuckDB would take for a pattern)."""
    seen = [0]

    def progress(done: int, total: int) -> None:
        if on_rows is not None:
            on_rows(done - seen[0])
        seen[0] = done

    with open(path, "rb") as stream:
        yield from read_parquet_stream(stream, path.name, rejects, progress, batch_rows)


def read_parquet_stream(
    stream: BinaryIO,
    name: str,
    rejects: Rejects,
    on_rows: Callable[[int, int], None] | None = None,
    batch_rows: int = BATCH_ROWS,
) -> Iterator[pa.Table]:
    """Listens of one Parquet file held in a (seekable) stream, e.g. a tar member.

    `on_rows(done, total)` reports progress through the file's rows.
    """
    parquet = pq.ParquetFile(stream)
    schema = parquet.schema_arrow
    sql = listen_select(schema, "batch", ", _row")
    wanted = [c for c in ("user_name", "user_id", "artist_name", "track_name") if c in schema.names]
    wanted += [c for c in ("recording_name", "listened_at", "recording_mbid") if c in schema.names]
    total = parquet.metadata.num_rows
    done = 0
    con = _connect()
    try:
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=wanted):
            # DuckDB may reorder rows across threads: carry each row's number along.
            numbered = batch.append_column("_row", pa.array(np.arange(done, done + len(batch))))
            con.register("batch", numbered)
            try:
                classified = con.sql(sql).to_arrow_table()
            finally:
                con.unregister("batch")
            rows = classified.column("_row")
            table = keep_valid(
                classified, rejects, lambda i, rows=rows: f"{name}:row {rows[i].as_py() + 1}"
            )
            done += batch.num_rows
            if on_rows is not None:
                on_rows(done, total)
            if table.num_rows:
                yield table
    finally:
        con.close()
