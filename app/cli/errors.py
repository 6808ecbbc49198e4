"""Turns the core's expected failures, and click's usage errors, into one-line errors."""

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


def click_error_line(exc: click.ClickException) -> str:
    """A click error on one line: its message, and for a usage error where help is.

    click's own form is four lines (usage, a "Try ... --help" hint, a blank, the error),
    unlike every other error of the CLI.
    """
    message = "; ".join(line.strip() for line in exc.format_message().splitlines() if line.strip())
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, click.UsageError) and ctx is not None:
        names = ctx.command.get_help_option_names(ctx)
        if names:
            message += f" (see `{ctx.command_path} {max(names, key=len)}`)"
    return f"error: {message}"


def run_cli(group: click.Group, prog_name: str = "songrec") -> int:
    """Run the click group; expected failures print `error: ...` on one line and return 2
    (click's own errors keep their exit code: 2 for usage, 1 otherwise)."""
    try:
        group.main(prog_name=prog_name, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("error: interrupted", err=True)
        return 130
    except click.exceptions.NoArgsIsHelpError as exc:  # a bare `songrec` or `songrec etl`
        exc.show()
        return exc.exit_code
    except click.ClickException as exc:
        click.echo(click_error_line(exc), err=True)
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
