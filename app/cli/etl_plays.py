"""`songrec etl plays`: datasets that already count plays (HetRec, Last.fm 360K, MSD)."""

from __future__ import annotations

from pathlib import Path

import click

from songrec.app.cli.etl_commands import (
    FORCE_OPTION,
    OUT_OPTION,
    TRANSFORM_OPTION,
    echo_report,
    engine_options,
)
from songrec.etl.listens import Rejects
from songrec.etl.output import check_out_dir
from songrec.etl.pipeline import EtlRun, run_partial_plays
from songrec.etl.plays_formats import FORMATS, read_counted, to_partial_plays


@click.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--format", "fmt", required=True, type=click.Choice(FORMATS))
@click.option(
    "--names",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="HetRec artists.dat (default: beside FILE) or MSD unique_tracks.txt.",
)
@OUT_OPTION
@TRANSFORM_OPTION
@FORCE_OPTION
@engine_options
def plays(
    file: Path,
    fmt: str,
    names: Path | None,
    out_dir: Path,
    transform: str,
    force: bool,
    memory_limit: str,
    threads: int | None,
) -> None:
    """Turn a dataset of play counts into the ratings folder, so the same models run on it."""
    check_out_dir(out_dir, force)
    rejects = Rejects()
    rows = read_counted(file, fmt, names)
    partial = to_partial_plays(rows, rejects, file.name)
    run = EtlRun(
        source=f"{fmt}:{file}",
        out_dir=out_dir,
        transform=transform,
        force=force,
        rejects=rejects,
        memory_limit=memory_limit,
        threads=threads,
    )
    report = run_partial_plays(run, partial, listens_read=rows.num_rows)
    echo_report(report)


COMMANDS = [plays]
