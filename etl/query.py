"""The listens -> plays SQL, rendered for BigQuery or DuckDB from one text."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import cache
from importlib import resources

import sqlglot
from sqlglot import exp

from songrec.etl.errors import EtlError

PLACEHOLDER_TABLE = "listen_table"
PUBLIC_TABLE = "listenbrainz.listenbrainz.listen"
# The widest window a listen can fall in; used when a source has no date filter.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 31, tzinfo=UTC)
# project.dataset.table (project ids may hold dashes); nothing else can reach the SQL text.
_TABLE_RE = re.compile(r"^(?:[a-z][a-z0-9-]{4,28}[a-z0-9]\.|[A-Za-z0-9_-]+\.)?\w+\.\w+$")


@cache
def plays_sql_text() -> str:
    """The BigQuery-dialect source of the listens -> plays query."""
    return resources.files(__package__).joinpath("sql/listens_to_plays.sql").read_text()


def validate_table(table: str) -> str:
    """Check that a table reference is a plain dataset.table or project.dataset.table."""
    if not _TABLE_RE.match(table):
        raise EtlError(
            f"not a BigQuery table reference: {table!r} (expected project.dataset.table)"
        )
    return table


def _with_table(table: str, dialect: str) -> exp.Expression:
    tree = sqlglot.parse_one(plays_sql_text(), read="bigquery")
    replacement = exp.to_table(table, dialect=dialect)
    for node in tree.find_all(exp.Table):
        if node.name == PLACEHOLDER_TABLE:
            node.replace(replacement.copy())
    return tree


def bigquery_plays_sql(table: str = PUBLIC_TABLE) -> str:
    """The query as BigQuery runs it, reading `table` (validated, backquoted)."""
    validate_table(table)
    return _with_table(f"`{table}`", "bigquery").sql(
        dialect="bigquery", pretty=True, comments=False
    )


@cache
def duckdb_plays_sql(relation: str = "listen") -> str:
    """The same query transpiled for DuckDB, reading the view or table `relation`."""
    return _with_table(relation, "duckdb").sql(dialect="duckdb", pretty=True, comments=False)
