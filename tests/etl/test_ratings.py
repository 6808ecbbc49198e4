"""Rating transforms: each stays in 1..10, means what README says, and its one SQL text
(BigQuery dialect, transpiled for DuckDB) equals a plain Python twin."""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pyarrow as pa
import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st

from songrec.etl.errors import EtlError
from songrec.etl.ratings import TRANSFORMS, ratings_sql, ratings_sql_text, transform_ratings


def _plays(per_user: dict[str, list[int]]) -> pa.Table:
    rows = [
        {"user_name": u, "song_id": f"s{i:03d}", "plays": p}
        for u, counts in per_user.items()
        for i, p in enumerate(counts)
    ]
    return pa.Table.from_pylist(rows)


def _ratings(table: pa.Table, transform: str) -> dict[tuple[str, str], int]:
    out = transform_ratings(table, transform).to_pylist()
    return {(r["user_name"], r["song_id"]): r["rating"] for r in out}


def test_cap_is_min_plays_10():
    r = _ratings(_plays({"u": [1, 3, 10, 11, 5874]}), "cap")
    assert list(r.values()) == [1, 3, 10, 10, 10]


@pytest.mark.parametrize("transform", sorted(TRANSFORMS))
def test_every_transform_stays_in_range_and_is_monotone(transform):
    rng = np.random.default_rng(0)
    counts = {f"u{k}": list(rng.pareto(1.2, 30).astype(int) + 1) for k in range(20)}
    ratings = _ratings(_plays(counts), transform)
    assert set(ratings.values()) <= set(range(1, 11))
    for user, plays in counts.items():
        order = np.argsort(plays, kind="stable")
        values = [ratings[(user, f"s{i:03d}")] for i in order]
        assert values == sorted(values), f"{transform} is not monotone in plays for {user}"


def test_quantile_and_log_read_each_listeners_own_scale():
    # A heavy listener and a light one: cap calls both top songs 10 and the light
    # listener's every song low; the per-user transforms give each their own 10.
    table = _plays({"heavy": [100, 200, 400, 800], "light": [1, 2, 3, 4]})
    for transform in ("quantile", "log"):
        r = _ratings(table, transform)
        assert r[("light", "s003")] == 10 and r[("heavy", "s003")] == 10
        assert r[("light", "s000")] == 1
    assert _ratings(table, "quantile")[("heavy", "s000")] == 1
    cap = _ratings(table, "cap")
    assert cap[("light", "s003")] == 4 and cap[("heavy", "s000")] == 10


def test_unknown_transform_is_a_clear_error():
    with pytest.raises(EtlError, match="unknown transform 'nope'; choose one of"):
        transform_ratings(_plays({"u": [1]}), "nope")


# The transforms as plain Python, from their definitions in README / etl/sql: the SQL that
# both engines run must agree with these on any plays.
def _round_half_away(x: float) -> float:
    """SQL ROUND (both engines): halves away from zero; x - floor(x) is exact in floats."""
    low = math.floor(x)
    return low + 1 if x - low >= 0.5 else low


def _python_ratings(rows: list[tuple[str, str, int]], transform: str) -> dict:
    by_user: dict[str, list[int]] = {}
    for user, _, plays in rows:
        by_user.setdefault(user, []).append(plays)
    out = {}
    for user, song, plays in rows:
        mine = by_user[user]
        if transform == "cap":
            score = min(plays, 10)
        elif transform == "quantile":
            rank = 1 + sum(p < plays for p in mine)  # RANK(): ties share the lowest
            share = (rank - 1) / (len(mine) - 1) if len(mine) > 1 else 0.0
            score = 1 + math.floor(9.999 * share)
        elif transform == "log":
            most = max(mine)
            score = 1 if most == 1 else 1 + _round_half_away(9 * math.log(plays) / math.log(most))
        else:
            score = 1 if plays == 1 else 2 + _round_half_away(8 * (min(plays, 20) - 2) / 18)
        out[(user, song)] = int(max(1, min(10, score)))
    return out


# What each transform was before it moved into etl/sql (DuckDB expressions): unchanged.
_PREVIOUS = {
    "cap": "least(plays, 10)",
    "quantile": "1 + floor(9.999 * percent_rank() OVER (PARTITION BY user_name ORDER BY plays))",
    "log": (
        "CASE WHEN max(plays) OVER (PARTITION BY user_name) = 1 THEN 1 ELSE "
        "1 + round(9 * ln(plays) / ln(max(plays) OVER (PARTITION BY user_name))) END"
    ),
    "listenbrainz": (
        "CASE WHEN plays = 1 THEN 1 ELSE 2 + round(8 * (least(plays, 20) - 2) / 18) END"
    ),
}


def _previous_ratings(table: pa.Table, transform: str) -> dict:
    con = duckdb.connect()
    con.register("p", table)
    rows = con.sql(
        f"SELECT user_name, song_id, greatest(1, least(10, ({_PREVIOUS[transform]})))::TINYINT "
        "FROM p"
    ).fetchall()
    con.close()
    return {(u, s): r for u, s, r in rows}


plays_rows = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "ü"]),
        st.one_of(st.integers(1, 12), st.integers(1, 300), st.integers(1, 10**6)),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(plays_rows, st.sampled_from(sorted(TRANSFORMS)))
def test_the_sql_equals_python_and_the_previous_definition(rows, transform):
    data = [(user, f"s{i:03d}", plays) for i, (user, plays) in enumerate(rows)]
    table = pa.table(
        {
            "user_name": [u for u, _, _ in data],
            "song_id": [s for _, s, _ in data],
            "plays": pa.array([p for _, _, p in data], pa.int64()),
        }
    )
    got = transform_ratings(table, transform)
    assert got.schema.field("rating").type == pa.int8()
    users, songs = got.column("user_name").to_pylist(), got.column("song_id").to_pylist()
    keys = list(zip(users, songs, strict=True))
    assert keys == sorted(keys)  # ordered by user_name, song_id
    ratings = dict(zip(keys, got.column("rating").to_pylist(), strict=True))
    assert ratings == _python_ratings(data, transform)
    assert ratings == _previous_ratings(table, transform)


@pytest.mark.parametrize("transform", sorted(TRANSFORMS))
def test_one_text_renders_for_both_engines(transform):
    text = ratings_sql_text(transform)
    assert "plays_table" in text
    bq = ratings_sql(transform, "my-project.lb.plays", "bigquery")
    duck = ratings_sql(transform, "plays_in", "duckdb")
    assert "`my-project.lb.plays`" in bq and "plays_table" not in bq
    assert "plays_in" in duck and "plays_table" not in duck and "INT64" not in duck
    # The BigQuery text is BigQuery's: it parses back and keeps the same columns.
    tree = sqlglot.parse_one(bq, read="bigquery")
    assert tree.named_selects == ["user_name", "song_id", "rating"]
    with pytest.raises(EtlError, match="not a BigQuery table reference"):
        ratings_sql(transform, "x; DROP TABLE y", "bigquery")
    with pytest.raises(EtlError, match="not a DuckDB relation name"):
        ratings_sql(transform, "p; DROP TABLE y", "duckdb")
    with pytest.raises(EtlError, match="unknown engine"):
        ratings_sql(transform, "p", "spark")
