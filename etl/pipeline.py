"""One ETL run: listens (or already-aggregated plays) -> the ratings folder, with a report.

The folder: plays.parquet (user_name, song_id, plays, first/last_listened_at; by user_name,
song_id), songs.parquet (song_id, displayed names, plays capped at 10 per listener,
raw_plays, listeners, recording_mbid; by plays desc, song_id), ratings.parquet
(user_name, song_id, rating 1..10; by user_name, song_id), spellings.parquet and
etl_report.json. Every table is made and written by the run's one memory-capped DuckDB
(etl.aggregate), so memory does not grow with the number of pairs; the folder is swapped
in whole or not at all (etl.output).

Appending (`etl dump INCREMENTAL --append DIR`, `EtlRun.append`): the listens of the new
dumps are aggregated as in any run, then merged with what DIR keeps: plays add up per
(user, song) and first/last listened times take min/max (plays.parquet); the songs'
spellings, recording MBIDs and popularity and every rating are recomputed. The spelling
and MBID choice need more than songs.parquet holds (the runner-up spellings' plays), so
every run also writes spellings.parquet: plays per (song_id, exact artist and track
spelling, valid recording MBID or NULL), small next to plays (rows per song, not per
listener). The result equals a run over all the dumps at once, file for file. The report
then counts the listens of every dump applied, merges the rejects, inputs and dump
metadata, and lists the dumps in `dumps_applied` (name, sha256 of the bytes, size): a dump
already there is refused, as is a folder made before spellings.parquet existed ("rebuild
this folder with etl dump") or not by etl dump at all. The folder's listen window and
(unless another is asked for) its transform are kept. DIR is locked (flock on the folder)
from reading its report to swapping in the new folder, so two appends never lose one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from songrec.etl.aggregate import (
    BUILD_STEPS,
    DEFAULT_MEMORY_LIMIT,
    WRITE_STEPS,
    Counts,
    Engine,
    PlaysAggregator,
    folder_dataset,
)
from songrec.etl.dumps.reader import JSON_DUMP, SPARK_DUMP, USER_EXPORT, ListenStream
from songrec.etl.errors import EtlError
from songrec.etl.listens import EXAMPLES_PER_REASON, Rejects
from songrec.etl.output import (
    PLAYS_FILE,
    RATINGS_FILE,
    REPORT_FILE,
    SPELLINGS_FILE,
    check_out_dir,
    copy_parquet,
    locked_folder,
    read_report,
    replace_folder,
    write_atomically,
    write_report,
)
from songrec.etl.plays_formats import FORMATS as PLAYS_FORMATS
from songrec.etl.query import EARLIEST, LATEST
from songrec.etl.ratings import DEFAULT_TRANSFORM, check_transform, duckdb_ratings_query

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

    `source_kind` (one of SOURCE_KINDS) is inferred when not given: see `source_kind`.
    `memory_limit`/`threads` cap the run's DuckDB. `append`: add to the folder `out_dir`
    instead of replacing it (see the module's docstring); `transform` None then keeps
    the folder's (else it means DEFAULT_TRANSFORM)."""

    source: str
    out_dir: Path
    engine: str = "duckdb"
    transform: str | None = DEFAULT_TRANSFORM
    force: bool = False
    start: datetime = EARLIEST
    end: datetime = LATEST
    rejects: Rejects = field(default_factory=Rejects)
    extra: dict = field(default_factory=dict)
    source_kind: str | None = None
    memory_limit: str | None = DEFAULT_MEMORY_LIMIT
    threads: int | None = None
    append: bool = False
    # Fields of `extra` still being computed while the run reads (the dumps'
    # fingerprints): `settle_extra` waits for them before they are needed.
    pending: dict[str, Callable[[], object]] = field(default_factory=dict)
    # Called before each step after the reading (merging, writing each file) with the
    # steps done, their total and the step's name, then once more when all are done:
    # on a full dump these take minutes, and a CLI shows them as a bar.
    on_step: Callable[[int, int, str], None] | None = None

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


def open_aggregator(run: EtlRun) -> PlaysAggregator:
    """The run's aggregator: its listen window, memory limit and threads."""
    return PlaysAggregator(run.start, run.end, run.memory_limit, run.threads)


@contextlib.contextmanager
def memory_errors(limit: str | None) -> Iterator[None]:
    """DuckDB out of memory under the cap -> one line saying which option to raise."""
    try:
        yield
    except duckdb.OutOfMemoryException as exc:
        first = str(exc).strip().splitlines()[0]
        raise EtlError(
            f"DuckDB needs more memory than --memory-limit {limit} ({first}); raise --memory-limit"
        ) from None


def run_listens(
    run: EtlRun,
    batches: Iterable[pa.Table],
    on_batch: Callable[[int], None] | None = None,
) -> dict:
    """Aggregate listen batches into plays, then write the folder; returns the report.

    `on_batch(rows)` is called after each batch (the CLI drives a progress bar with it).
    With `run.append` the listens are added to the existing folder `run.out_dir`.
    """
    if run.append:
        return _append(run, batches, on_batch)
    run.transform = check_transform(run.transform or DEFAULT_TRANSFORM)
    check_out_dir(run.out_dir, run.force)
    started = time.perf_counter()
    with memory_errors(run.memory_limit), open_aggregator(run) as aggregator:
        listens_read = _aggregate(run, aggregator, batches, on_batch)
        return write_aggregated(run, aggregator, listens_read, started)


def _aggregate(
    run: EtlRun,
    aggregator: PlaysAggregator,
    batches: Iterable[pa.Table],
    on_batch: Callable[[int], None] | None,
) -> int:
    """Feed every batch to the aggregator, count what the query dropped; listens read."""
    if isinstance(batches, ListenStream):
        batches.stage_in(aggregator.staging)  # DuckDB reads the dump's files itself
    for batch in batches:
        aggregator.add(batch)
        if on_batch is not None:
            on_batch(batch.num_rows)
    listens_read = aggregator.listens_seen + run.rejects.total
    kept = aggregator.listens_kept()
    count_dropped(run, aggregator.listens_seen, aggregator.outside_window, kept)
    if listens_read != kept + run.rejects.total:  # every listen read is kept or counted
        raise EtlError(
            f"listens read ({listens_read}) != kept ({kept}) + rejected ({run.rejects.total})"
        )
    return listens_read


def count_dropped(run: EtlRun, seen: int, outside: int, kept: int) -> None:
    """Count, by reason, the parsed listens the query dropped: outside --start/--end, or
    a name blank by the SQL's test (RE2 whitespace only: the parsers catch the rest)."""
    if outside:
        run.rejects.add(OUTSIDE_WINDOW, f"{run.start.isoformat()}..{run.end.isoformat()}", outside)
    blank = seen - outside - kept
    if blank:
        run.rejects.add(BLANK_NAME, "names holding only [\\t\\n\\f\\r ]", blank)


def run_partial_plays(
    run: EtlRun,
    partial: pa.Table | Iterable[pa.Table],
    listens_read: int | None = None,
    on_batch: Callable[[int], None] | None = None,
    started: float | None = None,
) -> dict:
    """Write the folder from partial plays another engine or format already aggregated
    (a table, or batches of them: BigQuery's download). `listens_read` defaults to the
    listens the plays count (BigQuery returns plays, not listens); `started`: when the run
    began (perf_counter), for the report's seconds, when it began before this call."""
    run.transform = check_transform(run.transform or DEFAULT_TRANSFORM)
    check_out_dir(run.out_dir, run.force)
    started = time.perf_counter() if started is None else started
    parts = [partial] if isinstance(partial, pa.Table) else partial
    with memory_errors(run.memory_limit), open_aggregator(run) as aggregator:
        for part in parts:
            aggregator.add_plays(part)
            if on_batch is not None:
                on_batch(part.num_rows)
        read = aggregator.listens_kept() if listens_read is None else listens_read
        return write_aggregated(run, aggregator, read, started)


def settle_extra(run: EtlRun) -> None:
    """Wait for the `extra` fields still being computed and put them in."""
    while run.pending:
        key, compute = run.pending.popitem()
        run.extra[key] = compute()


def _report(run: EtlRun, counts: Counts, listens_read: int) -> dict:
    settle_extra(run)
    kind = source_kind(run)
    return {
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
        "users": counts.users,
        "songs": counts.songs,
        "pairs": counts.pairs,
        "start": run.start.isoformat(),
        "end": run.end.isoformat(),
        **run.extra,
    }


class _Steps:
    """Counts the build and write steps for EtlRun.on_step."""

    def __init__(self, report: Callable[[int, int, str], None] | None, total: int) -> None:
        self.report, self.total, self.done = report, total, 0

    def __call__(self, name: str) -> None:
        if self.report is not None:
            self.report(self.done, self.total, name)
        self.done += 1

    def finish(self) -> None:
        """All steps done."""
        if self.report is not None:
            self.report(self.total, self.total, "written")


def write_aggregated(
    run: EtlRun,
    aggregator: PlaysAggregator,
    listens_read: int,
    started: float,
    base: Path | None = None,
) -> dict:
    """Build the tables in the aggregator's DuckDB and have it write the folder
    `run.out_dir` (replaced atomically); with `base` (the same folder, appended to) its
    plays and spellings are merged in. Returns the report."""
    step = _Steps(run.on_step, BUILD_STEPS + WRITE_STEPS)
    with memory_errors(run.memory_limit):
        aggregator.build(base, step)
        counts = aggregator.counts()
    if counts.pairs == 0:
        raise EtlError(f"no valid listens in {run.source}: nothing to write")
    report = _report(run, counts, listens_read)

    def fill(tmp: Path) -> None:
        with memory_errors(run.memory_limit):
            aggregator.write(tmp, run.transform, step)
        step.finish()
        report["duckdb"] = aggregator.stats()
        report["seconds"] = round(time.perf_counter() - started, 3)
        write_report(report, tmp / REPORT_FILE)

    if base is None:
        write_atomically(run.out_dir, fill, run.force)
    else:
        replace_folder(run.out_dir, fill)
    log.info(
        "wrote %s: %d users, %d songs, %d pairs (DuckDB spilled %d bytes)",
        run.out_dir,
        report["users"],
        report["songs"],
        report["pairs"],
        report["duckdb"]["spilled_bytes"],
    )
    return report


# Report fields every run computes itself; any other field (inputs, listen_formats,
# dump_metadata, dumps_applied...) comes from the sources read and is merged on append.
_OWN_FIELDS = frozenset(
    [
        "source", "source_kind", "synthetic", "engine", "transform", "listens_read",
        "listens_rejected", "rejected_by_reason", "rejected_examples", "users", "songs",
        "pairs", "start", "end", "duckdb", "seconds",
    ]
)  # fmt: skip
APPENDABLE_KINDS = (*LISTEN_FORMATS, "mixed")


def appendable_report(folder: Path) -> dict:
    """The report of a folder `--append` can add to, or a one-line reason it cannot."""
    report = read_report(folder)
    kind = report.get("source_kind")
    if kind not in APPENDABLE_KINDS:
        raise EtlError(
            f"{folder} was made from {kind or 'an unknown source'}, not by etl dump: "
            "--append adds listens dumps to a folder etl dump made"
        )
    if not (folder / SPELLINGS_FILE).is_file() or "dumps_applied" not in report:
        raise EtlError(
            f"{folder} was made by an older songrec (it has no {SPELLINGS_FILE}, which "
            "--append needs): rebuild this folder with etl dump"
        )
    if not (folder / PLAYS_FILE).is_file():
        raise EtlError(f"{folder} has no {PLAYS_FILE}: rebuild this folder with etl dump")
    return report


def _take_folder_settings(run: EtlRun, previous: dict) -> None:
    """The folder's listen window (a different --start/--end is refused) and, unless the
    run names one, its transform."""
    window = (datetime.fromisoformat(previous["start"]), datetime.fromisoformat(previous["end"]))
    if (run.start, run.end) not in ((EARLIEST, LATEST), window):
        raise EtlError(
            f"{run.out_dir} keeps listens from {previous['start']} to {previous['end']}; "
            "--append reads the same window (leave out --start/--end)"
        )
    run.start, run.end = window
    run.transform = check_transform(run.transform or previous.get("transform") or DEFAULT_TRANSFORM)


def _refuse_applied(run: EtlRun, previous: dict) -> None:
    """A dump whose bytes the folder already holds is refused (so is one that cannot be
    fingerprinted: a pipe)."""
    known = {d.get("sha256"): d.get("name") for d in previous.get("dumps_applied") or []}
    for dump in run.extra.get("dumps_applied") or []:
        if dump.get("sha256") is None:
            raise EtlError(
                f"--append needs dumps it can fingerprint: {dump['name']} is not a regular "
                "file or folder"
            )
        if dump["sha256"] in known:
            raise EtlError(
                f"{dump['name']} is already in {run.out_dir} (applied as {known[dump['sha256']]}, "
                f"sha256 {dump['sha256'][:16]}...): a dump is added once"
            )


def _absorb(run: EtlRun, previous: dict) -> None:
    """Fold the folder's report into the run: rejects add up (examples as one run over
    all dumps keeps them: the first few, in reading order), sources and dump lists are
    concatenated, formats united, dump metadata merged."""
    rejects = Rejects(
        counts=dict(previous.get("rejected_by_reason") or {}),
        examples={r: list(x) for r, x in (previous.get("rejected_examples") or {}).items()},
    )
    for reason, count in run.rejects.counts.items():
        rejects.counts[reason] = rejects.counts.get(reason, 0) + count
    for reason, examples in run.rejects.examples.items():
        kept = rejects.examples.setdefault(reason, [])
        for example in examples:
            if example not in kept and len(kept) < EXAMPLES_PER_REASON:
                kept.append(example)
    run.rejects = rejects
    extra = {k: v for k, v in previous.items() if k not in _OWN_FIELDS}
    for key, value in run.extra.items():
        old = extra.get(key)
        if key == "listen_formats" and isinstance(old, list):
            extra[key] = sorted(set(old) | set(value))
        elif isinstance(old, list) and isinstance(value, list):
            extra[key] = old + value
        elif isinstance(old, dict) and isinstance(value, dict):
            extra[key] = {**old, **value}
        else:
            extra[key] = value
    run.extra = extra
    if run.source_kind is None and not extra.get("listen_formats"):
        run.source_kind = previous.get("source_kind")  # what the folder was made from
    old_source = str(previous.get("source", ""))
    if old_source.startswith("dump:") and run.source.startswith("dump:"):
        run.source = old_source + "," + run.source.removeprefix("dump:")


def _append(
    run: EtlRun, batches: Iterable[pa.Table], on_batch: Callable[[int], None] | None
) -> dict:
    """Add listens to the existing folder `run.out_dir` (see the module's docstring)."""
    started = time.perf_counter()
    with locked_folder(run.out_dir):
        previous = appendable_report(run.out_dir)
        _take_folder_settings(run, previous)
        settle_extra(run)  # before reading: a dump already applied is refused first
        _refuse_applied(run, previous)
        if isinstance(batches, ListenStream):
            batches.appending_to(previous.get("listen_formats") or [])
        with memory_errors(run.memory_limit), open_aggregator(run) as aggregator:
            listens_read = _aggregate(run, aggregator, batches, on_batch)
            _absorb(run, previous)
            total = listens_read + int(previous.get("listens_read", 0))
            return write_aggregated(run, aggregator, total, started, base=run.out_dir)


def rerate(
    data_dir: Path,
    transform: str,
    memory_limit: str | None = DEFAULT_MEMORY_LIMIT,
    threads: int | None = None,
) -> dict:
    """Rewrite a folder's ratings with another transform, from its plays (no listens
    read), in a capped DuckDB that writes the file itself."""
    check_transform(transform)
    with locked_folder(data_dir):
        report = read_report(data_dir)
        plays_path = data_dir / PLAYS_FILE
        if not plays_path.is_file():
            raise EtlError(f"{data_dir} has no {PLAYS_FILE}")
        report["transform"] = transform
        summary: dict = {"data": str(data_dir), "transform": transform}
        with memory_errors(memory_limit), Engine(memory_limit, threads) as engine:
            plays = folder_dataset(plays_path, ("user_name", "song_id", "plays"))
            engine.con.register("folder_plays", plays)

            def fill(tmp: Path) -> None:
                # The whole folder is swapped at once: ratings and the report that names
                # their transform can never disagree. The other files are hard links (no
                # copy) when the file system allows.
                for entry in data_dir.iterdir():
                    if entry.name not in (RATINGS_FILE, REPORT_FILE) and entry.is_file():
                        try:
                            os.link(entry, tmp / entry.name)
                        except OSError:
                            shutil.copy2(entry, tmp / entry.name)
                ratings = tmp / RATINGS_FILE
                copy_parquet(engine.con, duckdb_ratings_query(transform, "folder_plays"), ratings)
                engine.con.register("new_ratings", folder_dataset(ratings, ("rating",)))
                counts = engine.con.execute(
                    "SELECT rating, count(*) FROM new_ratings GROUP BY rating ORDER BY rating"
                ).fetchall()
                summary["ratings"] = sum(int(n) for _, n in counts)
                summary["rating_counts"] = {int(r): int(n) for r, n in counts}
                write_report(report, tmp / REPORT_FILE)

            replace_folder(data_dir, fill)
    return summary
