"""`songrec etl bigquery`: listens -> plays inside BigQuery, plays streamed down;
`songrec etl bigquery-load`: a Spark dump into your own BigQuery table."""

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
    help="Listens table (project.dataset.table): the public table's columns, or a Spark "
    "dump loaded by `songrec etl bigquery-load`.",
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
    "--ratings-only",
    is_flag=True,
    help="Rate in BigQuery too: only ratings and songs come down, no plays.parquet "
    "(so no `songrec etl ratings`, evaluate or graphs on that folder).",
)
@click.option(
    "--api-endpoint",
    hidden=True,
    help="BigQuery REST endpoint of an emulator (anonymous credentials); also "
    "BIGQUERY_EMULATOR_HOST.",
)
@TRANSFORM_OPTION
@FORCE_OPTION
@engine_options
def bigquery(
    start: str,
    end: str,
    out_dir: Path | None,
    project: str | None,
    table: str,
    dry_run: bool,
    max_gb: float,
    no_storage_api: bool,
    ratings_only: bool,
    api_endpoint: str | None,
    transform: str,
    force: bool,
    memory_limit: str,
    threads: int | None,
) -> None:
    """Aggregate ListenBrainz listens in BigQuery (GROUP BY there, only plays come down)."""
    from songrec.etl.bigquery import plays as bq
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
        sql = None
        if ratings_only:
            sql = bq.ratings_only_sql(table, transform, bq.table_columns(client, table))
        found = bq.estimate(client, table, start_at, end_at, sql)
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
        memory_limit=memory_limit,
        threads=threads,
    )
    bar: Bar | None = None

    def on_batch(rows: int, total: int | None) -> None:
        # The bar appears with the first batch: not while BigQuery runs the query, and
        # never when the bytes guard refuses it.
        nonlocal bar
        if bar is None:
            unit = "rating" if ratings_only else "play"
            bar = progress_bar("download", total=total, unit=unit, unit_scale=True)
        bar.update(rows)

    run_query = bq.run_bigquery_ratings if ratings_only else bq.run_bigquery
    try:
        report = run_query(run, client, read_client, table, max_gb, on_batch=on_batch)
    finally:
        if bar is not None:
            bar.close()
    echo_report(report)
    click.echo(
        f"  billed {report['bytes_billed'] / bq.GB:,.2f} GB (~${report['estimated_usd']:,.2f}), "
        f"downloaded via {report['download']}"
    )
    if ratings_only:
        click.echo(
            "  ratings made in BigQuery: no plays.parquet, so `songrec etl ratings`, "
            "evaluate and graphs cannot use this folder (rerun without --ratings-only for them)"
        )


@click.command("bigquery-load")
@click.argument("sources", nargs=-1, required=True, metavar="SPARK_DUMP...")
@click.option("--table", required=True, help="Your table to load into (project.dataset.table).")
@click.option("--project", help="Project running the load jobs (default: from gcloud/ADC).")
# Not plain --location (bq's name): click would suggest it ("Did you mean '--location'?")
# for any mistyped option such as --no-such-option.
@click.option(
    "--dataset-location",
    "location",
    help="Where the table's dataset is (US, EU...): the jobs run there, and a dataset that "
    "does not exist yet is created there.",
)
@click.option("--replace", is_flag=True, help="Overwrite the table's rows (WRITE_TRUNCATE).")
@click.option(
    "--append", is_flag=True, help="Add to the table's rows (WRITE_APPEND): incremental dumps."
)
@click.option(
    "--api-endpoint",
    hidden=True,
    help="BigQuery REST endpoint of an emulator (anonymous credentials); also "
    "BIGQUERY_EMULATOR_HOST.",
)
def bigquery_load(
    sources: tuple[str, ...],
    table: str,
    project: str | None,
    location: str | None,
    replace: bool,
    append: bool,
    api_endpoint: str | None,
) -> None:
    """Load a ListenBrainz Spark dump into your own BigQuery table.

    \b
    SPARK_DUMP (one kind per run):
      listenbrainz-spark-dump-*.tar   members uploaded one by one, never extracted
      its extracted folder, or .parquet files
      gs://bucket/path/*.parquet      one load job, from Cloud Storage

    A table that already holds rows is refused unless --replace or --append says what
    to do: two dumps are never mixed silently. Then read it with
    `songrec etl bigquery --table PROJECT.DATASET.TABLE`.
    """
    from songrec.etl.bigquery import plays as bq
    from songrec.etl.bigquery.load import load_dump
    from songrec.etl.query import validate_table

    validate_table(table)
    if replace and append:
        raise click.UsageError("--replace and --append exclude each other")
    mode = "replace" if replace else "append" if append else "empty"
    client, _ = bq.connect(project, api_endpoint or _emulator_host(), storage_api=False)
    bar: Bar | None = None

    def on_part(part, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = progress_bar("upload", total=total, unit="B", unit_scale=True)
        bar.update(part.size)

    try:
        report = load_dump(client, list(sources), table, mode, location, on_part=on_part)
    finally:
        if bar is not None:
            bar.close()
    if "uris" in report:
        what = f"{report['uris']} gs:// URI(s)"
    else:
        what = f"{report['files']} Parquet file(s), {report['bytes'] / 1e6:,.1f} MB"
    click.echo(
        f"{table}: {report['rows_loaded']:,} rows loaded from {what} "
        f"({report['write_disposition']}); the table holds "
        f"{report['table_rows']:,} rows ({report['seconds']:.1f} s)"
    )
    for name, meta in report.get("dump_metadata", {}).items():
        click.echo(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in sorted(meta.items())))
    click.echo(
        f"  next: songrec etl bigquery --table {table} --start YYYY-MM-DD --end YYYY-MM-DD "
        "--out DIR"
    )


COMMANDS = [bigquery, bigquery_load]
