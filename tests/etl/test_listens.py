"""The JSON-lines listen parser: every bad-line reason, and the bulk parser equal to it."""

from __future__ import annotations

import io
import json

import orjson
import pyarrow as pa
import pytest

from songrec.etl.listen_blocks import BlockParser, parse_stream, rebatch
from songrec.etl.listens import LISTEN_SCHEMA, REASONS, Rejects, parse_lines


def _line(**fields) -> bytes:
    listen = {
        "user_name": "alice",
        "timestamp": 1_700_000_000,
        "track_metadata": {"artist_name": "Björk", "track_name": "Jóga"},
    }
    listen.update(fields)
    # The standard library writes integers beyond 64 bits, which orjson refuses.
    return json.dumps(listen, ensure_ascii=False).encode()


def _meta(**fields) -> dict:
    return {"artist_name": "Björk", "track_name": "Jóga", **fields}


GOOD = _line()
# One line per reason, each a way a real file can go wrong.
BAD_LINES = {
    "invalid_json": b'{"user_name": "alice", "timestamp": 17',
    "not_an_object": b'["alice", 1700000000]',
    "bad_track_metadata": _line(track_metadata="Björk - Jóga"),
    "bad_user_name": _line(user_name="   "),
    "bad_artist_name": _line(track_metadata=_meta(artist_name=None)),
    "bad_track_name": _line(track_metadata=_meta(track_name=42)),
    "missing_timestamp": orjson.dumps({"user_name": "alice", "track_metadata": _meta()}),
    "bad_timestamp": _line(timestamp="yesterday"),
}


def _parse(lines: list[bytes], user: str | None = None) -> tuple[pa.Table, Rejects]:
    rejects = Rejects()
    batches = list(parse_lines(lines, rejects, "f.jsonl", user))
    table = pa.concat_tables(batches) if batches else LISTEN_SCHEMA.empty_table()
    return table, rejects


def test_every_reason_is_counted_with_its_line_and_good_lines_around_are_kept():
    assert set(BAD_LINES) == set(REASONS)
    lines = []
    for bad in BAD_LINES.values():
        lines += [GOOD, bad]
    lines.append(GOOD)
    table, rejects = _parse(lines)
    assert table.num_rows == len(BAD_LINES) + 1
    assert rejects.counts == dict.fromkeys(REASONS, 1)
    # Bad lines are the even line numbers 2, 4, ... in REASONS order.
    assert rejects.examples == {
        reason: [f"f.jsonl:{2 * (k + 1)}"] for k, reason in enumerate(BAD_LINES)
    }
    assert table.schema == LISTEN_SCHEMA


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (_line(user_name=""), "bad_user_name"),
        (_line(user_name=7), "bad_user_name"),
        (_line(track_metadata=_meta(artist_name="\u3000\t")), "bad_artist_name"),
        (_line(track_metadata=_meta(track_name=["Jóga"])), "bad_track_name"),
        (_line(track_metadata=None), "bad_track_metadata"),
        (_line(timestamp=True), "bad_timestamp"),
        (_line(timestamp=-5), "bad_timestamp"),
        (_line(timestamp=10**20), "bad_timestamp"),
        (_line(timestamp="inf"), "bad_timestamp"),
        (_line(timestamp=None), "missing_timestamp"),
        (b"null", "not_an_object"),
        (b'{"user_name": NaN}', "invalid_json"),
        (b"\xff\xfe{}", "invalid_json"),
    ],
)
def test_more_ways_to_be_wrong(line, reason):
    table, rejects = _parse([line])
    assert table.num_rows == 0
    assert rejects.counts == {reason: 1}


def test_listened_at_or_timestamp_and_numeric_forms():
    lines = [
        _line(),
        _line(timestamp=None, listened_at=1_700_000_001),
        _line(listened_at=None, timestamp=1_700_000_002),
        _line(timestamp="1700000003"),
        _line(timestamp=1_700_000_004.9),
    ]
    table, rejects = _parse(lines)
    assert rejects.total == 0
    seconds = table.column("listened_at").cast(pa.int64()).to_pylist()
    assert seconds == [1_700_000_000 + k for k in range(5)]


def test_user_export_lines_take_the_given_user():
    line = orjson.dumps({"listened_at": 1_700_000_000, "track_metadata": _meta()})
    table, rejects = _parse([line, b"", b"   "], user="me")
    assert table.column("user_name").to_pylist() == ["me"]
    assert rejects.total == 0  # blank lines are not listens, nor errors
    assert _parse([line])[1].counts == {"bad_user_name": 1}


# Extensions of JSON that DuckDB's reader (yyjson) accepts and orjson refuses. In a field
# songrec reads they still fail its checks (a NaN time is no time)...
LAX_BUT_CAUGHT = [
    b'{"user_name":"u","timestamp":1e999,"track_metadata":{"artist_name":"a","track_name":"t"}}',
    b'{"user_name":"u","timestamp":NaN,"track_metadata":{"artist_name":"a","track_name":"t"}}',
]
# Lines the bulk parser must decide exactly as parse_lines does, including the ones its
# JSON reader (yyjson) sees differently from orjson.
TRICKY = [
    *BAD_LINES.values(),
    GOOD,
    _line(user_name='say "hi"\\', track_metadata=_meta(artist_name="Sigur Rós \u2603")),
    orjson.dumps({"user_name": "ascii", "timestamp": 1, "track_metadata": _meta()}).replace(
        b"Bj\xc3\xb6rk", b"Bj\\u00f6rk"
    ),
    _line(track_metadata=_meta(artist_name="\u00a0\u2009")),  # blank to Python
    _line(track_metadata=_meta(artist_name="\x1c")),  # whitespace to Python's str.strip
    _line(track_metadata=_meta(artist_name=" x ")),
    _line(track_metadata=_meta(track_name="\u200b")),  # zero-width space is not whitespace
    _line(timestamp=0),
    _line(timestamp=253402300799),
    _line(timestamp=253402300800),
    _line(timestamp=-0.5),
    _line(timestamp="17e8"),
    _line(timestamp={"s": 1}),
    _line(listened_at="1700000000", timestamp="nope"),
    _line(timestamp=99999999999999999999999),
    *LAX_BUT_CAUGHT,
    b'\xef\xbb\xbf{"user_name":"u","timestamp":5,"track_metadata":{"artist_name":"a","track_name":"t"}}',
    b'{"user_name":"u","timestamp":5,"track_metadata":{"artist_name":"a\tb","track_name":"t"}}',
    b'{"user_name":"u","timestamp":5,"track_metadata":{"artist_name":"\\ud800","track_name":"t"}}',
    b'{"user_name":"u","timestamp":5,"track_metadata":{"artist_name":"a","track_name":"t"}} x',
    GOOD + b"\r",
    b"",
    b"   ",
    b"5",
    b'"text"',
    b"{}",
]
# ...elsewhere the bulk parser reads the listen, where parse_lines says invalid_json.
LAX_ACCEPTED = [
    b'{"user_name":"u","timestamp":5,"track_metadata":{"artist_name":"a","track_name":"t",}}',
    b'{"user_name":"u","timestamp":5,"x":NaN,"track_metadata":{"artist_name":"a","track_name":"t"}}',
    b'{"user_name":"u","timestamp":5,"x":-Infinity,"track_metadata":{"artist_name":"a","track_name":"t"}}',
    b'{"user_name":"u","timestamp":5,"x":1e999,"track_metadata":{"artist_name":"a","track_name":"t"}}',
]


def _bulk(data: bytes, user: str | None = None, block_bytes: int = 1 << 20):
    rejects = Rejects()
    parser = BlockParser(rejects)
    try:
        tables = list(rebatch(parse_stream(io.BytesIO(data), parser, "f.jsonl", user, block_bytes)))
    finally:
        parser.close()
    table = pa.concat_tables(tables) if tables else LISTEN_SCHEMA.empty_table()
    return table, rejects


def _rows(table: pa.Table) -> list[tuple]:
    return sorted(zip(*(table.column(c).to_pylist() for c in table.column_names), strict=True))


@pytest.mark.parametrize("user", [None, "me"])
@pytest.mark.parametrize("block_bytes", [64, 1 << 20])
def test_bulk_parser_equals_the_line_parser(user, block_bytes):
    lines = [GOOD, *TRICKY, GOOD]
    data = b"\n".join(lines)  # no newline at the end: the last line still counts
    expected, expected_rejects = _parse(data.split(b"\n"), user)
    table, rejects = _bulk(data, user, block_bytes)
    assert _rows(table) == _rows(expected)
    assert table.schema == LISTEN_SCHEMA
    assert rejects.counts == expected_rejects.counts
    assert rejects.examples == expected_rejects.examples
    assert rejects.total > 10 and table.num_rows > 5


def test_bulk_parser_reads_json_extensions_that_orjson_refuses():
    assert all(b"NaN" in x or b"1e999" in x for x in LAX_BUT_CAUGHT)
    data = b"\n".join([GOOD, *LAX_ACCEPTED])
    table, rejects = _bulk(data)
    assert table.num_rows == 1 + len(LAX_ACCEPTED) and rejects.total == 0
    _, line_rejects = _parse(data.split(b"\n"))
    assert line_rejects.counts == {"invalid_json": len(LAX_ACCEPTED)}


def test_bulk_parser_falls_back_on_bytes_that_are_not_utf8():
    data = GOOD + b"\n" + _line(user_name="x").replace(b'"x"', b'"\xff"') + b"\n" + GOOD + b"\n"
    expected, expected_rejects = _parse(data.split(b"\n"))
    table, rejects = _bulk(data)
    assert _rows(table) == _rows(expected)
    assert rejects.counts == expected_rejects.counts == {"invalid_json": 1}
    assert rejects.examples == {"invalid_json": ["f.jsonl:2"]}


def test_bulk_parser_keeps_line_numbers_across_blocks():
    lines = [GOOD] * 1000
    lines[123] = lines[987] = b"{broken"
    table, rejects = _bulk(b"\n".join(lines) + b"\n", block_bytes=4096)
    assert table.num_rows == 998
    assert rejects.examples == {"invalid_json": ["f.jsonl:124", "f.jsonl:988"]}


def test_rebatch_merges_small_tables():
    small = _parse([GOOD, GOOD])[0]
    merged = list(rebatch([small] * 5, batch_rows=4))
    assert [t.num_rows for t in merged] == [4, 4, 2]


def test_the_bulk_parsers_whitespace_is_pythons():
    """The bulk parser's list of blank characters is every code point str.isspace()
    accepts in this Python (listed as constants: scanning Unicode costs 0.7 s a run)."""
    import sys

    from songrec.etl.listen_blocks import PY_WHITESPACE

    assert PY_WHITESPACE == tuple(c for c in range(sys.maxunicode + 1) if chr(c).isspace())
