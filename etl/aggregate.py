"""Listens -> plays in one embedded, memory-capped DuckDB, chunk by chunk, then the folder.

Every local source (dump, export, Spark Parquet, the synthetic sample) hands Arrow batches
of listens to `PlaysAggregator.add`; each batch runs through the one listens -> plays query
(etl/sql/listens_to_plays.sql, transpiled), so memory holds partial plays, never all
listens. BigQuery runs the same query remotely and hands its result to `add_plays`.

`build` then merges partial plays (sums, min/max), picks each song's most played spelling
and recording MBID, computes song ids and popularity, all as DuckDB tables; `write` has
DuckDB itself write plays, songs, spellings and ratings (the transform's own SQL,
etl.ratings) as Parquet files (etl.output.copy_parquet). Nothing of size pairs passes
through Python: DuckDB runs under `memory_limit` and spills its tables, hash tables and
sorts to a private temporary folder, so peak memory does not grow with the input (the
Arrow batches waiting to be aggregated are bounded by `buffer_rows`). When appending,
`build` also reads the existing folder's plays and spellings (as Arrow datasets, streamed;
no path enters the SQL text) and merges them with the new partial plays.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from songrec.etl.dumps.staged import (
    QUERY_ROWS,
    ParquetGroup,
    Staged,
    StagedJson,
    StagedParquet,
    StagingFolder,
    read_staged,
    stage_dir,
)
from songrec.etl.dumps.staged import release as release_staged
from songrec.etl.errors import EtlError
from songrec.etl.listen_blocks import BlockParser
from songrec.etl.listens import Rejects
from songrec.etl.output import (
    PLAYS_FILE,
    RATINGS_FILE,
    SONGS_FILE,
    SPELLINGS_FILE,
    clean_leftovers,
    copy_parquet,
)
from songrec.etl.query import EARLIEST, LATEST, duckdb_plays_sql
from songrec.etl.ratings import duckdb_ratings_query

log = logging.getLogger(__name__)

# The run's memory: DuckDB's own (its tables, hash tables, sorts; past it, it spills to
# disk) plus the rest of the process (Python, the readers' buffers, Arrow batches waiting
# to be aggregated), which gets RESERVE_BYTES of it, at most half. Measured at 100M
# listens: the process held about 400 MB besides DuckDB.
DEFAULT_MEMORY_LIMIT = "2GB"
RESERVE_BYTES = 512 * 10**6
# What --memory-limit accepts: a number and a unit, as DuckDB reads them.
_MEMORY_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_UNITS |= {"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
BUFFER_ROWS = 2_000_000
QUERY_BYTES_PER_ROW = 250
SPILL_PREFIX = "songrec-duckdb-"
SPILL_SAMPLE_SECONDS = 0.2

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
# Inside a run a song is its song_id's 16 hex digits as an integer: 8 bytes where the key
# strings and the hex id take tens, in tables of tens of millions of partial rows; the id's
# text comes back at the merge, and sorts the same (fixed width, lower case).
_SONG_SQL = f"('0x' || {_SONG_ID_SQL})::UBIGINT"
_SONG_ID_OF = "printf('%016x', song)"
# The built tables (songs as integers), as the files hold them and in the files' order.
# merged_plays is made in this order (see `in_order`): written as it is, not sorted again.
_PLAYS_OUT = (
    f"SELECT user_name, {_SONG_ID_OF} AS song_id, plays, first_listened_at, last_listened_at "
    "FROM merged_plays"
)
_PLAYS_ORDER = "ORDER BY user_name, song"
_SONGS_OUT = (
    f"SELECT {_SONG_ID_OF} AS song_id, artist_name, track_name, plays, raw_plays, listeners, "
    "recording_mbid FROM merged_songs ORDER BY plays DESC, song"
)
_SPELLINGS_OUT = (
    f"SELECT {_SONG_ID_OF} AS song_id, artist_name, track_name, recording_mbid, plays "
    "FROM merged_spellings ORDER BY song, artist_name, track_name, recording_mbid NULLS FIRST"
)
# What the ratings transform reads: user_name, song_id (its text) and plays.
_RATED_VIEW = f"SELECT user_name, {_SONG_ID_OF} AS song_id, plays FROM merged_plays"


def check_memory_limit(value: str) -> str:
    """`value` if DuckDB can take it as a memory limit (e.g. 2GB, 512MB), else one line."""
    if not isinstance(value, str) or not _MEMORY_RE.match(value):
        raise EtlError(f"not a memory size: {value!r} (a number and a unit: 512MB, 2GB, 1.5GiB)")
    return value.strip()


def duckdb_share(memory_limit: str) -> int:
    """Bytes of a run's memory limit that DuckDB gets: all but the reserve for the rest
    of the process (RESERVE_BYTES, at most half)."""
    number, unit = _MEMORY_RE.match(check_memory_limit(memory_limit)).groups()
    total = int(float(number) * _UNITS[unit.lower()])
    return total - min(RESERVE_BYTES, total // 2)


@contextlib.contextmanager
def in_order(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Statements that keep row order: a table made with ORDER BY is stored in that order,
    and a query without one reads it back so. The engine otherwise runs without
    (preserve_insertion_order off), which lets DuckDB stream and spill more freely."""
    con.execute("SET preserve_insertion_order = true")
    try:
        yield
    finally:
        con.execute("SET preserve_insertion_order = false")


def query_rows(memory_limit: str | None) -> int:
    """Parquet rows one query of a run reads at most (etl.dumps.staged.QUERY_ROWS): about
    QUERY_BYTES_PER_ROW of DuckDB's share each, as its hash table holds a group of four
    strings for most listens, so a small --memory-limit reads one file at a time."""
    if not memory_limit:
        return QUERY_ROWS
    return max(1, min(QUERY_ROWS, duckdb_share(memory_limit) // QUERY_BYTES_PER_ROW))


def _folder_bytes(folder: str) -> int:
    try:
        return sum(entry.stat().st_size for entry in os.scandir(folder) if entry.is_file())
    except OSError:  # a file DuckDB removed while we looked
        return 0


class Engine:
    """One embedded DuckDB, spilling to a private temp folder, within `memory_limit`: the
    whole run's memory, of which DuckDB gets all but a reserve (`duckdb_share`).

    A thread samples the spill folder's size, so a run can say how much it spilled
    (`stats`): DuckDB removes its temporary files as soon as a query is done. The folder
    is made under tempfile.gettempdir() ($TMPDIR): on a full dump it can take tens of GB,
    so $TMPDIR must be a disk with room, not a memory-backed tmpfs.
    """

    def __init__(
        self, memory_limit: str | None = DEFAULT_MEMORY_LIMIT, threads: int | None = None
    ) -> None:
        if memory_limit:
            memory_limit = check_memory_limit(memory_limit)
        if threads is not None and int(threads) < 1:
            raise EtlError(f"--threads must be at least 1, got {threads}")
        # Past the limit DuckDB spills to disk; in a private temp folder, not ./.tmp.
        # The pid in the name lets a later run remove the folder of a killed one.
        clean_leftovers(Path(tempfile.gettempdir()), (SPILL_PREFIX,))
        self.spill = tempfile.mkdtemp(prefix=f"{SPILL_PREFIX}{os.getpid()}-")
        # Settings as a config mapping, not SQL text: the path is never pasted into SQL.
        config = {
            "temp_directory": self.spill,
            # Insertion order is irrelevant here (every file is written with ORDER BY);
            # dropping it lets DuckDB stream and spill.
            "preserve_insertion_order": False,
        }
        if memory_limit:
            config["memory_limit"] = f"{duckdb_share(memory_limit)}B"
        if threads:
            config["threads"] = int(threads)
        self.memory_limit = memory_limit
        try:
            self.con = duckdb.connect(":memory:", config=config)
            self.con.execute("SET TimeZone = 'UTC'")  # a constant (ICU loads on first SET)
            # DuckDB's own bar (a long COPY, say) would print over songrec's.
            self.con.execute("SET enable_progress_bar = false")
        except duckdb.Error as exc:
            shutil.rmtree(self.spill, ignore_errors=True)
            raise EtlError(f"cannot start DuckDB: {str(exc).splitlines()[0]}") from None
        except BaseException:
            shutil.rmtree(self.spill, ignore_errors=True)
            raise
        self.peak_spill = 0
        self._stop = threading.Event()
        self._sampler = threading.Thread(
            target=self._sample, name="songrec-spill-meter", daemon=True
        )
        self._sampler.start()

    def _sample(self) -> None:
        while not self._stop.wait(SPILL_SAMPLE_SECONDS):
            self.peak_spill = max(self.peak_spill, _folder_bytes(self.spill))

    def stats(self) -> dict:
        """The engine's settings and the most it spilled to disk so far (sampled)."""
        self.peak_spill = max(self.peak_spill, _folder_bytes(self.spill))
        threads = self.con.execute("SELECT current_setting('threads')").fetchall()[0][0]
        duckdb_limit = self.con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
        return {
            "memory_limit": self.memory_limit or "DuckDB's default",
            "duckdb_memory_limit": duckdb_limit,
            "threads": int(threads),
            "spilled_bytes": int(self.peak_spill),
        }

    def close(self) -> None:
        """Release the embedded database and its spill folder."""
        self._stop.set()
        self._sampler.join()
        self.con.close()
        shutil.rmtree(self.spill, ignore_errors=True)

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def folder_dataset(path: Path, columns: tuple[str, ...]) -> pa.dataset.Dataset:
    """A Parquet file of a ratings folder as an Arrow dataset DuckDB scans in batches
    (the path never enters SQL text); one line if it lacks a column."""
    # Imported here: a quarter of a second that runs writing a new folder never need.
    import pyarrow.dataset as ds
    from pyarrow.fs import LocalFileSystem

    try:
        # An absolute path on an explicit local file system: pyarrow would otherwise
        # expand a leading `~` and read `file:`-like names as URIs.
        dataset = ds.dataset(os.path.abspath(path), format="parquet", filesystem=LocalFileSystem())
    except (OSError, pa.ArrowInvalid) as exc:
        raise EtlError(f"cannot read {path}: {exc}") from None
    missing = [c for c in columns if c not in dataset.schema.names]
    if missing:
        raise EtlError(f"{path} lacks {', '.join(missing)}: rebuild this folder with etl dump")
    return dataset


@dataclass(frozen=True)
class Counts:
    """What the report counts, counted in SQL over the built tables."""

    users: int
    songs: int
    pairs: int


# What a step callback hears: the step about to run (a full dump spends minutes here).
Step = Callable[[str], None]
WRITE_STEPS = 4  # the files write_tables writes
BUILD_STEPS = 3  # the tables build makes


def _no_step(name: str) -> None:
    """A step callback that does nothing."""


def write_tables(
    con: duckdb.DuckDBPyConnection,
    folder: Path,
    transform: str,
    on_step: Step = _no_step,
) -> None:
    """DuckDB writes the tables merged_plays, merged_songs and merged_spellings, whose
    songs are integers (`song`), and the ratings by `transform` into `folder`: plays by
    (user_name, song_id), songs by (plays desc, song_id), ratings by (user_name, song_id),
    spellings by (song_id, names, mbid). `on_step(name)` before each file."""
    # merged_plays is stored in the files' order (PlaysAggregator.build): plays, and the
    # ratings of a transform that rates rows alone, are written without sorting it again.
    with in_order(con):
        on_step(f"writing {PLAYS_FILE}")
        copy_parquet(con, _PLAYS_OUT, folder / PLAYS_FILE)
        on_step(f"writing {SONGS_FILE}")
        copy_parquet(con, _SONGS_OUT, folder / SONGS_FILE)
        on_step(f"writing {RATINGS_FILE}")
        con.execute(f"CREATE OR REPLACE TEMP VIEW rated_plays AS {_RATED_VIEW}")
        ratings = duckdb_ratings_query(transform, "rated_plays", presorted=True)
        copy_parquet(con, ratings, folder / RATINGS_FILE)
    on_step(f"writing {SPELLINGS_FILE}")
    copy_parquet(con, _SPELLINGS_OUT, folder / SPELLINGS_FILE)


class PlaysAggregator:
    """Accumulates partial plays in an embedded, memory-capped DuckDB; builds and writes
    the folder's tables there."""

    def __init__(
        self,
        start: datetime = EARLIEST,
        end: datetime = LATEST,
        memory_limit: str | None = DEFAULT_MEMORY_LIMIT,
        threads: int | None = None,
        buffer_rows: int = BUFFER_ROWS,
    ) -> None:
        self.engine = Engine(memory_limit, threads)
        self.con = self.engine.con
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
        self._kept: int | None = None  # listens kept, once the partial plays are merged
        # Listens the queries kept so far (their plays), counted as each one is taken: a
        # sum over the partial table would read back what it spilled.
        self._taken = 0
        self._inflight: threading.Thread | None = None
        self._failure: BaseException | None = None
        self.built = False
        # Where a dump reader stages files for DuckDB to read itself (etl.dumps.staged): inside
        # the private spill folder, so a killed run's leftovers go with it.
        self.staging = StagingFolder(stage_dir(self.engine.spill), query_rows(memory_limit))
        self._parser: BlockParser | None = None  # made when a staged block needs one
        # Each query's partial plays are kept as two narrow tables: plays per (user, song)
        # and plays per (song, exact spelling, MBID). Together they hold the partial rows'
        # six strings as one (the user), an integer and a UUID, so a full dump's tens of
        # millions of partial rows spill a fraction of what they did; the spellings table
        # is per song, not per listener, so it is the smaller one.
        self.con.execute(
            "CREATE TABLE partial_plays (user_name VARCHAR, song UBIGINT, plays BIGINT, "
            "first_listened_at TIMESTAMPTZ, last_listened_at TIMESTAMPTZ)"
        )
        self.con.execute(
            "CREATE TABLE partial_spellings (song UBIGINT, artist_spelling VARCHAR, "
            "track_spelling VARCHAR, recording_mbid UUID, plays BIGINT)"
        )

    def add(self, listens: pa.Table | duckdb.DuckDBPyRelation | Staged) -> None:
        """Aggregate listens (user_name, artist_name, track_name, listened_at and a
        nullable recording_mbid; an Arrow batch without that column has no mbids).

        Arrow batches are buffered up to BUFFER_ROWS before the query runs: a time-ordered
        dump touches most users in every batch, and fewer, larger batches leave fewer
        partial rows to merge (10M listens: 6.1M partial rows at 0.5M a batch, 3.3M at 5M).
        The query runs in a thread of its own while the caller reads on (DuckDB lets go of
        the GIL): parsing the next listens overlaps aggregating these. One batch is in
        flight at a time, so at most twice BUFFER_ROWS listens wait in memory.

        A staged file (etl.dumps.staged) is read by this DuckDB itself, then deleted.
        """
        if isinstance(listens, StagedParquet | ParquetGroup | StagedJson):
            self._add_staged(listens)
            return
        if not isinstance(listens, pa.Table):
            self._settle()
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

    def _add_staged(self, item: Staged) -> None:
        # Every batch in before: the staged read counts the listens its own query keeps.
        self._flush(wait=True)
        try:
            outcome = read_staged(self.con, item, self._insert, self.params, self._block_parser)
        finally:
            release_staged(item)
        self.listens_seen += outcome.seen
        self.outside_window += outcome.outside
        for table in outcome.tables:
            self.add(table)

    def _insert(self, select: str, params: dict) -> int:
        """The listens -> plays query over the listens `select` picks, into the partial
        tables; the listens it kept."""
        return self._take(
            f"WITH listen AS ({select}) SELECT * FROM ({duckdb_plays_sql('listen')})",
            {**self.params, **params},
        )

    def _take(self, partial: str, params: dict | None = None) -> int:
        """Partial plays (the `partial` query's _PARTIAL_COLUMNS) into partial_plays and
        partial_spellings (held once in a temporary table, split, then dropped); the
        listens they count."""
        con = self.con
        con.execute(
            "CREATE OR REPLACE TEMP TABLE taken AS "
            f"SELECT user_name, {_SONG_SQL} AS song, artist_spelling, track_spelling, plays, "
            "first_listened_at, last_listened_at, recording_mbid::UUID AS recording_mbid "
            f"FROM ({partial})",
            params or {},
        )
        try:
            con.execute(
                "INSERT INTO partial_plays SELECT user_name, song, sum(plays), "
                "min(first_listened_at), max(last_listened_at) FROM taken GROUP BY ALL"
            )
            con.execute(
                "INSERT INTO partial_spellings SELECT song, artist_spelling, track_spelling, "
                "recording_mbid, sum(plays) FROM taken GROUP BY ALL"
            )
            total = "SELECT coalesce(sum(plays), 0) FROM taken"
            plays = int(con.execute(total).fetchall()[0][0])
        finally:
            con.execute("DROP TABLE taken")
        self._taken += plays
        return plays

    def _block_parser(self) -> BlockParser:
        # One for the run: a connection's first JSON query costs a good part of a second.
        if self._parser is None:
            self._parser = BlockParser(Rejects())
        return self._parser

    def _flush(self, wait: bool = False) -> None:
        """Start aggregating the buffered batches (after the batch in flight); `wait`: and
        wait until every batch is in."""
        if self._buffer:
            batch = pa.concat_tables(self._buffer, promote_options="permissive")
            self._buffer, self._buffered = [], 0
            self._settle()
            self._inflight = threading.Thread(
                target=self._background, args=(batch,), name="songrec-aggregate", daemon=True
            )
            self._inflight.start()
        if wait:
            self._settle()

    def _background(self, batch: pa.Table) -> None:
        try:
            self._aggregate(batch)
        except BaseException as exc:  # raised in the caller's thread by _settle
            self._failure = exc

    def _settle(self) -> None:
        """Wait for the batch in flight; raise what its query raised."""
        if self._inflight is not None:
            self._inflight.join()
            self._inflight = None
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure

    def _aggregate(self, listens: pa.Table | duckdb.DuckDBPyRelation) -> None:
        self.con.register("listen", listens)
        try:
            self._take(duckdb_plays_sql("listen"), self.params)
        finally:
            self.con.unregister("listen")

    def add_plays(self, partial: pa.Table) -> None:
        """Take partial plays that another engine (BigQuery) already aggregated; their
        recording_mbid, when present, is already checked (the query's or NULL)."""
        self._settle()
        self.con.register("incoming", with_mbid_column(partial))
        try:
            self._take(f"SELECT {_PARTIAL_COLUMNS} FROM incoming")
        finally:
            self.con.unregister("incoming")

    def listens_kept(self) -> int:
        """Listens that passed the query's filters so far."""
        if self._kept is not None:
            return self._kept
        self._flush(wait=True)
        return self._taken

    def build(self, base: Path | None = None, on_step: Step = _no_step) -> None:
        """Merge the partial plays into the tables merged_plays, merged_spellings and
        merged_songs, inside DuckDB; with `base` (a ratings folder being appended to),
        its plays and spellings are merged in too. The partial plays are dropped after.
        `on_step(name)` before each of its BUILD_STEPS tables.
        """
        if self.built:
            raise RuntimeError("PlaysAggregator.build runs once")
        self._kept = self.listens_kept()
        con = self.con
        # The times become TIMESTAMP (UTC) by their microseconds: a cast goes through ICU's
        # calendar, twenty times slower (1.1 s for 20M rows).
        merged = """
            SELECT user_name, song, sum(plays)::BIGINT AS plays,
                   make_timestamp(epoch_us(min(first_listened_at))) AS first_listened_at,
                   make_timestamp(epoch_us(max(last_listened_at))) AS last_listened_at
            FROM partial_plays GROUP BY user_name, song
        """
        # Plays per (song, exact spelling, valid MBID or NULL): what picks a song's
        # displayed names and recording, and what a later --append merges into.
        spellings = """
            SELECT song, artist_spelling AS artist_name, track_spelling AS track_name,
                   recording_mbid::VARCHAR AS recording_mbid, sum(plays)::BIGINT AS plays
            FROM partial_spellings GROUP BY song, artist_spelling, track_spelling, recording_mbid
        """
        # A folder's song_id back to the integer (what it was made from).
        base_song = "('0x' || song_id)::UBIGINT"
        on_step("merging plays")
        if base is None:
            with in_order(con):
                con.execute(f"CREATE TABLE merged_plays AS {merged} {_PLAYS_ORDER}")
            con.execute("DROP TABLE partial_plays")  # its memory, for the next steps
            on_step("merging spellings")
            con.execute(f"CREATE TABLE merged_spellings AS {spellings}")
        else:
            con.register(
                "base_plays",
                folder_dataset(
                    base / PLAYS_FILE,
                    ("user_name", "song_id", "plays", "first_listened_at", "last_listened_at"),
                ),
            )
            con.register(
                "base_spellings",
                folder_dataset(
                    base / SPELLINGS_FILE,
                    ("song_id", "artist_name", "track_name", "recording_mbid", "plays"),
                ),
            )
            try:
                with in_order(con):
                    con.execute(
                        f"""
                        CREATE TABLE merged_plays AS
                        SELECT user_name, song, sum(plays)::BIGINT AS plays,
                               min(first_listened_at) AS first_listened_at,
                               max(last_listened_at) AS last_listened_at
                        FROM ({merged}
                              UNION ALL
                              SELECT user_name, {base_song}, plays,
                                     first_listened_at::TIMESTAMP, last_listened_at::TIMESTAMP
                              FROM base_plays)
                        GROUP BY user_name, song {_PLAYS_ORDER}
                        """
                    )
                con.execute("DROP TABLE partial_plays")
                on_step("merging spellings")
                con.execute(
                    f"""
                    CREATE TABLE merged_spellings AS
                    SELECT song, artist_name, track_name, recording_mbid,
                           sum(plays)::BIGINT AS plays
                    FROM ({spellings}
                          UNION ALL
                          SELECT {base_song}, artist_name, track_name, recording_mbid, plays
                          FROM base_spellings)
                    GROUP BY ALL
                    """
                )
            finally:
                con.unregister("base_plays")
                con.unregister("base_spellings")
        con.execute("DROP TABLE partial_spellings")
        # The displayed spelling is the one played most; ties go to the greatest spelling
        # so the choice never depends on row order. The song's recording MBID likewise: of
        # the valid ones its listens carried, the one with the most plays, ties to the
        # greatest; NULL when none carried one. Popularity: the sum of capped plays.
        # Picked by a window's first row, not arg_max: arg_max keeps its strings in
        # aggregate states DuckDB cannot spill (4M songs ran out of a 2 GB cap), a window
        # sorts, and sorts spill.
        on_step("songs")
        con.execute(
            """
            CREATE TABLE merged_songs AS
            WITH display AS (
                SELECT song, artist_name AS a, track_name AS t
                FROM (SELECT song, artist_name, track_name, sum(plays) AS n
                      FROM merged_spellings GROUP BY ALL)
                QUALIFY row_number() OVER (
                    PARTITION BY song ORDER BY n DESC, artist_name DESC, track_name DESC
                ) = 1
            ), mbid AS (
                SELECT song, recording_mbid
                FROM (SELECT song, recording_mbid, sum(plays) AS n
                      FROM merged_spellings WHERE recording_mbid IS NOT NULL GROUP BY ALL)
                QUALIFY row_number() OVER (
                    PARTITION BY song ORDER BY n DESC, recording_mbid DESC
                ) = 1
            ), popularity AS (
                SELECT song, sum(least(plays, 10))::BIGINT AS plays,
                       sum(plays)::BIGINT AS raw_plays, count(*)::BIGINT AS listeners
                FROM merged_plays GROUP BY song
            )
            SELECT p.song, d.a AS artist_name, d.t AS track_name,
                   p.plays, p.raw_plays, p.listeners, m.recording_mbid
            FROM popularity p JOIN display d USING (song)
            LEFT JOIN mbid m USING (song)
            """
        )
        self.built = True

    def counts(self) -> Counts:
        """Users, songs and user-song pairs of the built tables."""
        users, pairs = self.con.execute(
            "SELECT count(DISTINCT user_name), count(*) FROM merged_plays"
        ).fetchone()
        songs = self.con.execute("SELECT count(*) FROM merged_songs").fetchone()[0]
        log.info("merged %d plays over %d songs", pairs, songs)
        return Counts(users=int(users), songs=int(songs), pairs=int(pairs))

    def write(self, folder: Path, transform: str, on_step: Step = _no_step) -> None:
        """DuckDB writes the built tables and the ratings by `transform` into `folder`
        (`on_step(name)` before each of its WRITE_STEPS files)."""
        write_tables(self.con, folder, transform, on_step=on_step)

    def finish(self) -> tuple[pa.Table, pa.Table]:
        """Build, then the (plays, songs) tables as Arrow, in the files' order: for small
        inputs and tests (the ETL itself has DuckDB write the files, see `write`)."""
        self.build()
        plays = self.con.sql(f"{_PLAYS_OUT} {_PLAYS_ORDER}").to_arrow_table()
        return plays, self.con.sql(_SONGS_OUT).to_arrow_table()

    def stats(self) -> dict:
        """The engine's memory limit, threads and how much it spilled."""
        return self.engine.stats()

    def close(self) -> None:
        """Release the embedded database and its spill folder (a batch still in flight,
        after a failure or an interrupt, is cancelled first)."""
        if self._inflight is not None:
            self.con.interrupt()
            self._inflight.join()
            self._inflight = None
        if self._parser is not None:
            self._parser.close()
        self.engine.close()

    def __enter__(self) -> PlaysAggregator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
