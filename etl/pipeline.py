"""One ETL run: listens (or already-aggregated plays) -> the ratings folder, with a report."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from songrec.etl.aggregate import PlaysAggregator
from songrec.etl.dumps import JSON_DUMP, SPARK_DUMP, USER_EXPORT
from songrec.etl.errors import EtlError
from songrec.etl.listens import Rejects
from songrec.etl.output import (
    PLAYS_FILE,
    RATINGS_FILE,
    REPORT_FILE,
    SONGS_FILE,
    check_out_dir,
    write_atomically,
    write_report,
    write_table,
)
from songrec.etl.plays_formats import FORMATS as PLAYS_FORMATS
from songrec.etl.query import EARLIEST, LATEST
from songrec.etl.ratings import DEFAULT_TRANSFORM, check_transform, transform_ratings

log = logging.getLogger(__name__)

# Reasons for listens the query drops after the parsers kept them.
OUTSIDE_WINDOW = "outside_time_window"
BLANK_NAME = "blank_name"

# What the report's `source_kind` may say: the synthetic sample; ListenBrainz listens as a
# JSON listens dump, a Spark (Parquet) dump or a user export ("mixed": more than one of
# these in one run; the formats read are in the report's `listen_formats`); BigQuery; a
# dataset that counts plays (etl.plays_formats.FORMATS); "unknown" for anything else.
SAMPLE = "sample"
LISTEN_FORMATS = (JSON_DUMP, SPARK_DUMP, USER_EXPORT)
SOURCE_KINDS = (SAMPLE, *LISTEN_FORMATS, "mixed", "bigquery", *PLAYS_FORMATS, "unknown")


@dataclass
class EtlRun:
    """What a run reads and how: the source's name, the engine and its options.

    `source_kind` (one of SOURCE_KINDS) is inferred when not given: see `source_kind`."""

    source: str
    out_dir: Path
    engine: str = "duckdb"
    transform: str = DEFAULT_TRANSFORM
    force: bool = False
    start: datetime = EARLIEST
    end: datetime = LATEST
    rejects: Rejects = field(default_factory=Rejects)
    extra: dict = field(default_factory=dict)
    source_kind: str | None = None

    def __post_init__(self) -> None:
        if self.source_kind is not None and self.source_kind not in SOURCE_KINDS:
            raise EtlError(
                f"unknown source kind {self.source_kind!r}; one of {', '.join(SOURCE_KINDS)}"
            )


def source_kind(run: EtlRun) -> str:
    """The run's kind of source (one of SOURCE_KINDS): `run.source_kind` when set; else
    from what the dump readers saw (`extra["listen_formats"]`), the engine, or the source
    text the CLI writes ("sample(...)", "bigquery(...)", "<plays format>:<file>")."""
    if run.source_kind is not None:
        return run.source_kind
    seen = run.extra.get("listen_formats") or []
    if seen:
        return seen[0] if len(seen) == 1 else "mixed"
    if run.engine == "bigquery" or run.source.startswith("bigquery("):
        return "bigquery"
    if run.source.startswith(f"{SAMPLE}("):
        return SAMPLE
    prefix = run.source.partition(":")[0]
    return prefix if prefix in PLAYS_FORMATS else "unknown"


def run_listens(
    run: EtlRun,
    batches: Iterable[pa.Table],
    on_batch: Callable[[int], None] | None = None,
) -> dict:
    """Aggregate listen batches into plays, then write the folder; returns the report.

    `on_batch(rows)` is called after each batch (the CLI drives a progress bar with it).
    """
    check_transform(run.transform)
    check_out_dir(run.out_dir, run.force)
    started = time.perf_counter()
    aggregator = PlaysAggregator(run.start, run.end)
    try:
        for batch in batches:
            aggregator.add(batch)
            if on_batch is not None:
                on_batch(batch.num_rows)
        listens_read = aggregator.listens_seen + run.rejects.total
        kept = aggregator.listens_kept()
        plays, songs = aggregator.finish()
    finally:
        aggregator.close()
    count_dropped(run, aggregator.listens_seen, aggregator.outside_window, kept)
    if listens_read != kept + run.rejects.total:  # every listen read is kept or counted
        raise EtlError(
            f"listens read ({listens_read}) != kept ({kept}) + rejected ({run.rejects.total})"
        )
    return write_folder(run, plays, songs, listens_read, started)


def count_dropped(run: EtlRun, seen: int, outside: int, kept: int) -> None:
    """Count, by reason, the parsed listens the query dropped: outside --start/--end, or
    a name blank by the SQL's test (RE2 whitespace only: the parsers catch the rest)."""
    if outside:
        run.rejects.add(OUTSIDE_WINDOW, f"{run.start.isoformat()}..{run.end.isoformat()}", outside)
    blank = seen - outside - kept
    if blank:
        run.rejects.add(BLANK_NAME, "names holding only [\\t\\n\\f\\r ]", blank)


def run_partial_plays(run: EtlRun, partial: pa.Table, listens_read: int) -> dict:
    """Write the folder from plays another engine aggregated (BigQuery)."""
    check_transform(run.transform)
    started = time.perf_counter()
    aggregator = PlaysAggregator(run.start, run.end)
    try:
        aggregator.add_plays(partial)
        plays, songs = aggregator.finish()
    finally:
        aggregator.close()
    return write_folder(run, plays, songs, listens_read, started)


def write_folder(
    run: EtlRun, plays: pa.Table, songs: pa.Table, listens_read: int, started: float
) -> dict:
    """Ratings from plays, then plays/songs/ratings/report into `run.out_dir` atomically."""
    if plays.num_rows == 0:
        raise EtlError(f"no valid listens in {run.source}: nothing to write")
    ratings = transform_ratings(plays, run.transform)
    kind = source_kind(run)
    report = {
        "source": run.source,
        # Stable, for programs (models record it): one of SOURCE_KINDS, and whether the
        # songs are made up (the sample only).
        "source_kind": kind,
        "synthetic": kind == SAMPLE,
        "engine": run.engine,
        "transform": run.transform,
        "listens_read": int(listens_read),
        "listens_rejected": run.rejects.total,
        "rejected_by_reason": dict(sorted(run.rejects.counts.items())),
        "rejected_examples": dict(sorted(run.rejects.examples.items())),
        "users": pc.count_distinct(plays.column("user_name")).as_py(),
        "songs": songs.num_rows,
        "pairs": plays.num_rows,
        "start": run.start.isoformat(),
        "end": run.end.isoformat(),
        **run.extra,
    }

    def fill(tmp: Path) -> None:
        write_table(plays, tmp / PLAYS_FILE)
        write_table(songs, tmp / SONGS_FILE)
        write_table(ratings, tmp / RATINGS_FILE)
        report["seconds"] = round(time.perf_counter() - started, 3)
        write_report(report, tmp / REPORT_FILE)

    write_atomically(run.out_dir, fill, run.force)
    log.info(
        "wrote %s: %d users, %d songs, %d pairs",
        run.out_dir,
        report["users"],
        report["songs"],
        report["pairs"],
    )
    return report


def rerate(data_dir: Path, transform: str) -> dict:
    """Rewrite a folder's ratings with another transform, from its plays (no listens read)."""
    import json
    import os
    import shutil

    import pyarrow.parquet as pq

    from songrec.etl.output import read_report, replace_folder

    check_transform(transform)
    report = read_report(data_dir)
    plays_path = data_dir / PLAYS_FILE
    if not plays_path.is_file():
        raise EtlError(f"{data_dir} has no {PLAYS_FILE}")
    ratings = transform_ratings(pq.read_table(plays_path), transform)
    report["transform"] = transform

    def fill(tmp: Path) -> None:
        # The whole folder is swapped at once: ratings and the report that names their
        # transform can never disagree. The other files are hard links (no copy) when the
        # file system allows.
        for entry in data_dir.iterdir():
            if entry.name not in (RATINGS_FILE, REPORT_FILE) and entry.is_file():
                try:
                    os.link(entry, tmp / entry.name)
                except OSError:
                    shutil.copy2(entry, tmp / entry.name)
        write_table(ratings, tmp / RATINGS_FILE)
        (tmp / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")

    replace_folder(data_dir, fill)
    counts = pa.table({"r": ratings.column("rating")}).group_by("r").aggregate([("r", "count")])
    shares = {
        int(r): int(c)
        for r, c in zip(
            counts.column("r").to_pylist(), counts.column("r_count").to_pylist(), strict=True
        )
    }
    return {
        "data": str(data_dir),
        "transform": transform,
        "ratings": ratings.num_rows,
        "rating_counts": dict(sorted(shares.items())),
    }
