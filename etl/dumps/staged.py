"""Listens files the aggregating DuckDB reads itself: the dumps' fast path.

Handing listens to the aggregation as Arrow batches means parsing them once (in Python or
in a second DuckDB) and copying them across; at 10M listens that cost more than the
aggregation. Instead the dump reader stages what it reads in files of a private folder: a
Spark dump's Parquet members as they are (a plain file of an unpacked dump is used in
place), JSON lines in blocks cut at line ends. The aggregator then runs DuckDB's own
readers (read_parquet, read_json: parallel, only the needed fields) straight into the one
listens -> plays query, in its own memory-capped engine, and the staged file is deleted.

The result is the Arrow path's, listen for listen and reject for reject:
- Parquet rows are classified by etl.dumps.parquet.listen_select, as on the Arrow path;
  when fewer listens are kept than the file has rows, one more scan counts the rejects by
  reason (with row examples) and the listens outside the time window.
- JSON blocks are decoded into a temporary table with etl.listen_blocks' SQL, which marks
  the lines it can prove valid (`sure`). When every line of the blocks is there and sure,
  the table is aggregated; else the blocks are parsed again by BlockParser (parse_lines'
  reasons and line numbers), whose listens take the Arrow path. So blocks holding a
  reject, a blank line or bytes DuckDB cannot read cost a second parse, and nothing else
  changes.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from songrec.etl.dumps.parquet import GLOB_CHARACTERS, listen_select
from songrec.etl.errors import EtlError
from songrec.etl.listen_blocks import BlockParser, block_sql, count_lines, iter_blocks
from songrec.etl.listens import Rejects

# Lines gathered before one read_json runs: each run aggregates its own partial plays,
# and larger runs leave fewer partial rows to merge (as etl.aggregate's BUFFER_ROWS).
STAGE_LINES = 2_000_000
# Parquet rows one query reads at most, unless the staging folder says otherwise (the
# aggregator sets it from its memory): consecutive staged files are read together up to
# it. A Spark dump's member holds 1.5-2.5M listens, and each query leaves partial rows per
# (listener, spelling) it saw; at 100M listens one query per member left 35M partial
# plays for 21M pairs (and 25M partial spellings for 4.9M), which the merge then reads.
QUERY_ROWS = 6_000_000
COPY_BYTES = 8 << 20
# read_json reads each field as JSON text, exactly as block_sql's json_transform shape.
_JSON_COLUMNS = (
    "{'user_name': 'JSON', 'listened_at': 'JSON', 'timestamp': 'JSON', "
    "'track_metadata': 'STRUCT(artist_name JSON, track_name JSON, "
    "mbid_mapping STRUCT(recording_mbid JSON), additional_info STRUCT(recording_mbid JSON))'}"
)


def can_stage(folder: Path) -> bool:
    """DuckDB reads a file name as a pattern: stage only where the path holds none."""
    return not GLOB_CHARACTERS & set(str(folder))


@dataclass
class StagedParquet:
    """A Parquet file of listens for the aggregator to read; `owned`: a staged copy,
    deleted once read (else the user's own file, left alone)."""

    path: Path
    name: str  # what reject examples call it (a tar member's name)
    rows: int
    rejects: Rejects
    schema: pa.Schema  # the file's, as its footer gives it
    owned: bool = True

    @property
    def num_rows(self) -> int:
        """Rows of the file (the progress callback's count)."""
        return self.rows


@dataclass
class ParquetGroup:
    """Staged Parquet files of one schema, read by one query (see QUERY_ROWS)."""

    parts: list[StagedParquet]

    @property
    def num_rows(self) -> int:
        """Rows of the files (the progress callback's count)."""
        return sum(part.rows for part in self.parts)


@dataclass
class JsonBlock:
    """One staged block of JSON lines: where it came from and its first line's number."""

    path: Path
    name: str
    first_line: int
    lines: int


@dataclass
class StagedJson:
    """Staged blocks of JSON lines, read by one read_json; `user` names the listener of
    an export (its lines carry no user name)."""

    blocks: list[JsonBlock]
    user: str | None
    rejects: Rejects

    @property
    def num_rows(self) -> int:
        """Lines of the blocks (the progress callback's count)."""
        return sum(block.lines for block in self.blocks)


Staged = StagedParquet | ParquetGroup | StagedJson


class StagingFolder:
    """Numbered files in one folder (inside the engine's private spill folder), and how
    many Parquet rows the aggregator reads in one query (`query_rows`)."""

    def __init__(self, folder: Path, query_rows: int = QUERY_ROWS) -> None:
        self.folder = folder
        self.count = 0
        self.query_rows = query_rows

    def new_file(self, suffix: str) -> Path:
        """A fresh file name in the folder."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.count += 1
        return self.folder / f"staged-{self.count:06d}{suffix}"


def stage_parquet(
    stream: BinaryIO, name: str, folder: StagingFolder, rejects: Rejects
) -> StagedParquet:
    """Copy one Parquet member (of a tar) into the staging folder."""
    path = folder.new_file(".parquet")
    with path.open("wb") as out:
        shutil.copyfileobj(stream, out, COPY_BYTES)
    return staged_parquet_file(path, name, rejects)


def stage_parquet_span(
    source: BinaryIO, offset: int, size: int, name: str, folder: StagingFolder, rejects: Rejects
) -> StagedParquet:
    """Copy bytes offset..offset+size of a plain file (a Parquet member of an uncompressed
    tar) into the staging folder; EOFError if the file ends before."""
    path = folder.new_file(".parquet")
    with path.open("wb") as out:
        copy_span(source.fileno(), out.fileno(), offset, size)
    return staged_parquet_file(path, name, rejects)


def staged_parquet_file(
    path: Path, name: str, rejects: Rejects, owned: bool = True
) -> StagedParquet:
    """The Parquet file `path` for the aggregator to read, with its rows and schema from
    one read of its footer; `owned`: a staged copy (else the user's own file)."""
    footer = pq.ParquetFile(path)
    return StagedParquet(path, name, footer.metadata.num_rows, rejects, footer.schema_arrow, owned)


def copy_span(source: int, target: int, offset: int, size: int, in_kernel: bool = True) -> None:
    """Append bytes offset..offset+size of file descriptor `source` to `target`.

    The kernel copies them (copy_file_range) where it can: a third of the time of reading
    them through Python (a 10M-listen Spark dump: 0.33 s against 1.0 s, on the reader's
    thread, beside the aggregation); else pread/write in COPY_BYTES pieces."""
    done = 0
    copy = getattr(os, "copy_file_range", None) if in_kernel else None
    while done < size:
        if copy is not None:
            try:
                n = copy(source, target, size - done, offset + done)
            except OSError:  # not across these file systems, or not on this kernel
                copy = None
                continue
        else:
            data = os.pread(source, min(COPY_BYTES, size - done), offset + done)
            n = len(data)
            with memoryview(data) as view:
                written = 0
                while written < n:
                    written += os.write(target, view[written:])
        if not n:
            raise EOFError("tar archive ends inside a member")
        done += n


def stage_json_lines(
    stream: BinaryIO,
    name: str,
    user: str | None,
    folder: StagingFolder,
    rejects: Rejects,
    buffer: bytearray,
) -> Iterator[StagedJson]:
    """JSON lines of one file, written block by block (`buffer` sized) into the staging
    folder, with parse_stream's line numbers: one StagedJson a block (see `regroup`)."""
    line_no = 1
    for block, end in iter_blocks(stream, buffer):
        lines = count_lines(block, end)
        path = folder.new_file(".jsonl")
        with path.open("wb") as out, memoryview(block) as view:
            out.write(view[:end])
        yield StagedJson([JsonBlock(path, name, line_no, lines)], user, rejects)
        line_no += lines


def regroup(
    items: Iterable, stage_lines: int = STAGE_LINES, query_rows: int = QUERY_ROWS
) -> Iterator:
    """Staged JSON blocks gathered, across files, into groups of about `stage_lines`
    lines for one read_json each (the listener of an export never mixes with another's);
    staged Parquet files into ParquetGroups (`parquet_groups`); anything else passes
    through as it comes."""
    return _regroup_json(parquet_groups(items, query_rows), stage_lines)


def parquet_groups(items: Iterable, query_rows: int = QUERY_ROWS) -> Iterator:
    """Consecutive staged Parquet files of one schema gathered into ParquetGroups of at
    most `query_rows` rows (a larger file is a group of its own); anything else passes
    through, in order."""
    pending: ParquetGroup | None = None
    for item in items:
        if isinstance(item, StagedParquet):
            if pending is not None and not _joins(pending, item, query_rows):
                yield pending
                pending = None
            if pending is None:
                pending = ParquetGroup([])
            pending.parts.append(item)
            continue
        if pending is not None:
            yield pending
            pending = None
        yield item
    if pending is not None:
        yield pending


def _joins(group: ParquetGroup, item: StagedParquet, query_rows: int) -> bool:
    """Whether `item` may be read by the same query as `group`."""
    first = group.parts[0]
    return (
        group.num_rows + item.rows <= query_rows
        and item.rejects is first.rejects
        and item.schema.equals(first.schema)
    )


def _regroup_json(items: Iterable, stage_lines: int) -> Iterator:
    pending: StagedJson | None = None
    for item in items:
        if isinstance(item, StagedJson):
            if pending is not None and pending.user == item.user:
                pending.blocks.extend(item.blocks)
            else:
                if pending is not None:
                    yield pending
                pending = StagedJson(list(item.blocks), item.user, item.rejects)
            if pending.num_rows >= stage_lines:
                yield pending
                pending = None
            continue
        yield item
    if pending is not None:
        yield pending


def release(item: Staged) -> None:
    """Delete what was staged for `item` (never a user's own file)."""
    if isinstance(item, StagedParquet):
        if item.owned:
            item.path.unlink(missing_ok=True)
        return
    if isinstance(item, ParquetGroup):
        for part in item.parts:
            release(part)
        return
    for block in item.blocks:
        block.path.unlink(missing_ok=True)


@dataclass
class Outcome:
    """What reading a staged item did: listens the parser stage passed (`seen`), those
    of them outside the time window, and listens left for the Arrow path."""

    seen: int = 0
    outside: int = 0
    tables: list[pa.Table] = field(default_factory=list)


def read_staged(
    con: duckdb.DuckDBPyConnection,
    item: Staged,
    insert: Callable[[str, dict], int],
    window: dict,
    parser: Callable[[], BlockParser],
) -> Outcome:
    """Aggregate a staged item in `con`: `insert(sql, params)` runs the listens -> plays
    query over the listens `sql` selects and says how many it kept; `parser()` a
    BlockParser for JSON blocks DuckDB could not vouch for."""
    if isinstance(item, StagedParquet):
        item = ParquetGroup([item])
    if isinstance(item, ParquetGroup):
        return _read_parquet(con, item, insert, window)
    return _read_json(con, item, insert, window, parser)


def _read_parquet(
    con: duckdb.DuckDBPyConnection,
    group: ParquetGroup,
    insert: Callable,
    window: dict,
) -> Outcome:
    """The group's files in one query; then, if some row was not kept, each file's rows
    counted by reason. A file DuckDB cannot read fails the group's query before it
    inserts anything: the files are then read one by one, so the error names the file."""
    select = listen_select(group.parts[0].schema, "read_parquet($files)")
    try:
        kept = insert(
            "SELECT user_name, artist_name, track_name, listened_at, recording_mbid "
            f"FROM ({select}) WHERE reason IS NULL",
            {"files": [str(part.path) for part in group.parts]},
        )
    except (duckdb.OutOfMemoryException, duckdb.InterruptException):
        raise
    except duckdb.Error as exc:
        if len(group.parts) == 1:
            raise _unreadable(group.parts[0], exc) from None
        alone = [_read_parquet(con, ParquetGroup([part]), insert, window) for part in group.parts]
        return _sum(alone)
    if kept == group.num_rows:
        return Outcome(seen=kept)
    # Some row was rejected, dropped by the query or outside the window: count which.
    return _sum([_count_rejects(con, part, window) for part in group.parts])


def _unreadable(item: StagedParquet, exc: duckdb.Error) -> EtlError:
    """The one-line error for a file DuckDB could not read."""
    first = str(exc).strip().splitlines()[0]
    return EtlError(f"{item.name}: corrupt or unreadable Parquet ({first})")


def _sum(outcomes: list[Outcome]) -> Outcome:
    """The listens seen and outside the window of several Parquet reads together."""
    return Outcome(seen=sum(o.seen for o in outcomes), outside=sum(o.outside for o in outcomes))


def _count_rejects(con: duckdb.DuckDBPyConnection, item: StagedParquet, window: dict) -> Outcome:
    """One file's rejects counted by reason, with row examples, into its Rejects; the
    rows it passed and how many of them lie outside the time window."""
    select = listen_select(
        item.schema, "read_parquet($file, file_row_number = true)", ", file_row_number"
    )
    params = {"file": str(item.path)}
    try:
        rows = con.execute(
            f"""
            SELECT reason, count(*), min(file_row_number, 5),
                   count_if(reason IS NULL AND (listened_at < $start OR listened_at >= $end))
            FROM ({select}) GROUP BY reason
            """,
            {**params, **window},
        ).fetchall()
    except (duckdb.OutOfMemoryException, duckdb.InterruptException):
        raise
    except duckdb.Error as exc:
        raise _unreadable(item, exc) from None
    outcome = Outcome()
    for reason, count, first, outside in rows:
        if reason is None:
            outcome.seen, outcome.outside = int(count), int(outside)
            continue
        first = sorted(first)
        for k, row in enumerate(first):
            # As keep_valid: the last example carries the rest of the count.
            n = 1 if k < len(first) - 1 else count - (len(first) - 1)
            item.rejects.add(reason, f"{item.name}:row {row + 1}", n)
    return outcome


def json_select(user: str | None) -> str:
    """Listens of staged JSON files ($files), each with `sure`: block_sql proved it valid."""
    decoded = block_sql(user is not None).split("), decoded AS (", 1)[1]
    shaped = (
        "WITH shaped AS (SELECT 0 AS i, {'user_name': user_name, 'listened_at': listened_at, "
        "'timestamp': timestamp, 'track_metadata': track_metadata} AS j "
        "FROM read_json($files, format = 'newline_delimited', ignore_errors = true, "
        f"columns = {_JSON_COLUMNS})), decoded AS ("
    )
    name = "$user" if user is not None else "user_name"
    return (
        f"SELECT {name} AS user_name, artist_name, track_name, to_timestamp(secs) AS "
        f"listened_at, recording_mbid, sure FROM ({shaped}{decoded})"
    )


def _read_json(
    con: duckdb.DuckDBPyConnection,
    item: StagedJson,
    insert: Callable,
    window: dict,
    parser: Callable[[], BlockParser],
) -> Outcome:
    lines = item.num_rows
    params = {"files": [str(block.path) for block in item.blocks]}
    if item.user is not None:
        params["user"] = item.user
    # Decoded once into a table: its counts decide, then the aggregation reads it.
    try:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE staged_listens AS {json_select(item.user)}", params
        )
        rows, sure, outside = con.execute(
            "SELECT count(*), count_if(sure), "
            "count_if(listened_at < $start OR listened_at >= $end) FROM staged_listens",
            window,
        ).fetchall()[0]
    except (duckdb.OutOfMemoryException, duckdb.InterruptException):
        raise
    except duckdb.Error:
        rows = sure = outside = -1  # bytes read_json refuses outright: BlockParser decides
    try:
        if rows == sure == lines:
            insert(
                "SELECT user_name, artist_name, track_name, listened_at, recording_mbid "
                "FROM staged_listens",
                {},
            )
            return Outcome(seen=lines, outside=int(outside))
    finally:
        con.execute("DROP TABLE IF EXISTS staged_listens")
    # A line DuckDB could not vouch for: the blocks again, line by line where needed.
    again = parser()
    again.rejects = item.rejects
    tables = []
    for block in item.blocks:
        data = block.path.read_bytes()
        table, _ = again.parse(data, block.name, block.first_line, item.user)
        if table.num_rows:
            tables.append(table)
    return Outcome(tables=tables)


def stage_dir(spill: str) -> Path:
    """The staging folder inside an engine's spill folder (removed with it)."""
    return Path(os.path.join(spill, "staged"))
