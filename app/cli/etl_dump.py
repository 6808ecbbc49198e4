"""`songrec etl dump`: ListenBrainz listens dumps, Spark dumps and user exports, offline."""

from __future__ import annotations

from pathlib import Path

import click

from songrec.app.cli.etl_commands import (
    FORCE_OPTION,
    TRANSFORM_OPTION,
    echo_report,
    engine_options,
    parse_date,
)
from songrec.app.cli.progress import StepBar, progress_bar
from songrec.etl.dumps.formats import plan_inputs, total_bytes
from songrec.etl.dumps.reader import Fingerprints, read_inputs
from songrec.etl.errors import EtlError
from songrec.etl.output import check_out_dir
from songrec.etl.pipeline import EtlRun, run_listens
from songrec.etl.query import EARLIEST, LATEST


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out", "out_dir", type=click.Path(path_type=Path), help="Output folder (or --append)."
)
@click.option(
    "--append",
    "append_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Add PATHS (say, a daily incremental dump) to this ratings folder, made by etl "
    "dump, instead of writing a new one; a dump already in it is refused.",
)
@click.option("--user", help="Listener of a user export (its lines carry no user name).")
@click.option("--start", help="First day of listens to keep (YYYY-MM-DD, UTC).")
@click.option("--end", help="Day after the last listen to keep (YYYY-MM-DD, exclusive).")
@TRANSFORM_OPTION
@FORCE_OPTION
@engine_options
def dump(
    paths: tuple[Path, ...],
    out_dir: Path | None,
    append_dir: Path | None,
    user: str | None,
    start: str | None,
    end: str | None,
    transform: str,
    force: bool,
    memory_limit: str,
    threads: int | None,
) -> None:
    """Read ListenBrainz listens into the ratings folder (offline, embedded DuckDB).

    \b
    PATHS (any mix, but Spark dumps, keyed by user id, never with the rest):
      listenbrainz-listens-dump-*.tar.zst|.tar.xz  full or incremental listens dump
      listenbrainz-spark-dump-*.tar, or a folder   Spark dump (N.parquet files)
      a folder of .listens files, or one file      listens as the dumps hold them
      export .zip, .jsonl/.json[.gz|.xz|.zst]      a user export (needs --user
                                                   unless its user.json names one)

    Archives are read as streams, never unpacked to disk. With --append DIR the
    folder keeps its listen window and, unless --transform is given, its transform.
    """
    first = parse_date(start, "--start") or EARLIEST
    last = parse_date(end, "--end") or LATEST
    if first >= last:
        raise EtlError(f"--start ({start}) must come before --end ({end})")
    inputs = plan_inputs(list(paths), user)
    if (out_dir is None) == (append_dir is None):
        raise click.UsageError("give either --out (a new folder) or --append (an existing one)")
    if append_dir is not None and force:
        raise click.UsageError("--force is for --out; --append always replaces its folder whole")
    if out_dir is not None:
        check_out_dir(out_dir, force)
    given = click.get_current_context().get_parameter_source("transform")
    keep_folders = append_dir is not None and given is click.core.ParameterSource.DEFAULT
    run = EtlRun(
        source="dump:" + ",".join(str(p) for p in paths),
        out_dir=append_dir or out_dir,
        transform=None if keep_folders else transform,
        force=force,
        start=first,
        end=last,
        memory_limit=memory_limit,
        threads=threads,
        append=append_dir is not None,
        pending={"dumps_applied": Fingerprints(inputs).result},
    )
    with (
        progress_bar("dump", total=total_bytes(inputs), unit="B", unit_scale=True) as bar,
        StepBar("build", before=bar) as steps,
    ):
        run.on_step = steps
        report = run_listens(run, read_inputs(inputs, run.rejects, run.extra, bar.update))
    echo_report(report)


COMMANDS = [dump]
