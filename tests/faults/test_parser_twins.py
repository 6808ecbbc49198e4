"""The bulk JSON-lines parser and the strict per-line parser, on generated hostile input.

Both must keep the same listens and reject the same lines under the same reasons, whatever
JSON type sits in whatever field, with byte-order marks, CR/LF mixes, control characters,
unicode whitespace, empty input and inputs whose size is an exact multiple of the block.
"""

from __future__ import annotations

import functools
import io

import orjson
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from songrec.etl.listen_blocks import BlockParser, parse_stream, rebatch
from songrec.etl.listens import LISTEN_SCHEMA, Rejects, parse_lines

BLOCK = 1 << 12
WHITESPACE = " \t\u00a0\u2003\u3000\u200b\x1c\x85"
names = st.one_of(
    st.text(min_size=0, max_size=12),
    st.text(alphabet=WHITESPACE, max_size=4),
    st.text(alphabet="ab \u00e9\u2603\x01", min_size=1, max_size=6),
)
json_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    names,
    st.lists(st.integers(-(2**63), 2**63 - 1), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(-(2**63), 2**63 - 1), max_size=2),
)
times = st.one_of(
    st.integers(-10, 253402300810),
    st.floats(-1e3, 3e11, allow_nan=False),
    st.integers(0, 2**40).map(str),
    st.sampled_from(["17e8", "1.5", " 5", "abc", "inf", "-0"]),
    json_values,
)


@st.composite
def listen_lines(draw) -> bytes:
    """One line: a listen object with any JSON type in any field, or something else."""
    kind = draw(st.sampled_from(["listen", "listen", "listen", "other", "raw"]))
    if kind == "raw":
        return draw(st.sampled_from([b"", b"   ", b"{", b"[1]", b"nul", b"\xff\xfe", b"5"]))
    if kind == "other":
        return orjson.dumps(draw(json_values))
    obj = {}
    for key, value in (("user_name", names), ("listened_at", times), ("timestamp", times)):
        if draw(st.booleans()):
            obj[key] = draw(st.one_of(value, json_values))
    meta = {}
    for key in ("artist_name", "track_name"):
        if draw(st.integers(0, 5)):
            meta[key] = draw(st.one_of(names, names, json_values))
    obj["track_metadata"] = meta if draw(st.integers(0, 8)) else draw(json_values)
    return orjson.dumps(obj)


def _strict(data: bytes, user: str | None) -> tuple[list, dict]:
    rejects = Rejects()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    tables = list(parse_lines(lines, rejects, "f", user))
    return _rows(tables), rejects.counts


@functools.cache
def _parser() -> BlockParser:
    # One embedded DuckDB for every example: a connection's first JSON query is slow.
    return BlockParser(Rejects())


def _bulk(data: bytes, user: str | None, block: int = BLOCK) -> tuple[list, dict]:
    parser = _parser()
    parser.rejects = rejects = Rejects()
    tables = list(rebatch(parse_stream(io.BytesIO(data), parser, "f", user, block)))
    return _rows(tables), rejects.counts


def _rows(tables: list[pa.Table]) -> list[tuple]:
    table = pa.concat_tables(tables) if tables else LISTEN_SCHEMA.empty_table()
    return sorted(zip(*(table.column(c).to_pylist() for c in table.column_names), strict=True))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(listen_lines(), max_size=40),
    st.sampled_from([b"\n", b"\r\n"]),
    st.booleans(),
    st.sampled_from([None, "exporter"]),
)
def test_both_parsers_keep_and_reject_the_same_lines(lines, newline, bom, user) -> None:
    data = (b"\xef\xbb\xbf" if bom else b"") + b"".join(line + newline for line in lines)
    assert _bulk(data, user) == _strict(data, user)


def test_a_byte_order_mark_does_not_cost_the_first_listen() -> None:
    line = orjson.dumps(
        {
            "user_name": "u",
            "listened_at": 5,
            "track_metadata": {"artist_name": "a", "track_name": "t"},
        }
    )
    for data in (b"\xef\xbb\xbf" + line + b"\n", b"\xef\xbb\xbf" + line):
        rows, rejects = _bulk(data, None)
        assert len(rows) == 1 and rejects == {}
        assert _strict(data, None) == (rows, rejects)


def test_a_boolean_time_is_no_time_in_either_parser() -> None:
    for value in (True, False):
        line = orjson.dumps(
            {
                "user_name": "u",
                "timestamp": value,
                "track_metadata": {"artist_name": "a", "track_name": "t"},
            }
        )
        assert _bulk(line + b"\n", None) == ([], {"bad_timestamp": 1}) == _strict(line, None)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 3), st.integers(1, 60))
def test_empty_and_block_sized_inputs_end(blocks, line_length) -> None:
    # Inputs that end exactly at a block boundary (or are empty) once made the buffer double
    # forever; each must end, with every line decided.
    line = b"x" * (line_length - 1) + b"\n"
    data = line * (blocks * BLOCK // len(line))
    data += b"y" * (blocks * BLOCK - len(data))
    assert len(data) == blocks * BLOCK
    rows, rejects = _bulk(data, None)
    written = [line for line in data.splitlines() if line.strip()]  # blank lines are no listens
    assert rows == [] and sum(rejects.values()) == len(written)
    assert _strict(data, None) == (rows, rejects)
