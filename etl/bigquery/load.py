"""A ListenBrainz Spark dump -> the user's own BigQuery table, for `etl bigquery --table`.

The Spark dump (`listenbrainz-spark-dump-*.tar`, plain tar, or its extracted folder) holds
`N.parquet` files. Local files go up by BigQuery load jobs (`load_table_from_file`,
resumable uploads straight from the tar member: nothing is extracted to disk) into a
staging table beside the target, then one copy job moves them into the target with the
write disposition asked for: WRITE_EMPTY (default: a table that already holds rows is
refused), WRITE_TRUNCATE (--replace) or WRITE_APPEND (--append, incrementals). The target
thus gets the whole dump or nothing; the staging table is deleted whatever happens.
gs:// URIs (wildcards allowed) are one load job straight into the target, which is atomic
by itself.

Local files are loaded with an explicit schema read from their Parquet footers (all files
must agree): the dump's INT96 timestamps as TIMESTAMP, int64 as INTEGER, lists of strings
as REPEATED STRING (Parquet list inference). gs:// loads let BigQuery read the schema from
the files. A load job cannot rename columns: the table keeps the dump's user_id and
recording_name, and `etl bigquery` maps them when it reads the table
(etl.bigquery.listen_columns).
"""

from __future__ import annotations

import logging
import tarfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq
from google.api_core import exceptions as api_errors
from google.cloud import bigquery

from songrec.etl.bigquery.plays import _api_errors, listen_columns
from songrec.etl.errors import EtlError
from songrec.etl.query import validate_table

log = logging.getLogger(__name__)

# --replace / --append / neither, as BigQuery's write dispositions.
WRITE_MODES = {
    "empty": bigquery.WriteDisposition.WRITE_EMPTY,
    "replace": bigquery.WriteDisposition.WRITE_TRUNCATE,
    "append": bigquery.WriteDisposition.WRITE_APPEND,
}
STAGING_MARK = "__songrec_staging_"
# What the dump may say of itself beside its Parquet files (kept in the report).
METADATA_FILES = ("SCHEMA_SEQUENCE", "TIMESTAMP", "START_TIMESTAMP", "END_TIMESTAMP")
_COMPRESSED_TARS = (".tar.zst", ".tar.xz", ".tar.gz", ".tgz", ".tar.bz2")


@dataclass(frozen=True)
class ParquetPart:
    """One local Parquet file of a dump: a file, or a member of a plain tar read in place."""

    name: str
    size: int
    open: Callable[[], BinaryIO]


@dataclass
class LocalDump:
    """The Parquet files of the local inputs, and what the dumps say of themselves."""

    parts: list[ParquetPart]
    metadata: dict[str, dict[str, str]]


def is_uri(source: str) -> bool:
    return source.startswith("gs://")


def split_sources(sources: list[str]) -> tuple[list[Path], list[str]]:
    """(local paths, gs:// URIs); a run loads one kind or the other."""
    uris = [s for s in sources if is_uri(s)]
    paths = [Path(s) for s in sources if not is_uri(s)]
    if uris and paths:
        raise EtlError("load local files or gs:// URIs, not both in one run")
    if not sources:
        raise EtlError("nothing to load: give a Spark dump (.tar or folder) or gs:// URIs")
    return paths, uris


@contextmanager
def open_local(paths: list[Path]) -> Iterator[LocalDump]:
    """The Parquet files of `paths` (plain .tar dumps, folders, .parquet files), kept
    readable (tars open) until the block ends."""
    with ExitStack() as stack:
        dump = LocalDump(parts=[], metadata={})
        for path in paths:
            if not path.exists():
                raise EtlError(f"{path} does not exist")
            lower = path.name.lower()
            if path.is_dir():
                _add_folder(dump, path)
            elif lower.endswith(".tar"):
                _add_tar(dump, path, stack)
            elif lower.endswith(".parquet"):
                dump.parts.append(_file_part(path, path.name))
            elif lower.endswith(_COMPRESSED_TARS):
                raise EtlError(
                    f"{path}: a compressed tar is not a Spark dump (that is a plain .tar of "
                    "N.parquet files); a JSON listens dump is read by `songrec etl dump`"
                )
            else:
                raise EtlError(
                    f"{path}: not a Spark dump (a .tar of N.parquet files, its folder, "
                    "or .parquet files)"
                )
        if not dump.parts:
            raise EtlError(f"no .parquet files in {', '.join(str(p) for p in paths)}")
        yield dump


def _file_part(path: Path, name: str) -> ParquetPart:
    return ParquetPart(name=name, size=path.stat().st_size, open=lambda: path.open("rb"))


def _add_folder(dump: LocalDump, folder: Path) -> None:
    for file in sorted(folder.rglob("*.parquet"), key=lambda p: str(p)):
        if file.is_file():
            dump.parts.append(_file_part(file, str(file.relative_to(folder.parent))))
    meta = {
        m: (folder / m).read_text()[:4096].strip() for m in METADATA_FILES if (folder / m).is_file()
    }
    if meta:
        dump.metadata[folder.name] = meta


def _add_tar(dump: LocalDump, path: Path, stack: ExitStack) -> None:
    try:
        # A plain tar is seekable: each member is read in place, never extracted.
        archive = stack.enter_context(tarfile.open(path, mode="r:"))
        members = archive.getmembers()
    except (tarfile.TarError, OSError) as exc:
        raise EtlError(f"{path}: not a readable tar ({exc})") from None
    meta = {}
    for member in members:
        if not member.isfile():
            continue
        base = Path(member.name).name
        if base.lower().endswith(".parquet"):
            dump.parts.append(
                ParquetPart(
                    name=f"{path.name}:{member.name}",
                    size=member.size,
                    open=lambda member=member: archive.extractfile(member),
                )
            )
        elif base in METADATA_FILES:
            meta[base] = archive.extractfile(member).read(4096).decode("utf-8", "replace").strip()
    if meta:
        dump.metadata[path.name] = meta


# Arrow types of Parquet columns -> BigQuery's, as a Parquet load would make them.
def _bigquery_type(kind: pa.DataType) -> str | None:
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return "STRING"
    if pa.types.is_integer(kind) and not pa.types.is_uint64(kind):
        return "INTEGER"
    if pa.types.is_floating(kind):
        return "FLOAT"
    if pa.types.is_boolean(kind):
        return "BOOLEAN"
    if pa.types.is_timestamp(kind):
        # The dump's INT96 timestamps, and any other, are instants: TIMESTAMP. A timestamp
        # without UTC adjustment is read as UTC, as `songrec etl dump` reads it.
        return "TIMESTAMP"
    if pa.types.is_date(kind):
        return "DATE"
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return "BYTES"
    return None


def schema_of(parquet: pa.Schema, name: str) -> list[bigquery.SchemaField]:
    """The BigQuery schema of a Parquet file's columns (all NULLABLE; lists REPEATED)."""
    fields = []
    for field in parquet:
        kind, mode = field.type, "NULLABLE"
        if pa.types.is_list(kind) or pa.types.is_large_list(kind):
            kind, mode = kind.value_type, "REPEATED"
        found = _bigquery_type(kind)
        if found is None:
            raise EtlError(f"{name}: column {field.name} is {field.type}, which cannot be loaded")
        fields.append(bigquery.SchemaField(field.name, found, mode=mode))
    return fields


def read_schema(parts: list[ParquetPart]) -> list[bigquery.SchemaField]:
    """The one schema of all parts (read from their footers), checked to be listens."""
    schema: list[bigquery.SchemaField] | None = None
    first = ""
    for part in parts:
        try:
            with part.open() as stream:
                found = schema_of(pq.ParquetFile(stream).schema_arrow, part.name)
        except (pa.ArrowInvalid, OSError) as exc:
            raise EtlError(f"{part.name}: not a readable Parquet file ({exc})") from None
        if schema is None:
            schema, first = found, part.name
            listen_columns(schema, part.name)  # a listens file, or one line saying why not
        elif _shape(found) != _shape(schema):
            raise EtlError(f"{part.name}: its columns differ from {first}'s: not one dump")
    assert schema is not None
    return schema


def _shape(schema: list[bigquery.SchemaField]) -> list[tuple[str, str, bool]]:
    """Names, types and whether repeated: what two schemas must share to hold one dump
    (REQUIRED or NULLABLE aside)."""
    return [
        (f.name.lower(), _TYPE_NAMES.get(f.field_type.upper(), f.field_type.upper()),
         (f.mode or "").upper() == "REPEATED")
        for f in schema
    ]  # fmt: skip


# Legacy and standard SQL names of one type (tables.get answers with the legacy ones).
_TYPE_NAMES = {"INT64": "INTEGER", "FLOAT64": "FLOAT", "BOOL": "BOOLEAN"}


def _load_config(
    disposition: str, schema: list[bigquery.SchemaField] | None
) -> bigquery.LoadJobConfig:
    config = bigquery.LoadJobConfig(
        source_format=bigquery.SourceFormat.PARQUET,
        write_disposition=disposition,
        create_disposition=bigquery.CreateDisposition.CREATE_IF_NEEDED,
    )
    # Parquet LIST columns (the dump's artist_credit_mbids) as ARRAY<STRING>, not as
    # RECORD<list ARRAY<RECORD<element>>>.
    options = bigquery.ParquetOptions()
    options.enable_list_inference = True
    config.parquet_options = options
    if schema is not None:
        config.schema = schema
    return config


def _target_state(
    client: bigquery.Client, table: str, mode: str, location: str | None
) -> bigquery.Table | None:
    """The target (None when absent), after checking its dataset exists (created in
    `location` when given) and that the mode allows writing into it."""
    ref = bigquery.TableReference.from_string(table, default_project=client.project)
    dataset = f"{ref.project}.{ref.dataset_id}"
    with _api_errors(table):
        try:
            client.get_dataset(dataset)
        except api_errors.NotFound:
            if not location:
                raise EtlError(
                    f"dataset {dataset} does not exist: create it (bq mk --dataset "
                    f"--location=US {ref.project}:{ref.dataset_id}) or pass --dataset-location "
                    "to have it created there"
                ) from None
            created = bigquery.Dataset(dataset)
            created.location = location
            client.create_dataset(created, exists_ok=True, timeout=60)
            log.info("created dataset %s in %s", dataset, location)
        try:
            target = client.get_table(ref)
        except api_errors.NotFound:
            return None
    rows = int(target.num_rows or 0)
    if mode == "empty" and rows:
        raise EtlError(
            f"{table} already holds {rows:,} rows: pass --replace to overwrite it, or "
            "--append to add an incremental dump to it"
        )
    return target


def _append_schema(
    target: bigquery.Table | None, schema: list[bigquery.SchemaField]
) -> list[bigquery.SchemaField]:
    """The staging schema for --append: the table's own (its modes too, so the copy job
    finds the same schema), once checked to hold the dump's columns."""
    if target is None or not target.schema:
        return schema
    if _shape(list(target.schema)) != _shape(schema):
        raise EtlError(
            f"{target.project}.{target.dataset_id}.{target.table_id} has other columns than "
            "this dump: --append needs the same schema (--replace overwrites the table)"
        )
    return list(target.schema)


def _table_rows(mode: str, before: int, loaded: int) -> dict[str, int]:
    """The target's rows before and after: the jobs are atomic, so after is before plus
    what was loaded when appending, else what was loaded."""
    kept = before if mode == "append" else 0
    return {"rows_before": kept, "table_rows": kept + loaded}


def load_dump(
    client: bigquery.Client,
    sources: list[str],
    table: str,
    mode: str = "empty",
    location: str | None = None,
    on_part: Callable[[ParquetPart, int], None] | None = None,
) -> dict:
    """Load a Spark dump's Parquet files into `table`; returns what was done.

    `mode`: "empty" (WRITE_EMPTY), "replace" (WRITE_TRUNCATE) or "append" (WRITE_APPEND).
    `on_part(part, total_bytes)` is called after each local file is loaded (a progress bar).
    """
    if mode not in WRITE_MODES:
        raise EtlError(f"unknown write mode {mode!r}; one of {', '.join(WRITE_MODES)}")
    validate_table(table)
    paths, uris = split_sources(sources)
    started = time.perf_counter()
    if uris:
        report = _load_uris(client, uris, table, mode, location)
    else:
        with open_local(paths) as dump:
            report = _load_local(client, dump, table, mode, location, on_part)
            if dump.metadata:
                report["dump_metadata"] = dump.metadata
    report["seconds"] = round(time.perf_counter() - started, 3)
    return report


def _load_uris(
    client: bigquery.Client, uris: list[str], table: str, mode: str, location: str | None
) -> dict:
    target = _target_state(client, table, mode, location)
    rows_before = int(target.num_rows or 0) if target is not None else 0
    with _api_errors(table):
        job = client.load_table_from_uri(
            uris, table, job_config=_load_config(WRITE_MODES[mode], None), location=location
        )
        job.result()
        loaded = client.get_table(table)
    rows = int(job.output_rows or 0)
    try:
        listen_columns(list(loaded.schema), table)
    except EtlError as exc:
        raise EtlError(f"loaded, but `songrec etl bigquery` cannot read it: {exc}") from None
    return {
        "table": table,
        "mode": mode,
        "write_disposition": WRITE_MODES[mode],
        "sources": uris,
        "uris": len(uris),
        "rows_loaded": rows,
        **_table_rows(mode, rows_before, rows),
        "jobs": [job.job_id],
    }


def _load_local(
    client: bigquery.Client,
    dump: LocalDump,
    table: str,
    mode: str,
    location: str | None,
    on_part: Callable[[ParquetPart, int], None] | None,
) -> dict:
    schema = read_schema(dump.parts)
    target = _target_state(client, table, mode, location)
    if mode == "append":
        schema = _append_schema(target, schema)
    rows_before = int(target.num_rows or 0) if target is not None else 0
    ref = bigquery.TableReference.from_string(table, default_project=client.project)
    staging = f"{ref.project}.{ref.dataset_id}.{ref.table_id}{STAGING_MARK}{uuid.uuid4().hex[:8]}"
    jobs = []
    total = sum(part.size for part in dump.parts)
    try:
        with _api_errors(table):
            client.create_table(bigquery.Table(staging, schema=schema))
        log.info("staging %d files in %s", len(dump.parts), staging)
        config = _load_config(bigquery.WriteDisposition.WRITE_APPEND, schema)
        for part in dump.parts:
            with part.open() as stream, _api_errors(part.name):
                # No size: a resumable upload, read from the stream in chunks.
                job = client.load_table_from_file(
                    stream, staging, job_config=config, location=location
                )
                job.result()
            jobs.append(job.job_id)
            log.info("loaded %s (%d bytes)", part.name, part.size)
            if on_part is not None:
                on_part(part, total)
        with _api_errors(table):
            staged = int(client.get_table(staging).num_rows or 0)
            copy = client.copy_table(
                staging,
                table,
                job_config=bigquery.CopyJobConfig(write_disposition=WRITE_MODES[mode]),
                location=location,
            )
            copy.result()
        jobs.append(copy.job_id)
    finally:
        try:
            client.delete_table(staging, not_found_ok=True)
        except Exception as exc:  # noqa: BLE001 - the load's own outcome matters more
            log.warning("could not delete the staging table %s: %s", staging, exc)
    return {
        "table": table,
        "mode": mode,
        "write_disposition": WRITE_MODES[mode],
        "sources": [part.name for part in dump.parts],
        "files": len(dump.parts),
        "bytes": total,
        "rows_loaded": staged,
        **_table_rows(mode, rows_before, staged),
        "jobs": jobs,
        "loaded_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
