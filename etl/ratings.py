"""Plays -> explicit 1..10 ratings, by a named transform.

`cap` is the reference rule, min(plays, 10). On real all-time counts it makes almost every
rating a 10 (96.5% on HetRec), so the other transforms read each listener's own scale.

Each transform is one query, written once in BigQuery's dialect (etl/sql/ratings_<name>.sql)
and rendered for either engine by `ratings_sql`: BigQuery runs the text as is, DuckDB runs
it transpiled (etl.query.render). The ETL runs it inside its capped DuckDB over the plays
table and has DuckDB write the Parquet file (etl.aggregate); `transform_ratings` runs the
same query on a small in-memory Arrow table (a history, a test).
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp

from songrec.etl.errors import EtlError
from songrec.etl.query import render, sql_text, validate_relation

# Name -> what the transform means (the SQL is etl/sql/ratings_<name>.sql).
TRANSFORMS: dict[str, str] = {
    "cap": "min(plays, 10): a play is a point, ten or more plays is a 10 (the reference)",
    "quantile": "rank within the listener's own plays: their most played 10, least played 1",
    "log": "log of plays relative to the listener's most played song (one play -> 1)",
    "listenbrainz": "ListenBrainz's curve (1 play -> 20, n >= 2 -> 30 + min(n, 20)) as 1..10",
}
DEFAULT_TRANSFORM = "cap"
# The table name the SQL files read; replaced by the real one.
PLACEHOLDER_TABLE = "plays_table"


def check_transform(name: str) -> str:
    """Return `name` if it is a known transform, else a clear error listing the choices."""
    if name not in TRANSFORMS:
        raise EtlError(f"unknown transform {name!r}; choose one of {', '.join(TRANSFORMS)}")
    return name


def ratings_sql_text(transform: str) -> str:
    """The BigQuery-dialect source of one transform (etl/sql/ratings_<transform>.sql)."""
    return sql_text(f"ratings_{check_transform(transform)}")


def ratings_sql(transform: str, table: str, engine: str = "duckdb") -> str:
    """The transform's query for `engine` ("bigquery": `table` is project.dataset.table;
    "duckdb": a relation name), returning user_name, song_id and an integer rating 1..10."""
    return render(ratings_sql_text(transform), PLACEHOLDER_TABLE, table, engine)


def rates_rows_alone(transform: str) -> bool:
    """Whether the transform rates each play from its own row (no window over the
    listener's other plays): its rows then come out in the order its input was read."""
    tree = sqlglot.parse_one(ratings_sql_text(transform), read="bigquery")
    return tree.find(exp.Window) is None


def duckdb_ratings_query(transform: str, relation: str, presorted: bool = False) -> str:
    """The DuckDB query the ratings file is written from: the transform's rows with the
    rating as TINYINT (the file's int8 column), ordered by user_name, song_id.

    `presorted`: `relation` is a table already in that order and the query runs with
    DuckDB's preserve_insertion_order on; a transform that rates rows alone then keeps
    the table's order without sorting it again (tens of millions of pairs on a full
    dump), and one with a window is still sorted."""
    inner = ratings_sql(transform, validate_relation(relation), "duckdb")
    order = "" if presorted and rates_rows_alone(transform) else " ORDER BY user_name, song_id"
    return f"SELECT user_name, song_id, CAST(rating AS TINYINT) AS rating FROM ({inner}){order}"


def transform_ratings(plays: pa.Table, transform: str = DEFAULT_TRANSFORM) -> pa.Table:
    """Ratings (user_name, song_id, rating 1..10) from plays (user_name, song_id, plays):
    the ETL's own query, for tables small enough to hold in memory."""
    query = duckdb_ratings_query(transform, "plays_in")
    con = duckdb.connect(":memory:")
    try:
        # No bar of DuckDB's own: training rates millions of plays here, under its bar.
        con.execute("SET enable_progress_bar = false")
        con.register("plays_in", plays)
        return con.sql(query).to_arrow_table()
    finally:
        con.close()
