"""The bulk JSON-lines parser, the strict per-line parser and the staged read, on
generated hostile input.

Both must keep the same listens and reject the same lines under the same reasons, whatever
JSON type sits in whatever field, with byte-order marks, CR/LF mixes, control characters,
unicode whitespace, empty input and inputs whose size is an exact multiple of the block.
"""

from __future__ import annotations

import functools
import io
import tarfile
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from songrec.etl.aggregate import PlaysAggregator
from songrec.etl.dumps import reader as dumps
from songrec.etl.dumps.formats import plan_inputs
from songrec.etl.dumps.reader import read_inputs
from songrec.etl.listen_blocks import BlockParser, parse_stream, rebatch
from songrec.etl.listens import EXAMPLES_PER_REASON, LISTEN_SCHEMA, Rejects, parse_lines
from songrec.etl.query import EARLIEST, LATEST

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


# The staged path (etl.dumps.staged): DuckDB's read_json decodes the dump's own files inside the
# aggregating engine, and falls back to BlockParser for any group of blocks it cannot
# vouch for. It must aggregate the same plays and count the same rejects, with the same
# examples, as the Arrow path, inside and outside a time window.
clean_names = st.text(min_size=1, max_size=12).filter(str.strip)


@st.composite
def clean_lines(draw) -> bytes:
    """A listen the fast path must take as it is."""
    meta = {"artist_name": draw(clean_names), "track_name": draw(clean_names)}
    if draw(st.booleans()):
        meta["additional_info"] = {"recording_mbid": draw(st.sampled_from([MBID, "x", None]))}
    time_key = draw(st.sampled_from(["listened_at", "timestamp"]))
    obj = {"user_name": draw(clean_names), time_key: draw(st.integers(0, 2_000_000_000))}
    obj["track_metadata"] = meta
    return orjson.dumps(obj)


MBID = "c7d0bf6e-b2aa-4ffa-bded-2448415b39b0"
WINDOWS = [(EARLIEST, LATEST), (datetime(2001, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC))]


def _aggregated(path: Path, user: str | None, window, staged: bool, block: int) -> tuple:
    """Plays, songs, rejects and listen counts of one dump file, staged or not."""
    rejects = Rejects()
    with (
        mock.patch.object(dumps, "BLOCK_BYTES", block),
        PlaysAggregator(*window, memory_limit="256MB", threads=1) as aggregator,
    ):
        stream = read_inputs(plan_inputs([path], user), rejects, {}, prefetch=0)
        if staged:
            stream.stage_in(aggregator.staging)
        for batch in stream:
            aggregator.add(batch)
        kept = aggregator.listens_kept()
        seen, outside = aggregator.listens_seen, aggregator.outside_window
        left = sorted(aggregator.staging.folder.glob("*"))
        plays, songs = aggregator.finish()
    return (
        plays.to_pylist(),
        songs.to_pylist(),
        rejects.counts,
        rejects.examples,
        (kept, seen, outside),
        left,
    )


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.lists(clean_lines(), min_size=1, max_size=30),
        st.lists(st.one_of(clean_lines(), listen_lines()), max_size=30),
    ),
    st.sampled_from([None, "exporter"]),
    st.sampled_from(WINDOWS),
    st.sampled_from([256, 1 << 20]),  # blocks of a few lines, or one
)
def test_staged_and_arrow_paths_aggregate_the_same(tmp_path_factory, lines, user, window, block):
    data = b"".join(line + b"\n" for line in lines)
    folder = tmp_path_factory.mktemp("dump")
    path = folder / ("f.listens" if user is None else "f.jsonl")
    path.write_bytes(data)
    staged = _aggregated(path, user, window, True, block)
    arrow = _aggregated(path, user, window, False, block)
    assert staged == arrow
    assert staged[-1] == []  # every staged file deleted once read


parquet_names = st.one_of(st.none(), names, clean_names)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.integers(1, 5)),
            parquet_names,
            parquet_names,
            st.one_of(st.none(), st.integers(-(10**12), 4 * 10**12)),
        ),
        min_size=1,
        max_size=30,
    ),
    st.sampled_from(WINDOWS),
    st.booleans(),
)
def test_staged_and_arrow_parquet_agree(tmp_path_factory, rows, window, in_tar):
    users, artists, tracks, millis = (list(column) for column in zip(*rows, strict=True))
    table = pa.table(
        {
            "listened_at": pa.array(millis, pa.timestamp("ms")),
            "user_id": pa.array(users, pa.int64()),
            "artist_name": pa.array(artists, pa.string()),
            "recording_name": pa.array(tracks, pa.string()),
            "recording_mbid": pa.array([MBID] * len(rows), pa.string()),
        }
    )
    folder = tmp_path_factory.mktemp("spark")
    sink = folder / "0.parquet"
    pq.write_table(table, sink, row_group_size=7)
    path = sink
    if in_tar:
        path = folder / "listenbrainz-spark-dump-1-20250101-000000-full.tar"
        with tarfile.open(path, "w") as tar:
            tar.add(sink, arcname="0.parquet")
    staged = _aggregated(path, None, window, True, BLOCK)
    arrow = _aggregated(path, None, window, False, BLOCK)
    assert staged[:3] == arrow[:3] and staged[4:] == arrow[4:]
    # Examples: the Arrow path names rows in the order DuckDB's threads hand them over,
    # the staged one the first rows; all of them when there are no more than five.
    for reason, count in staged[2].items():
        assert len(staged[3][reason]) == len(arrow[3][reason])
        if count <= EXAMPLES_PER_REASON:
            assert set(staged[3][reason]) == set(arrow[3][reason])
    assert sink.exists()  # a file of the user's own is read in place, never deleted
