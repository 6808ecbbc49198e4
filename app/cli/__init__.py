"""The `songrec` command line: a thin layer over etl/ and models/, one module per area."""

from __future__ import annotations

import importlib
import sys

import click

from songrec.app.cli.errors import run_cli


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="songrec")
def cli() -> None:
    """songrec: ListenBrainz listens -> ratings -> SVD -> ten songs you will like."""


def _register() -> None:
    """Attach each area's commands; an area that is not built yet is simply absent."""
    from songrec.app.cli import etl_commands

    cli.add_command(etl_commands.etl)
    cli.add_command(etl_commands.graphs)
    for module in ("songrec.app.cli.model_commands", "songrec.app.cli.evaluate_commands"):
        try:
            commands = importlib.import_module(module).COMMANDS
        except ModuleNotFoundError as missing:  # pragma: no cover - area not built yet
            if missing.name != module:
                raise
            continue
        for command in commands:
            cli.add_command(command)
    try:
        from songrec.app.cli import serve_commands
    except ImportError:  # pragma: no cover - area not built yet
        serve_commands = None
    if serve_commands is not None:
        cli.add_command(serve_commands.app_command)


_register()


def main() -> None:
    """Entry point of the `songrec` console script."""
    sys.exit(run_cli(cli))
