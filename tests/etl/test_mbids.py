"""Recording MBIDs: the SQL keeps canonical ids only, its Python twin agrees, every listens
source hands them on, and a song gets the valid id played most."""

from __future__ import annotations

import functools
import io
import uuid
from datetime import UTC, datetime

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from songrec.etl.aggregate import PlaysAggregator
from songrec.etl.dumps.parquet import read_parquet_files
from songrec.etl.listen_blocks import BlockParser, parse_stream
from songrec.etl.listens import LISTEN_SCHEMA, Rejects, parse_lines, raw_mbid
from songrec.etl.mbids import is_mbid, recording_url, valid_mbid
from songrec.etl.pipeline import EtlRun, run_listens
from songrec.etl.plays_formats import to_partial_plays
from songrec.etl.sample import SampleSpec, sample_listens
from songrec.etl.songs import song_id

WHEN = datetime(2020, 1, 1, tzinfo=UTC)
A = "c7d0bf6e-b2aa-4ffa-bded-2448415b39b0"
B = "2d6f51c6-afc5-457e-9c58-689679c08d30"


def _songs(rows: list[tuple[str, str, str | None]], batches: int = 1) -> dict[str, str | None]:
    """song_id -> recording_mbid after the real aggregation of (artist, track, raw mbid)
    listens of one listener, handed over in `batches` batches."""
    table = pa.Table.from_pylist(
        [
            {"user_name": "u", "artist_name": a, "track_name": t, "listened_at": WHEN,
             "recording_mbid": m}
            for a, t, m in rows
        ],
        schema=LISTEN_SCHEMA,
    )  # fmt: skip
    aggregator = PlaysAggregator()
    try:
        size = max(1, -(-table.num_rows // batches))
        for start in range(0, table.num_rows, size):
            aggregator.add(table.slice(start, size))
        _, songs = aggregator.finish()
    finally:
        aggregator.close()
    return dict(zip(songs["song_id"].to_pylist(), songs["recording_mbid"].to_pylist(), strict=True))


def test_python_twin_on_named_cases():
    assert valid_mbid(A) == A and valid_mbid(A.upper()) == A
    for bad in (None, 5, "", " " + A, A + "\n", "{" + A + "}", A[:-1], A.replace("-", ""),
                A.replace("c", "g"), A.replace("-", "\u2010")):  # fmt: skip
        assert valid_mbid(bad) is None, bad
    assert is_mbid(A) and not is_mbid(A.upper()) and not is_mbid(None)
    assert recording_url(A) == f"https://musicbrainz.org/recording/{A}"
    assert recording_url(None) is None and recording_url("x") is None


def test_invalid_ids_become_null_and_upper_case_is_lowered():
    rows = [
        ("a", "kept", A),
        ("a", "upper", A.upper()),
        ("a", "empty", ""),
        ("a", "spaced", f" {A} "),
        ("a", "braced", f"{{{A}}}"),
        ("a", "short", A[:-1]),
        ("a", "newline", A + "\n"),
        ("a", "none", None),
    ]
    got = _songs(rows)
    assert got == {
        song_id("a", "kept"): A,
        song_id("a", "upper"): A,
        **{song_id("a", t): None for t in ("empty", "spaced", "braced", "short", "newline")},
        song_id("a", "none"): None,
    }


def test_a_song_gets_its_most_played_valid_id_whatever_the_row_order():
    # Two spellings, two ids: A 3 plays (one upper-cased, one spelled otherwise), B 2,
    # invalid and absent ids many more: A.
    rows = (
        [("Band", "Song", A)] * 2
        + [("BAND", "song", A.upper()), ("band", "SONG", B), ("Band", "Song", B)]
        + [("Band", "Song", "junk")] * 5
        + [("band", "song", None)] * 5
    )
    sid = song_id("Band", "Song")
    for order in (rows, rows[::-1], rows[1::2] + rows[::2]):
        for batches in (1, 3):
            assert _songs(order, batches) == {sid: A}


def test_a_tie_goes_to_the_greatest_id():
    rows = [("x", "y", A), ("X", "Y", B), ("x", "y", None)]
    assert _songs(rows) == _songs(rows[::-1]) == {song_id("x", "y"): max(A, B)}


def test_a_batch_without_the_column_has_no_ids():
    table = pa.table(
        {
            "user_name": ["u"],
            "artist_name": ["a"],
            "track_name": ["t"],
            "listened_at": pa.array([WHEN], pa.timestamp("s", tz="UTC")),
        }
    )
    aggregator = PlaysAggregator()
    try:
        aggregator.add(table)
        _, songs = aggregator.finish()
    finally:
        aggregator.close()
    assert songs["recording_mbid"].to_pylist() == [None]
    assert songs.schema.field("recording_mbid").type == pa.string()


# Near-ids: UUIDs in every case and with small damage, plus arbitrary text.
_uuids = st.uuids().map(str)
raw_ids = st.one_of(
    _uuids,
    _uuids.map(str.upper),
    st.tuples(_uuids, st.sampled_from(["", " ", "\n", "x", "\u00a0", "-", "0"]), st.booleans()).map(
        lambda t: t[1] + t[0] if t[2] else t[0] + t[1]
    ),
    st.tuples(_uuids, st.integers(0, 35), st.sampled_from("gG-_ \u0130\u212a\uff10")).map(
        lambda t: t[0][: t[1]] + t[2] + t[0][t[1] + 1 :]
    ),
    st.text(alphabet="0123456789abcdefABCDEF-", min_size=30, max_size=40),
    st.text(max_size=40),
    st.none(),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(raw_ids, min_size=1, max_size=20))
def test_sql_and_python_twin_agree_on_generated_ids(values):
    # One song per value: the song's id is the value as the SQL kept it.
    got = _songs([("artist", f"track {i}", v) for i, v in enumerate(values)])
    assert got == {song_id("artist", f"track {i}"): valid_mbid(v) for i, v in enumerate(values)}


def test_parsers_take_the_mapping_first_then_additional_info():
    def meta(mapping=None, info=None) -> dict:
        return {"artist_name": "a", "track_name": "t", "mbid_mapping": mapping,
                "additional_info": info}  # fmt: skip

    assert raw_mbid(meta({"recording_mbid": A}, {"recording_mbid": B})) == A
    assert raw_mbid(meta(None, {"recording_mbid": B})) == B
    assert raw_mbid(meta({"recording_mbid": None}, {"recording_mbid": B})) == B
    assert raw_mbid(meta({"recording_mbid": 5}, {"recording_mbid": "junk"})) == "junk"
    assert raw_mbid(meta("not an object", [B])) is None
    assert raw_mbid({"artist_name": "a"}) is None


_json_values = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False), raw_ids,
    st.lists(raw_ids, max_size=2), st.dictionaries(st.sampled_from(["recording_mbid", "x"]),
                                                   raw_ids, max_size=2),
)  # fmt: skip


@st.composite
def _listen_lines(draw) -> bytes:
    meta = {"artist_name": "a", "track_name": draw(st.sampled_from(["t", "u"]))}
    for part in ("mbid_mapping", "additional_info"):
        if draw(st.integers(0, 3)):
            inner = {"recording_mbid": draw(_json_values)} if draw(st.integers(0, 4)) else {}
            meta[part] = inner if draw(st.integers(0, 5)) else draw(_json_values)
    return orjson.dumps({"listened_at": 5, "track_metadata": meta})


@functools.cache
def _parser() -> BlockParser:
    # One embedded DuckDB for every example: a connection's first JSON query is slow.
    return BlockParser(Rejects())


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_listen_lines(), min_size=1, max_size=20), st.sampled_from([None, "exporter"]))
def test_bulk_and_line_parsers_read_the_same_ids(lines, user):
    lines = [line.replace(b'"listened_at"', b'"user_name":"v","listened_at"') for line in lines]
    data = b"".join(line + b"\n" for line in lines)
    strict = list(parse_lines(data.splitlines(), Rejects(), "f", user))
    bulk = list(parse_stream(io.BytesIO(data), _parser(), "f", user))

    def rows(tables):
        table = pa.concat_tables(tables) if tables else LISTEN_SCHEMA.empty_table()
        return sorted((tuple(row.values()) for row in table.to_pylist()), key=repr)

    assert rows(bulk) == rows(strict)
    expected = [raw_mbid(orjson.loads(line)["track_metadata"]) for line in lines]
    got = pa.concat_tables(bulk)["recording_mbid"].to_pylist()
    assert sorted(got, key=repr) == sorted(expected, key=repr)


def test_spark_parquet_ids_and_files_without_the_column(tmp_path):
    base = {
        "listened_at": pa.array([1_600_000_000_000] * 3, pa.timestamp("ms")),
        "user_id": pa.array([1, 1, 2], pa.int64()),
        "artist_name": ["a", "a", "b"],
        "recording_name": ["t", "t", "s"],
    }
    with_ids = tmp_path / "0.parquet"
    pq.write_table(pa.table({**base, "recording_mbid": [A, None, "junk"]}), with_ids)
    without = tmp_path / "1.parquet"
    pq.write_table(pa.table(base), without)
    for files, expected in (([with_ids], [A, None, "junk"]), ([without], [None] * 3)):
        tables = list(read_parquet_files(files, Rejects()))
        got = pa.concat_tables(tables)
        assert got.schema == LISTEN_SCHEMA
        assert sorted(got["recording_mbid"].to_pylist(), key=repr) == sorted(expected, key=repr)


def test_sample_and_counted_formats_carry_no_ids(tmp_path):
    spec = SampleSpec(users=20, songs=50, listens=500, seed=1)
    batches = list(sample_listens(spec))
    assert all(b.schema == LISTEN_SCHEMA for b in batches)
    assert all(b["recording_mbid"].null_count == b.num_rows for b in batches)
    report = run_listens(EtlRun(source="s", out_dir=tmp_path / "d"), iter(batches))
    songs = pq.read_table(tmp_path / "d" / "songs.parquet")
    assert (
        report["songs"] == songs.num_rows and songs["recording_mbid"].null_count == songs.num_rows
    )
    counted = pa.table(
        {"user_name": ["1"], "artist_name": ["x"], "track_name": ["y"], "plays": [3]}
    )
    partial = to_partial_plays(counted, Rejects(), "f")
    assert partial["recording_mbid"].to_pylist() == [None]


def test_generated_ids_are_valid_uuids():
    # The twin's notion of "canonical" is exactly str(uuid.UUID(...)) for any UUID.
    value = str(uuid.UUID(int=0xABCDEF))
    assert valid_mbid(value.upper()) == value and is_mbid(value)
