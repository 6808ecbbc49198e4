"""Listens -> plays in embedded DuckDB, chunk by chunk, then plays -> songs.

Every local source (dump, export, Spark Parquet, the synthetic sample) hands Arrow batches
of listens to `PlaysAggregator.add`; each batch runs through the one listens -> plays query
(etl/sql/listens_to_plays.sql, transpiled), so memory holds partial plays, never all
listens. BigQuery runs the same query remotely and hands its result to `add_plays`.
`finish` merges partial plays (sums, min/max), picks each song's most common spelling
and its most played recording MBID, and computes song ids.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from songrec.etl.output import clean_leftovers
from songrec.etl.query import EARLIEST, LATEST, duckdb_plays_sql

log = logging.getLogger(__name__)

# Time-ordered dumps touch most users in every batch, so partial plays can reach a few
# times the final pairs; capping DuckDB keeps a 10M-listen run under 2 GB (it spills).
DEFAULT_MEMORY_LIMIT = "1GB"
BUFFER_ROWS = 4_000_000
SPILL_PREFIX = "songrec-duckdb-"

# Partial plays as the query returns them; BigQuery's result has the same columns.
_PARTIAL_COLUMNS = (
    "user_name, artist_key, track_key, artist_spelling, track_spelling, "
    "plays, first_listened_at, last_listened_at, recording_mbid"
)
MBID_COLUMN = "recording_mbid"
# song_id: the first 16 hex digits of md5(<artist_key's UTF-8 length> ':' artist_key
# track_key): the length prefix keeps two songs from sharing a key. etl.songs.key_text is the
# Python twin; both must agree (tested on generated unicode).
_SONG_ID_SQL = (
    "substr(md5(CAST(strlen(artist_key) AS VARCHAR) || ':' || artist_key || track_key), 1, 16)"
)


class PlaysAggregator:
    """Accumulates partial plays in an embedded DuckDB database."""

    def __init__(
        self,
        start: datetime = EARLIEST,
        end: datetime = LATEST,
        memory_limit: str | None = DEFAULT_MEMORY_LIMIT,
        threads: int | None = None,
        buffer_rows: int = BUFFER_ROWS,
    ) -> None:
        # Past the limit DuckDB spills to disk; in a private temp folder, not ./.tmp.
        # The pid in the name lets a later run remove the folder of a killed one.
        clean_leftovers(Path(tempfile.gettempdir()), (SPILL_PREFIX,))
        self._spill = tempfile.mkdtemp(prefix=f"{SPILL_PREFIX}{os.getpid()}-")
        # Settings as a config mapping, not SQL text: the path is never pasted into SQL.
        config = {
            "temp_directory": self._spill,
            # Insertion order is irrelevant here; dropping it lets DuckDB stream and spill.
            "preserve_insertion_order": False,
        }
        if memory_limit:
            config["memory_limit"] = memory_limit
        if threads:
            config["threads"] = int(threads)
        try:
            self.con = duckdb.connect(":memory:", config=config)
            self.con.execute("SET TimeZone = 'UTC'")  # a constant (ICU loads on first SET)
        except BaseException:
            shutil.rmtree(self._spill, ignore_errors=True)
            raise
        self.params = {"start": start, "end": end}
        self._window = (
            pa.scalar(start, pa.timestamp("s", tz="UTC")),
            pa.scalar(end, pa.timestamp("s", tz="UTC")),
        )
        self.listens_seen = 0
        # Listens of Arrow batches outside [start, end): the query drops them, the report
        # must still count them (every listen read is kept or counted under a reason).
        self.outside_window = 0
        self.buffer_rows = buffer_rows
        self._buffer: list[pa.Table] = []
        self._buffered = 0
        self.con.execute(
            "CREATE TABLE partial (user_name VARCHAR, artist_key VARCHAR, track_key VARCHAR, "
            "artist_spelling VARCHAR, track_spelling VARCHAR, plays BIGINT, "
            "first_listened_at TIMESTAMPTZ, last_listened_at TIMESTAMPTZ, "
            "recording_mbid VARCHAR)"
        )

    def add(self, listens: pa.Table | duckdb.DuckDBPyRelation) -> None:
        """Aggregate listens (user_name, artist_name, track_name, listened_at and a
        nullable recording_mbid; an Arrow batch without that column has no mbids).

        Arrow batches are buffered up to BUFFER_ROWS before the query runs: a time-ordered
        dump touches most users in every batch, and fewer, larger batches leave fewer
        partial rows to merge (10M listens: 6.1M partial rows at 0.5M a batch, 3.3M at 5M).
        """
        if not isinstance(listens, pa.Table):
            self._aggregate(listens)
            return
        listens = with_mbid_column(listens)
        self.listens_seen += listens.num_rows
        times = listens.column("listened_at").cast(pa.timestamp("s", tz="UTC"))
        outside = pc.or_kleene(
            pc.less(times, self._window[0]), pc.greater_equal(times, self._window[1])
        )
        self.outside_window += int(pc.sum(outside).as_py() or 0)
        self._buffer.append(listens)
        self._buffered += listens.num_rows
        if self._buffered >= self.buffer_rows:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            batch = pa.concat_tables(self._buffer, promote_options="permissive")
            self._buffer, self._buffered = [], 0
            self._aggregate(batch)

    def _aggregate(self, listens: pa.Table | duckdb.DuckDBPyRelation) -> None:
        self.con.register("listen", listens)
        try:
            self.con.execute(
                f"INSERT INTO partial ({_PARTIAL_COLUMNS}) {duckdb_plays_sql('listen')}",
                self.params,
            )
        finally:
            self.con.unregister("listen")

    def add_plays(self, partial: pa.Table) -> None:
        """Take partial plays that another engine (BigQuery) already aggregated; their
        recording_mbid, when present, is already checked (the query's or NULL)."""
        self.con.register("incoming", with_mbid_column(partial))
        try:
            self.con.execute(
                f"INSERT INTO partial ({_PARTIAL_COLUMNS}) SELECT {_PARTIAL_COLUMNS} FROM incoming"
            )
        finally:
            self.con.unregister("incoming")

    def listens_kept(self) -> int:
        """Listens that passed the query's filters so far."""
        self._flush()
        return int(self.con.execute("SELECT coalesce(sum(plays), 0) FROM partial").fetchall()[0][0])

    def finish(self) -> tuple[pa.Table, pa.Table]:
        """Merge partial plays into (plays, songs) Arrow tables."""
        self._flush()
        con = self.con
        # Merge on the keys first and hash only the merged rows: partial plays can be a
        # few times the final pairs, and the hash is the costly part.
        plays = con.sql(
            f"""
            SELECT user_name, {_SONG_ID_SQL} AS song_id, plays,
                   first_listened_at, last_listened_at
            FROM (
                SELECT user_name, artist_key, track_key, sum(plays)::BIGINT AS plays,
                       min(first_listened_at)::TIMESTAMP AS first_listened_at,
                       max(last_listened_at)::TIMESTAMP AS last_listened_at
                FROM partial GROUP BY user_name, artist_key, track_key
            )
            ORDER BY user_name, song_id
            """
        ).to_arrow_table()
        con.register("plays_out", plays)
        # The displayed spelling is the one played most; ties go to the greatest spelling
        # so the choice never depends on row order. The song's recording MBID likewise: of
        # the valid ones its listens carried, the one with the most plays, ties to the
        # greatest; NULL when none carried one.
        songs = con.sql(
            f"""
            WITH spellings AS (
                SELECT artist_key, track_key, artist_spelling, track_spelling, sum(plays) AS n
                FROM partial GROUP BY ALL
            ), display AS (
                SELECT {_SONG_ID_SQL} AS song_id,
                       arg_max(artist_spelling, (n, artist_spelling, track_spelling)) AS a,
                       arg_max(track_spelling, (n, artist_spelling, track_spelling)) AS t
                FROM spellings GROUP BY artist_key, track_key
            ), mbid_plays AS (
                SELECT artist_key, track_key, recording_mbid, sum(plays) AS n
                FROM partial WHERE recording_mbid IS NOT NULL GROUP BY ALL
            ), mbid AS (
                SELECT {_SONG_ID_SQL} AS song_id,
                       arg_max(recording_mbid, (n, recording_mbid)) AS recording_mbid
                FROM mbid_plays GROUP BY artist_key, track_key
            ), popularity AS (
                SELECT song_id, sum(least(plays, 10))::BIGINT AS plays,
                       sum(plays)::BIGINT AS raw_plays, count(*)::BIGINT AS listeners
                FROM plays_out GROUP BY song_id
            )
            SELECT p.song_id, d.a AS artist_name, d.t AS track_name,
                   p.plays, p.raw_plays, p.listeners, m.recording_mbid
            FROM popularity p JOIN display d USING (song_id)
            LEFT JOIN mbid m USING (song_id)
            ORDER BY p.plays DESC, p.song_id
            """
        ).to_arrow_table()
        con.unregister("plays_out")
        log.info("merged %d plays over %d songs", plays.num_rows, songs.num_rows)
        return plays, songs

    def close(self) -> None:
        """Release the embedded database and its spill folder."""
        self.con.close()
        shutil.rmtree(self._spill, ignore_errors=True)


def with_mbid_column(table: pa.Table) -> pa.Table:
    """`table` with a string recording_mbid column: all null when it had none, cast to
    string when it had one of another type (a column of nulls only, say)."""
    if MBID_COLUMN not in table.column_names:
        return table.append_column(MBID_COLUMN, pa.nulls(table.num_rows, pa.string()))
    column = table.column(MBID_COLUMN)
    if column.type == pa.string():
        return table
    index = table.column_names.index(MBID_COLUMN)
    return table.set_column(index, MBID_COLUMN, column.cast(pa.string()))
