"""JSON-lines listens in bulk: big blocks of bytes -> Arrow batches, bad lines counted by reason.

`etl.listens.parse_lines` decides one line at a time in Python (about 130k lines/s). Here a
block of lines goes to DuckDB's JSON functions at once (yyjson, several times faster), and
DuckDB only vouches for lines it can prove valid: a JSON object whose names are JSON strings
holding a non-whitespace character (Python's definition of whitespace) and whose time is a
number in range. Every other line (rejects, numeric strings, bad bytes) goes through
`parse_listen` itself, so reasons, example line numbers and values equal `parse_lines`.
Documented differences: yyjson reads some extensions of JSON that orjson refuses (trailing
commas, NaN/Infinity, numbers beyond double range). NaN or such a number as a name or time
fails songrec's checks and gets parse_listen's verdict; anywhere else (and a trailing comma
anywhere) the listen is kept, where parse_lines says invalid_json. Of a key repeated in one
object, yyjson takes the first value, orjson the last. Real ListenBrainz files hold none of
these (the server writes strict JSON), and catching them costs a regular expression over
every line, about doubling the parse time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import BinaryIO

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from songrec.etl.listens import (
    BATCH_ROWS,
    LISTEN_SCHEMA,
    MAX_TS,
    MIN_TS,
    Rejects,
    listens_table,
    parse_listen,
)

BLOCK_BYTES = 32 << 20
BOM = b"\xef\xbb\xbf"
READ_BYTES = 4 << 20
# Python's str.strip() whitespace, so "blank" means here exactly what it means there:
# every code point whose str.isspace() is true (tests/etl/test_listens.py checks the list
# against all of Unicode; scanning it here cost 0.7 s of every run's start).
PY_WHITESPACE = (
    0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x1F, 0x20, 0x85, 0xA0, 0x1680,
    *range(0x2000, 0x200B), 0x2028, 0x2029, 0x202F, 0x205F, 0x3000,
)  # fmt: skip
_PY_SPACE = "".join(f"\\x{{{c:x}}}" for c in PY_WHITESPACE)
_SHAPE = (
    '{"user_name":"JSON","listened_at":"JSON","timestamp":"JSON",'
    '"track_metadata":{"artist_name":"JSON","track_name":"JSON",'
    '"mbid_mapping":{"recording_mbid":"JSON"},"additional_info":{"recording_mbid":"JSON"}}}'
)


def _text_sql(raw: str) -> str:
    """A JSON-string value re-serialized by json_transform -> its text (NULL if not a string)."""
    # Most names carry no escape: strip the quotes instead of parsing again.
    return (
        f"CASE WHEN starts_with({raw}, '\"') THEN CASE WHEN contains({raw}, '\\') "
        f"THEN ({raw})::JSON->>'$' ELSE {raw}[2:-2] END END"
    )


def usable_sql(name: str) -> str:
    """Not blank: some character is not whitespace. Most names start with visible ASCII,
    which settles it without the regular expression."""
    return (
        f"CASE WHEN {name} IS NULL OR {name} = '' THEN FALSE "
        f"WHEN ord({name}) BETWEEN 33 AND 126 THEN TRUE "
        f"ELSE regexp_matches({name}, '[^{_PY_SPACE}]') END"
    )


def block_sql(with_user: bool) -> str:
    """The query over `block_lines(i, line)`: values, and `sure` for lines proven valid."""
    user_ok = "TRUE" if with_user else usable_sql("user_name")
    return f"""
    WITH shaped AS (
        SELECT i, line, try(json_transform(line, '{_SHAPE}')) AS j FROM block_lines
    ), decoded AS (
        SELECT i,
               {_text_sql("j.user_name")} AS user_name,
               {_text_sql("j.track_metadata.artist_name")} AS artist_name,
               {_text_sql("j.track_metadata.track_name")} AS track_name,
               coalesce(j.listened_at, j.timestamp) AS ts,
               -- parse_listen's raw_mbid: the first of the two that is a string (a part
               -- that is no object reads as an object without the key).
               coalesce({_text_sql("j.track_metadata.mbid_mapping.recording_mbid")},
                        {_text_sql("j.track_metadata.additional_info.recording_mbid")})
                   AS recording_mbid
        FROM shaped
    ), timed AS (
        -- A JSON true would cast to 1: booleans are no time (parse_listen says so too).
        SELECT *,
               CASE WHEN json_type(ts) <> 'BOOLEAN' THEN trunc(TRY_CAST(ts AS DOUBLE)) END AS secs
        FROM decoded
    )
    SELECT i, user_name, artist_name, track_name,
           CASE WHEN secs BETWEEN {MIN_TS} AND {MAX_TS} THEN secs::BIGINT END AS secs,
           recording_mbid,
           coalesce({user_ok} AND {usable_sql("artist_name")}
                    AND {usable_sql("track_name")}
                    AND secs BETWEEN {MIN_TS} AND {MAX_TS}, FALSE) AS sure
    FROM timed
    """


def _lines(block: bytes | memoryview) -> tuple[pa.LargeStringArray, np.ndarray]:
    """The block's lines as one zero-copy Arrow array (each keeps its newline) + offsets."""
    ends = np.flatnonzero(np.frombuffer(block, np.uint8) == 10) + 1
    if len(block) and block[-1] != 10:
        ends = np.append(ends, len(block))
    offsets = np.concatenate(([0], ends)).astype(np.int64)
    lines = pa.LargeStringArray.from_buffers(len(ends), pa.py_buffer(offsets), pa.py_buffer(block))
    return lines, offsets


class BlockParser:
    """Parses blocks of JSON lines in one embedded DuckDB, reused for every file of a run
    (a connection's first JSON query costs a good part of a second)."""

    def __init__(self, rejects: Rejects) -> None:
        self.rejects = rejects
        self.con = duckdb.connect(":memory:")
        self.con.execute("SET enable_progress_bar = false")  # songrec has its own
        self.sql = {False: block_sql(False), True: block_sql(True)}
        self.buffer = bytearray()  # parse_stream's read buffer, kept between files

    def close(self) -> None:
        """Release the embedded database."""
        self.con.close()

    def parse(
        self, block: bytes | memoryview, source: str, first_line: int, user: str | None = None
    ) -> tuple[pa.Table, int]:
        """Valid listens of one block whose first line is number `first_line` (1-based),
        and the number of lines in the block."""
        lines, offsets = _lines(block)
        if not len(lines):
            return LISTEN_SCHEMA.empty_table(), 0
        try:
            self.con.register("block_lines", pa.table({"i": np.arange(len(lines)), "line": lines}))
            out = self.con.sql(self.sql[user is not None]).to_arrow_table()
        except (duckdb.Error, pa.ArrowException):
            # Bytes DuckDB cannot read (e.g. invalid UTF-8): decide every line in Python.
            rows = range(len(lines))
            return self._by_line(block, offsets, rows, source, first_line, user), len(lines)
        finally:
            self.con.unregister("block_lines")
        sure = out.column("sure")
        valid = out.filter(sure).select(
            ["user_name", "artist_name", "track_name", "secs", "recording_mbid"]
        )
        if user is not None:
            valid = valid.set_column(0, "user_name", pa.array([user] * valid.num_rows))
        table = _to_listens(valid)
        if valid.num_rows < out.num_rows:
            unsure = out.column("i").filter(pc.invert(sure)).to_numpy()
            rest = self._by_line(block, offsets, unsure, source, first_line, user)
            # Row order inside a batch does not matter to the aggregation.
            if rest.num_rows:
                table = pa.concat_tables([table, rest])
        return table, len(lines)

    def _by_line(
        self,
        block: bytes,
        offsets: np.ndarray,
        rows: Iterable[int],
        source: str,
        first_line: int,
        user: str | None,
    ) -> pa.Table:
        """`parse_listen` on the given lines of the block, exactly as `parse_lines` does."""
        parsed_rows = []
        for i in sorted(rows):
            line = bytes(block[offsets[i] : offsets[i + 1]])
            if not line.strip():
                continue
            parsed = parse_listen(line, user)
            if isinstance(parsed, str):
                self.rejects.add(parsed, f"{source}:{first_line + int(i)}")
                continue
            parsed_rows.append(parsed)
        return listens_table(parsed_rows)


def _to_listens(table: pa.Table) -> pa.Table:
    return pa.Table.from_arrays(
        [
            table.column(0).cast(pa.string()),
            table.column(1).cast(pa.string()),
            table.column(2).cast(pa.string()),
            table.column(3).cast(pa.int64()).cast(pa.timestamp("s", tz="UTC")),
            table.column(4).cast(pa.string()),
        ],
        schema=LISTEN_SCHEMA,
    )


def parse_stream(
    stream: BinaryIO,
    parser: BlockParser,
    source: str,
    user: str | None = None,
    block_bytes: int = BLOCK_BYTES,
) -> Iterator[pa.Table]:
    """Stream a binary file of JSON lines, a block at a time, into tables of valid listens.

    The same listens, rejects and example line numbers as `parse_lines` over its lines.
    """
    # One buffer per parser, reused by every file: allocating it costs page faults too.
    if len(parser.buffer) != block_bytes:
        parser.buffer = bytearray(block_bytes)
    line_no = 1
    for buffer, end in iter_blocks(stream, parser.buffer):
        with memoryview(buffer) as view:
            table, lines = parser.parse(view[:end], source, line_no, user)
        line_no += lines
        if table.num_rows:
            yield table


# Bytes count_lines looks at in one numpy call.
COUNT_PIECE = 1 << 20


def iter_blocks(stream: BinaryIO, buffer: bytearray) -> Iterator[tuple[bytearray, int]]:
    """The stream in blocks of whole lines, each `buffer[:end]` (valid until the next):
    the last block ends where the input does; a byte-order mark at the start is dropped.

    One buffer is filled again and again, in reads of READ_BYTES: fresh multi-megabyte
    bytes objects for every block cost more in page faults than the decompression. A
    line longer than the buffer gets a bigger one (the caller's stays as it was).
    """
    kept = 0  # bytes of an unfinished line carried to the front of the buffer
    first = True
    while True:
        end, eof = _fill(stream, buffer, kept)
        if first:
            first = False
            if buffer.startswith(BOM):
                # A byte-order mark some editors write: not part of the first listen.
                buffer[: end - len(BOM)] = buffer[len(BOM) : end]
                end -= len(BOM)
        if eof and end == 0:
            return  # an empty input, or one that ended exactly at a block boundary
        cut = end if eof else buffer.rfind(b"\n", 0, end) + 1
        if cut == 0:
            # A line longer than the buffer: a bigger buffer, then read on.
            buffer = buffer + bytearray(len(buffer))
            kept = end
            continue
        yield buffer, cut
        if eof:
            return
        buffer[: end - cut] = buffer[cut:end]
        kept = end - cut


def count_lines(buffer: bytearray, end: int) -> int:
    """Lines of `buffer[:end]` as BlockParser counts them: each newline ends one, and so
    does the end of the block when it ends without one."""
    if not end:
        return 0
    # numpy lets go of the GIL while it counts (bytearray.count does not), a piece at a
    # time into one small scratch array: `block == 10` whole allocates a 32 MB array per
    # block, and its page faults made counting cost 5 s of CPU at 10M listens.
    data = np.frombuffer(buffer, np.uint8, end)
    scratch = np.empty(min(end, COUNT_PIECE), dtype=bool)
    newlines = 0
    for start in range(0, end, COUNT_PIECE):
        piece = data[start : start + COUNT_PIECE]
        found = scratch[: len(piece)]
        np.equal(piece, 10, out=found)
        newlines += int(np.count_nonzero(found))
    return newlines + (buffer[end - 1] != 10)


def _fill(stream: BinaryIO, buffer: bytearray, start: int) -> tuple[int, bool]:
    """Read into `buffer` from `start` until it is full or the stream ends: (end, at EOF)."""
    end = start
    with memoryview(buffer) as view:
        while end < len(buffer):
            n = stream.readinto(view[end : min(len(buffer), end + READ_BYTES)])
            if not n:
                return end, True
            end += n
    return end, False


def rebatch(tables: Iterable[pa.Table], batch_rows: int = BATCH_ROWS) -> Iterator[pa.Table]:
    """Merge small tables into batches of about `batch_rows` rows (fewer, larger
    aggregation steps); large tables pass through."""
    pending: list[pa.Table] = []
    rows = 0
    for table in tables:
        if not isinstance(table, pa.Table):
            # A staged file (etl.dumps.staged) goes on as it is, after what came before it.
            if pending:
                yield pa.concat_tables(pending)
                pending, rows = [], 0
            yield table
            continue
        pending.append(table)
        rows += table.num_rows
        if rows >= batch_rows:
            yield pa.concat_tables(pending) if len(pending) > 1 else table
            pending, rows = [], 0
    if pending:
        yield pa.concat_tables(pending)
