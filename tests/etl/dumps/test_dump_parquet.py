"""listened_at of a Spark dump's Parquet, read by DuckDB (etl.dumps.parquet.listen_select),
against plain Python on generated times: every unit and zone a writer may use, and Unix
seconds as integers or floats, made whole seconds (floored), or rejected by reason."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from songrec.etl.dumps.parquet import read_parquet_files
from songrec.etl.listens import Rejects

# 9999-12-31 23:59:59 UTC: the latest second a listen may carry.
LATEST_SECOND = int(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp())

UNITS = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}


def _expected(ticks: int | None, per_second: int) -> int | str:
    """Whole Unix seconds of a time in ticks of 1/per_second s, or the reject reason."""
    if ticks is None:
        return "missing_timestamp"
    if ticks < 0 or ticks > LATEST_SECOND * per_second:
        return "bad_timestamp"
    return ticks // per_second


def _read(tmp_path, column: pa.Array) -> tuple[list[int], dict[str, int]]:
    n = len(column)
    table = pa.table(
        {
            "listened_at": column,
            "user_id": pa.array(range(n), pa.int64()),
            "artist_name": ["Artist"] * n,
            "recording_name": [f"song {i}" for i in range(n)],
        }
    )
    path = tmp_path / "0.parquet"
    pq.write_table(table, path)
    rejects = Rejects()
    tables = list(read_parquet_files([path], rejects))
    read = pa.concat_tables(tables) if tables else None
    # Rows come back in any order: each carries its user id (its row number).
    seconds = {}
    if read is not None:
        for user, when in zip(
            read.column("user_name").to_pylist(),
            read.column("listened_at").to_pylist(),
            strict=True,
        ):
            seconds[int(user)] = int(when.timestamp())
    return seconds, dict(rejects.counts)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    unit=st.sampled_from(sorted(UNITS)),
    zone=st.sampled_from([None, "UTC", "Europe/Paris"]),
    data=st.data(),
)
def test_timestamp_columns_floor_to_whole_seconds(tmp_path, unit, zone, data):
    per_second = UNITS[unit]
    # timestamp[ns] ends in 2262; the others reach past 9999.
    top = 2**63 - 1 if unit == "ns" else (LATEST_SECOND + 10**6) * per_second
    bottom = -(2**63) + 2 if unit == "ns" else -(10**10) * per_second
    near = st.integers(-3 * per_second, 3 * per_second)  # around 1970
    ticks = data.draw(
        st.lists(
            st.one_of(st.none(), st.integers(bottom, top), near),
            min_size=1,
            max_size=30,
        )
    )
    seconds, reasons = _read(tmp_path, pa.array(ticks, pa.timestamp(unit, tz=zone)))
    expected = [_expected(t, per_second) for t in ticks]
    assert seconds == {i: e for i, e in enumerate(expected) if isinstance(e, int)}
    wanted: dict[str, int] = {}
    for e in expected:
        if isinstance(e, str):
            wanted[e] = wanted.get(e, 0) + 1
    assert reasons == wanted


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seconds=st.lists(
        st.one_of(st.none(), st.integers(-(10**9), LATEST_SECOND + 10**6)), min_size=1, max_size=30
    ),
    millis=st.booleans(),
)
def test_unix_seconds_as_integers_or_floats(tmp_path, seconds, millis):
    # Floats with whole milliseconds: never within a microsecond of a second's edge,
    # where the float's own rounding would decide.
    if millis:
        values = [None if s is None else s + (abs(s) % 1000) / 1000 for s in seconds]
        column = pa.array(values, pa.float64())
        ticks = [None if v is None else math.floor(v * 1000) for v in values]
        expected = [_expected(t, 1000) for t in ticks]
    else:
        column = pa.array(seconds, pa.int64())
        expected = [_expected(s, 1) for s in seconds]
    read, _ = _read(tmp_path, column)
    assert read == {i: e for i, e in enumerate(expected) if isinstance(e, int)}


def test_the_latest_second_is_kept_and_the_next_is_not(tmp_path):
    latest = datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    column = pa.array([latest, datetime(1970, 1, 1, tzinfo=UTC)], pa.timestamp("us", tz="UTC"))
    seconds, reasons = _read(tmp_path, column)
    # 23:59:59.999999 is after 23:59:59: rejected, as before the integer arithmetic.
    assert seconds == {1: 0} and reasons == {"bad_timestamp": 1}
