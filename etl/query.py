"""The SQL written once in BigQuery's dialect (etl/sql/*.sql), rendered for BigQuery or DuckDB.

The listens -> plays query lives here; the plays -> ratings transforms (etl.ratings) are
rendered by the same `render`: the placeholder table is replaced by a real reference and
the tree is written out in the engine's dialect (sqlglot).
"""

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
# A DuckDB view or table made by songrec itself: a plain identifier.
_RELATION_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ENGINES = ("bigquery", "duckdb")


@cache
def sql_text(name: str) -> str:
    """The BigQuery-dialect source of one query in etl/sql (`name` without .sql)."""
    return resources.files(__package__).joinpath(f"sql/{name}.sql").read_text()


def plays_sql_text() -> str:
    """The BigQuery-dialect source of the listens -> plays query."""
    return sql_text("listens_to_plays")


def validate_table(table: str) -> str:
    """Check that a table reference is a plain dataset.table or project.dataset.table."""
    if not _TABLE_RE.match(table):
        raise EtlError(
            f"not a BigQuery table reference: {table!r} (expected project.dataset.table)"
        )
    return table


def validate_relation(relation: str) -> str:
    """Check that a DuckDB relation name is a plain identifier (songrec names its own)."""
    if not _RELATION_RE.match(relation):
        raise EtlError(f"not a DuckDB relation name: {relation!r}")
    return relation


@cache
def render(source: str, placeholder: str, table: str, engine: str) -> str:
    """BigQuery-dialect `source` with its `placeholder` table replaced, for `engine`.

    BigQuery: `table` is a validated project.dataset.table, backquoted; DuckDB: a plain
    relation name. Nothing else reaches the SQL text.
    """
    if engine == "bigquery":
        reference = f"`{validate_table(table)}`"
    elif engine == "duckdb":
        reference = validate_relation(table)
    else:
        raise EtlError(f"unknown engine {engine!r}; one of {', '.join(ENGINES)}")
    tree = sqlglot.parse_one(source, read="bigquery")
    replacement = exp.to_table(reference, dialect=engine)
    for node in tree.find_all(exp.Table):
        if node.name == placeholder:
            node.replace(replacement.copy())
    return tree.sql(dialect=engine, pretty=True, comments=False)


def bigquery_plays_sql(table: str = PUBLIC_TABLE) -> str:
    """The query as BigQuery runs it, reading `table` (validated, backquoted)."""
    return render(plays_sql_text(), PLACEHOLDER_TABLE, table, "bigquery")


def duckdb_plays_sql(relation: str = "listen") -> str:
    """The same query transpiled for DuckDB, reading the view or table `relation`."""
    return render(plays_sql_text(), PLACEHOLDER_TABLE, relation, "duckdb")
