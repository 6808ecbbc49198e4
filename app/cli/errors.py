"""Turns the core's expected failures into one-line errors and exit code 2."""

from __future__ import annotations

import click
import duckdb

from songrec.etl.errors import EtlError
from songrec.models.errors import ModelError

# Core packages each define their own error base class; the CLI knows all of them.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (EtlError, ModelError)
# DuckDB out of disk (its spill folder) or out of memory: the run cannot go on, and a
# traceback would only hide the one line that says why.
RESOURCE_ERRORS = (duckdb.IOException, duckdb.OutOfMemoryException)

EXIT_BAD_INPUT = 2


def run_cli(group: click.Group) -> int:
    """Run the click group; expected failures print `error: ...` on one line and return 2."""
    try:
        group.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("error: interrupted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except EXPECTED_ERRORS as exc:
        click.echo(f"error: {exc}", err=True)
        return EXIT_BAD_INPUT
    except RESOURCE_ERRORS as exc:
        click.echo(f"error: {str(exc).strip().splitlines()[0]}", err=True)
        return EXIT_BAD_INPUT
    except OSError as exc:  # missing files, permissions, a full disk: one line, no traceback
        where = f": {exc.filename}" if exc.filename else ""
        click.echo(f"error: {exc.strerror or exc}{where}", err=True)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        return 130
    return 0
