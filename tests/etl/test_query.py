"""The one listens -> plays SQL: rendered for both engines, parameterized, table validated."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pytest

from songrec.etl.aggregate import PlaysAggregator
from songrec.etl.errors import EtlError
from songrec.etl.listens import LISTEN_SCHEMA
from songrec.etl.query import bigquery_plays_sql, duckdb_plays_sql, plays_sql_text, validate_table


def test_both_engines_render_the_same_query():
    bq = bigquery_plays_sql("my-project.lb.listen")
    duck = duckdb_plays_sql("listen")
    assert "`my-project.lb.listen`" in bq
    assert "@start" in bq and "@end" in bq
    assert "$start" in duck and "$end" in duck
    # DuckDB needs the global flag to replace every whitespace run, as BigQuery does.
    assert "'g'" in duck
    # Positional GROUP BY: the dialects bind names differently.
    assert "GROUP BY\n    1,\n    2,\n    3" in duck


def test_dates_are_parameters_not_literals():
    text = plays_sql_text()
    assert "@start" in text and "2016" not in text and "TIMESTAMP '" not in text


@pytest.mark.parametrize(
    "table", ["x; DROP TABLE y", "a.b.c.d", "`a.b.c`", "lb listen", "a.b'--", "listen"]
)
def test_bad_table_references_are_refused(table):
    with pytest.raises(EtlError, match="not a BigQuery table reference"):
        validate_table(table)


@pytest.mark.parametrize(
    "table", ["listenbrainz.listenbrainz.listen", "my-proj-123.dataset.table", "ds.table"]
)
def test_good_table_references_pass(table):
    assert validate_table(table) == table


def test_date_window_filters_listens():
    rows = [
        {"user_name": "u", "artist_name": "a", "track_name": "t", "listened_at": when}
        for when in [
            datetime(2019, 12, 31, 23, 59, tzinfo=UTC),
            datetime(2020, 1, 1, tzinfo=UTC),
            datetime(2020, 6, 1, tzinfo=UTC),
            datetime(2021, 1, 1, tzinfo=UTC),
        ]
    ]
    aggregator = PlaysAggregator(datetime(2020, 1, 1, tzinfo=UTC), datetime(2021, 1, 1, tzinfo=UTC))
    aggregator.add(pa.Table.from_pylist(rows, schema=LISTEN_SCHEMA))
    plays, _ = aggregator.finish()
    assert plays.column("plays").to_pylist() == [2]
    assert (
        plays.column("first_listened_at")[0].as_py().replace(tzinfo=UTC) == rows[1]["listened_at"]
    )
    assert plays.column("last_listened_at")[0].as_py().replace(tzinfo=UTC) == rows[2]["listened_at"]
