"""`songrec etl bigquery`: listens -> plays inside BigQuery, plays streamed down."""

from __future__ import annotations

from pathlib import Path

import click

from songrec.app.cli.etl_commands import FORCE_OPTION, TRANSFORM_OPTION, echo_report, parse_date
from songrec.app.cli.progress import Bar, progress_bar
from songrec.etl.query import PUBLIC_TABLE


def _emulator_host() -> str | None:
    """BIGQUERY_EMULATOR_HOST as a URL (the Python client wants a scheme, some tools omit it)."""
    import os

    host = os.environ.get("BIGQUERY_EMULATOR_HOST")
    if host and "://" not in host:
        host = f"http://{host}"
    return host or None


@click.command()
@click.option("--start", required=True, help="First day of listens (YYYY-MM-DD, UTC).")
@click.option("--end", required=True, help="Day after the last listen (YYYY-MM-DD, exclusive).")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    help="Output folder (not needed with --dry-run).",
)
@click.option("--project", help="Project billed for the query (default: from gcloud/ADC).")
@click.option(
    "--table",
    default=PUBLIC_TABLE,
    show_default=True,
    help="Listens table (project.dataset.table) with the public table's columns.",
)
@click.option("--dry-run", is_flag=True, help="Print bytes scanned and cost; run nothing.")
@click.option(
    "--max-gb",
    default=50.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Refuse a query that would bill more than this many GB.",
)
@click.option(
    "--no-storage-api",
    is_flag=True,
    help="Download over REST instead of the BigQuery Storage API (slower).",
)
@click.option(
    "--api-endpoint",
    hidden=True,
    help="BigQuery REST endpoint of an emulator (anonymous credentials); also "
    "BIGQUERY_EMULATOR_HOST.",
)
@TRANSFORM_OPTION
@FORCE_OPTION
def bigquery(
    start: str,
    end: str,
    out_dir: Path | None,
    project: str | None,
    table: str,
    dry_run: bool,
    max_gb: float,
    no_storage_api: bool,
    api_endpoint: str | None,
    transform: str,
    force: bool,
) -> None:
    """Aggregate ListenBrainz listens in BigQuery (GROUP BY there, only plays come down)."""
    from songrec.etl import bigquery as bq
    from songrec.etl.output import check_out_dir
    from songrec.etl.pipeline import EtlRun
    from songrec.etl.query import validate_table

    start_at, end_at = parse_date(start, "--start"), parse_date(end, "--end")
    validate_table(table)
    if out_dir is None and not dry_run:
        raise click.UsageError("--out is required (unless --dry-run)")
    if out_dir is not None and not dry_run:
        check_out_dir(out_dir, force)
    client, read_client = bq.connect(
        project, api_endpoint or _emulator_host(), storage_api=not no_storage_api
    )
    if dry_run:
        found = bq.estimate(client, table, start_at, end_at)
        click.echo(
            f"{table} {start}..{end}: would scan {found.bytes_processed:,} bytes "
            f"({found.bytes_processed / bq.GB:,.2f} GB), about ${found.usd:,.2f} on demand "
            f"(${bq.ON_DEMAND_USD_PER_TIB}/TiB; the first TiB each month is free)"
        )
        return
    run = EtlRun(
        source=f"bigquery({table}, {start}..{end})",
        out_dir=out_dir,
        engine="bigquery",
        transform=transform,
        force=force,
        start=start_at,
        end=end_at,
    )
    bar: Bar | None = None

    def on_batch(rows: int, total: int | None) -> None:
        # The bar appears with the first batch: not while BigQuery runs the query, and
        # never when the bytes guard refuses it.
        nonlocal bar
        if bar is None:
            bar = progress_bar("download", total=total, unit="play", unit_scale=True)
        bar.update(rows)

    try:
        report = bq.run_bigquery(run, client, read_client, table, max_gb, on_batch=on_batch)
    finally:
        if bar is not None:
            bar.close()
    echo_report(report)
    click.echo(
        f"  billed {report['bytes_billed'] / bq.GB:,.2f} GB (~${report['estimated_usd']:,.2f}), "
        f"downloaded via {report['download']}"
    )


COMMANDS = [bigquery]
