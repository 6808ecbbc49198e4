"""Listens -> plays inside BigQuery; only the plays come down (Storage API, Arrow).

Flow: `connect` builds the clients (Application Default Credentials, or anonymous ones
against an emulator endpoint); `estimate` dry-runs the one listens -> plays query
(etl/sql/listens_to_plays.sql, dates as TIMESTAMP parameters) for its bytes and cost;
`run_bigquery` refuses a query over the bytes guard, runs it with `maximum_bytes_billed`
as the server-side guard, streams the result batch by batch into `PlaysAggregator` and
writes the ratings folder. Every expected failure becomes one `EtlError` line.
The query reads user_name, artist_name, track_name, listened_at and recording_mbid (a
nullable STRING in the public table's schema), so a --table must carry all five.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa
import requests
from google.api_core import exceptions as api_errors
from google.auth import exceptions as auth_errors
from google.cloud import bigquery

from songrec.etl.aggregate import PlaysAggregator
from songrec.etl.errors import EtlError
from songrec.etl.output import check_out_dir
from songrec.etl.pipeline import EtlRun, write_folder
from songrec.etl.query import PUBLIC_TABLE, bigquery_plays_sql, validate_table
from songrec.etl.ratings import check_transform

log = logging.getLogger(__name__)

# On-demand query pricing, US multi-region (the public ListenBrainz table's), per TiB.
ON_DEMAND_USD_PER_TIB = 6.25
TIB = 2**40
GB = 10**9
DEFAULT_MAX_GB = 50.0
# BigQuery's own wording when maximum_bytes_billed stops a query (reason
# bytesBilledLimitExceeded): "Query exceeded limit for bytes billed: 500. 10485760 or
# higher required."
_BYTES_GUARD_RE = re.compile(r"exceeded limit for bytes billed", re.IGNORECASE)
_BYTES_NEEDED_RE = re.compile(r"(\d+) or higher required", re.IGNORECASE)


@dataclass(frozen=True)
class Estimate:
    """What a dry run says the query would scan and cost."""

    table: str
    bytes_processed: int

    @property
    def usd(self) -> float:
        """Estimated on-demand cost in US dollars."""
        return self.bytes_processed / TIB * ON_DEMAND_USD_PER_TIB


def connect(
    project: str | None, api_endpoint: str | None = None, storage_api: bool = True
) -> tuple[bigquery.Client, object | None]:
    """A BigQuery client and, for real runs, a Storage API read client (None: REST download).

    Credentials and the default project come from Application Default Credentials; with
    `api_endpoint` (a local emulator) the credentials are anonymous and results come down
    over REST.
    """
    if api_endpoint:
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials

        if not project:
            raise EtlError("no project: pass --project with --api-endpoint")
        client = bigquery.Client(
            project=project,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=api_endpoint),
        )
        return client, None
    import google.auth

    try:
        credentials, default_project = google.auth.default(scopes=list(bigquery.Client.SCOPE))
    except auth_errors.DefaultCredentialsError as exc:
        raise EtlError(
            "no Google Cloud credentials: run `gcloud auth application-default login` "
            f"or set GOOGLE_APPLICATION_CREDENTIALS ({_one_line(exc)})"
        ) from None
    project = project or default_project
    if not project:
        raise EtlError("no Google Cloud project: pass --project or set GOOGLE_CLOUD_PROJECT")
    client = bigquery.Client(project=project, credentials=credentials)
    read_client = None
    if storage_api:
        from google.cloud import bigquery_storage

        read_client = bigquery_storage.BigQueryReadClient(credentials=credentials)
    return client, read_client


def job_config(
    start: datetime, end: datetime, max_bytes: int | None = None, dry_run: bool = False
) -> bigquery.QueryJobConfig:
    """The query's parameters (@start/@end as TIMESTAMP) and its bytes-billed guard."""
    config = bigquery.QueryJobConfig(
        query_parameters=[
            bigquery.ScalarQueryParameter("start", "TIMESTAMP", start),
            bigquery.ScalarQueryParameter("end", "TIMESTAMP", end),
        ],
        dry_run=dry_run,
    )
    if max_bytes is not None:
        config.maximum_bytes_billed = int(max_bytes)
    if dry_run:
        # A cached result would report 0 bytes: ask what the scan itself costs.
        config.use_query_cache = False
    return config


def estimate(client: bigquery.Client, table: str, start: datetime, end: datetime) -> Estimate:
    """Dry-run the plays query: bytes it would scan; nothing runs, nothing is billed."""
    _check_window(start, end)
    sql = bigquery_plays_sql(table)
    with _api_errors(table):
        job = client.query(sql, job_config=job_config(start, end, dry_run=True))
    found = Estimate(table=table, bytes_processed=int(job.total_bytes_processed or 0))
    log.info("dry run: %s would scan %d bytes (~$%.4f)", table, found.bytes_processed, found.usd)
    return found


def query_plays(
    client: bigquery.Client,
    table: str,
    start: datetime,
    end: datetime,
    max_bytes: int,
) -> tuple[bigquery.QueryJob, bigquery.table.RowIterator]:
    """Run the plays query under the bytes guard; returns the finished job and its rows."""
    _check_window(start, end)
    sql = bigquery_plays_sql(table)
    with _api_errors(table, max_bytes):
        job = client.query(sql, job_config=job_config(start, end, max_bytes=max_bytes))
        rows = job.result()
    log.info(
        "query %s done: %s rows, %s bytes processed, %s billed",
        job.job_id,
        rows.total_rows,
        job.total_bytes_processed,
        job.total_bytes_billed,
    )
    return job, rows


def iter_plays(
    rows: bigquery.table.RowIterator, read_client: object | None = None
) -> Iterator[pa.Table]:
    """The result as Arrow tables, through the Storage API when a read client is given."""
    with _api_errors("query result"):
        for batch in rows.to_arrow_iterable(bqstorage_client=read_client):
            if batch.num_rows:
                yield pa.Table.from_batches([batch])


def run_bigquery(
    run: EtlRun,
    client: bigquery.Client,
    read_client: object | None = None,
    table: str = PUBLIC_TABLE,
    max_gb: float = DEFAULT_MAX_GB,
    on_batch: Callable[[int, int | None], None] | None = None,
) -> dict:
    """Dry-run, check the bytes guard, run the query, stream plays down, write the folder.

    `on_batch(rows, total_rows)` is called after each downloaded batch (a progress bar).
    """
    check_transform(run.transform)
    check_out_dir(run.out_dir, run.force)
    validate_table(table)
    max_bytes = int(max_gb * GB)
    started = time.perf_counter()
    found = estimate(client, table, run.start, run.end)
    if found.bytes_processed > max_bytes:
        raise EtlError(_guard_message(found.bytes_processed, max_bytes))
    job, rows = query_plays(client, table, run.start, run.end, max_bytes)
    aggregator = PlaysAggregator(run.start, run.end)
    try:
        for part in iter_plays(rows, read_client):
            aggregator.add_plays(part)
            if on_batch is not None:
                on_batch(part.num_rows, rows.total_rows)
        listens = aggregator.listens_kept()
        plays, songs = aggregator.finish()
    finally:
        aggregator.close()
    billed = int(job.total_bytes_billed or 0)
    run.extra.update(
        table=table,
        job_id=job.job_id,
        bytes_estimated=found.bytes_processed,
        bytes_processed=int(job.total_bytes_processed or 0),
        bytes_billed=billed,
        estimated_usd=round(billed / TIB * ON_DEMAND_USD_PER_TIB, 4),
        download="storage-api" if read_client is not None else "rest",
    )
    # BigQuery returns plays, not listens: listens_read counts the listens the query kept.
    return write_folder(run, plays, songs, listens, started)


def _check_window(start: datetime, end: datetime) -> None:
    if end <= start:
        raise EtlError(f"--end ({end:%Y-%m-%d}) must come after --start ({start:%Y-%m-%d})")


def _guard_message(needed: int | None, max_bytes: int) -> str:
    scan = f"would scan {needed / GB:,.2f} GB" if needed else "would scan more"
    return (
        f"the query {scan}, over the --max-gb {max_bytes / GB:g} guard; "
        "raise --max-gb or narrow --start/--end"
    )


def _one_line(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)
    return " ".join(str(text).split())


@contextmanager
def _api_errors(table: str, max_bytes: int | None = None) -> Iterator[None]:
    """Turn the API's expected refusals into one-line EtlErrors."""
    try:
        yield
    except auth_errors.GoogleAuthError as exc:
        raise EtlError(f"Google Cloud credentials refused: {_one_line(exc)}") from None
    except api_errors.GoogleAPICallError as exc:
        message = _one_line(exc)
        reasons = {e.get("reason") for e in exc.errors or [] if isinstance(e, dict)}
        if "bytesBilledLimitExceeded" in reasons or _BYTES_GUARD_RE.search(message):
            needed = _BYTES_NEEDED_RE.search(message)
            raise EtlError(
                _guard_message(int(needed.group(1)) if needed else None, max_bytes or 0)
            ) from None
        if isinstance(exc, api_errors.NotFound):
            raise EtlError(
                f"BigQuery cannot find {table}: {_first_error(exc)} (check --table and --project)"
            ) from None
        if isinstance(exc, api_errors.Forbidden | api_errors.Unauthorized):
            raise EtlError(f"BigQuery refused access: {_first_error(exc)}") from None
        raise EtlError(f"BigQuery error: {_first_error(exc)}") from None
    except (api_errors.RetryError, requests.exceptions.ConnectionError) as exc:
        # The client retries a lost connection for minutes before giving up.
        raise EtlError(f"cannot reach BigQuery: {_one_line(exc)}") from None


def _first_error(exc: api_errors.GoogleAPICallError) -> str:
    errors = getattr(exc, "errors", None) or []
    if errors and isinstance(errors[0], dict) and errors[0].get("message"):
        return " ".join(str(errors[0]["message"]).split())
    return _one_line(exc).split(" Location:")[0]
