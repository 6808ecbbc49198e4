"""`songrec etl ...` and `songrec graphs`: thin wrappers over etl/ and graphs/."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import click

from songrec.app.cli.options import data_option
from songrec.app.cli.progress import progress_bar
from songrec.etl.aggregate import DEFAULT_MEMORY_LIMIT, check_memory_limit
from songrec.etl.errors import EtlError
from songrec.etl.pipeline import EtlRun, rerate, run_listens
from songrec.etl.ratings import DEFAULT_TRANSFORM, TRANSFORMS
from songrec.etl.sample import (
    DEFAULT_LISTENS,
    DEFAULT_SEED,
    DEFAULT_SONGS,
    DEFAULT_USERS,
    SampleSpec,
    sample_listens,
)

TRANSFORM_OPTION = click.option(
    "--transform",
    type=click.Choice(sorted(TRANSFORMS)),
    default=DEFAULT_TRANSFORM,
    show_default=True,
    help="Plays -> 1..10 rating rule (cap = min(plays, 10), the reference's).",
)
FORCE_OPTION = click.option("--force", is_flag=True, help="Replace an existing output folder.")
OUT_OPTION = click.option(
    "--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Output folder."
)


def _memory_limit(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        return check_memory_limit(value)
    except EtlError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def engine_options(command: Callable) -> Callable:
    """--memory-limit and --threads: the caps of the run's embedded DuckDB."""
    command = click.option(
        "--threads",
        type=click.IntRange(1),
        help="Threads DuckDB aggregates and sorts with (default: one per core).",
    )(command)
    return click.option(
        "--memory-limit",
        default=DEFAULT_MEMORY_LIMIT,
        show_default=True,
        callback=_memory_limit,
        help="The run's memory (512MB, 4GB...): DuckDB gets all but 512MB of it (at most "
        "half) and past that spills to a folder under $TMPDIR (/tmp by default: put it on a "
        "disk with room, not in memory).",
    )(command)


def parse_date(value: str | None, name: str) -> datetime | None:
    """A YYYY-MM-DD (or ISO) date as a UTC datetime; a clear error otherwise."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint=name) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def echo_report(report: dict) -> None:
    """Print a short summary of an ETL run."""
    click.echo(
        f"{report['source']}: {report['listens_read']:,} listens read, "
        f"{report['listens_rejected']:,} rejected, {report['users']:,} users, "
        f"{report['songs']:,} songs, {report['pairs']:,} user-song pairs "
        f"({report.get('seconds', 0):.1f} s, transform {report['transform']})"
    )
    for reason, count in report.get("rejected_by_reason", {}).items():
        click.echo(f"  rejected {reason}: {count:,}")


@click.group()
def etl() -> None:
    """ListenBrainz listens -> plays -> 1..10 ratings (a Parquet folder)."""


@etl.command()
@OUT_OPTION
@click.option("--users", default=DEFAULT_USERS, show_default=True, type=click.IntRange(1))
@click.option("--songs", default=DEFAULT_SONGS, show_default=True, type=click.IntRange(10))
@click.option("--listens", default=DEFAULT_LISTENS, show_default=True, type=click.IntRange(100))
@click.option("--seed", default=DEFAULT_SEED, show_default=True, type=int)
@TRANSFORM_OPTION
@FORCE_OPTION
@engine_options
def sample(
    out_dir: Path,
    users: int,
    songs: int,
    listens: int,
    seed: int,
    transform: str,
    force: bool,
    memory_limit: str,
    threads: int | None,
) -> None:
    """Build the deterministic synthetic sample (no network, no account)."""
    spec = SampleSpec(users=users, songs=songs, listens=listens, seed=seed)
    run = EtlRun(
        source=f"sample(users={users}, songs={songs}, listens={listens}, seed={seed})",
        out_dir=out_dir,
        transform=transform,
        force=force,
        memory_limit=memory_limit,
        threads=threads,
    )
    # The generator makes about --listens listens, a number known only at the end; it
    # yields one batch per block of `users_per_batch` listeners, so the bar counts those.
    listens_made = 0

    def on_batch(rows: int) -> None:
        nonlocal listens_made
        listens_made += rows
        bar.set_postfix_str(f"{listens_made:,} listens", refresh=False)
        bar.update(min(spec.users_per_batch, users - bar.n))

    with progress_bar("sample", total=users, unit="listener") as bar:
        report = run_listens(run, sample_listens(spec), on_batch=on_batch)
    echo_report(report)


@etl.command()
@data_option("Ratings folder written by `songrec etl` (plays.parquet).")
@TRANSFORM_OPTION
@engine_options
def ratings(data_dir: Path, transform: str, memory_limit: str, threads: int | None) -> None:
    """Recompute ratings.parquet from plays.parquet with another transform."""
    summary = rerate(data_dir, transform, memory_limit, threads)
    click.echo(json.dumps(summary, indent=2))


# Each source lives in its own module; a module exposes `COMMANDS` for this group.
for _module in (
    "songrec.app.cli.etl_dump",
    "songrec.app.cli.etl_bigquery",
    "songrec.app.cli.etl_plays",
):
    try:
        for _command in importlib.import_module(_module).COMMANDS:
            etl.add_command(_command)
    except ModuleNotFoundError as _missing:  # pragma: no cover - source not built yet
        if _missing.name != _module:
            raise


@click.command()
@data_option("Ratings folder: plays and ratings distributions.", required=False)
@click.option(
    "--model",
    "model_dir",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    help="Model folder: grid-search RMSE/MAE charts.",
)
@click.option(
    "--evaluation",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="evaluation.csv: the held-out comparison chart.",
)
@click.option(
    "--out",
    "out_dir",
    default=Path("graphs"),
    show_default=True,
    type=click.Path(path_type=Path, file_okay=False),
)
def graphs(
    data_dir: Path | None, model_dir: Path | None, evaluation: Path | None, out_dir: Path
) -> None:
    """Write the charts (PNG) for a ratings folder, a model and an evaluation."""
    import pandas as pd

    from songrec.graphs.distributions import plot_distributions

    if data_dir is None and model_dir is None and evaluation is None:
        raise click.UsageError("give at least one of --data, --model, --evaluation")
    written = []
    if data_dir is not None:
        written += plot_distributions(data_dir, out_dir)
    if model_dir is not None or evaluation is not None:
        from songrec.graphs import comparison

        if model_dir is not None:
            written += comparison.plot_gscv(pd.read_csv(model_dir / "gscv_results.csv"), out_dir)
        if evaluation is not None:
            written += comparison.plot_evaluation(pd.read_csv(evaluation), out_dir)
    for path in written:
        click.echo(str(path))
