"""The ratings folder: plays, songs, ratings and a report, written all at once or not at all.

Beside those, `spellings.parquet` keeps the plays per (song, exact spelling, recording
MBID): what picks a song's displayed names and MBID, kept so `etl dump --append` can add
an incremental dump without reading the full one again (etl.pipeline).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from songrec.etl.errors import EtlError

PLAYS_FILE = "plays.parquet"
SONGS_FILE = "songs.parquet"
RATINGS_FILE = "ratings.parquet"
REPORT_FILE = "etl_report.json"
SPELLINGS_FILE = "spellings.parquet"


def check_out_dir(out_dir: Path, force: bool) -> None:
    """Refuse, before any work, to replace an existing folder without `force`."""
    if out_dir.exists() and not force:
        raise EtlError(f"{out_dir} already exists; pass --force to replace it")
    if out_dir.exists() and not out_dir.is_dir():
        raise EtlError(f"{out_dir} exists and is not a folder")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _owner(name: str, prefix: str) -> int | None:
    """The pid written into a leftover's name (`<prefix><pid>-<random>`), if any."""
    pid, sep, _ = name[len(prefix) :].partition("-")
    return int(pid) if sep and pid.isdigit() else None


def clean_leftovers(folder: Path, prefixes: tuple[str, ...]) -> list[Path]:
    """Remove `folder`'s entries named `<prefix><pid>-...` whose process is gone (killed
    runs); returns what was removed. Entries of running processes are left alone."""
    removed = []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        for prefix in prefixes:
            pid = _owner(entry.name, prefix) if entry.name.startswith(prefix) else None
            if pid is not None and pid != os.getpid() and not _alive(pid):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
    return removed


def _recover(out_dir: Path) -> None:
    """A run killed between the two renames of the fallback swap left no `out_dir` and
    the old copy in `.NAME.old-PID-*/x`: put the old copy back."""
    if out_dir.exists():
        return
    prefix = f".{out_dir.name}.old-"
    for entry in sorted(out_dir.parent.glob(f"{prefix}*")):
        pid = _owner(entry.name, prefix)
        if pid is not None and not _alive(pid) and (entry / "x").is_dir():
            os.replace(entry / "x", out_dir)
            return


def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where
    the system or the file system cannot."""
    rename = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if rename is None:
        return False
    at_cwd, exchange = -100, 2
    if rename(at_cwd, os.fsencode(a), at_cwd, os.fsencode(b), exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(code, os.strerror(code), str(b))


def replace_folder(out_dir: Path, fill: Callable[[Path], None]) -> None:
    """Let `fill` write into a temporary sibling folder, then swap it in as `out_dir`.

    At no point is there no `out_dir` (once there was one): the swap is one atomic
    exchange where Linux allows it; elsewhere old aside, new in, and a run killed in
    between is repaired by the next one (`_recover`). A failure or interrupt inside `fill`
    removes the temporary folder and leaves any previous `out_dir` untouched; leftovers of
    killed runs (their pid is in the name) are removed first. Shared by the ETL output and
    the model artifact.
    """
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    _recover(out_dir)
    clean_leftovers(out_dir.parent, (f".{out_dir.name}.tmp-", f".{out_dir.name}.old-"))
    pid = os.getpid()
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-{pid}-", dir=out_dir.parent))
    try:
        # mkdtemp makes a private folder; the result is as readable as any other folder.
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)
        fill(tmp)
        if out_dir.exists() and _exchange(tmp, out_dir):
            shutil.rmtree(tmp, ignore_errors=True)  # now the old folder
        elif out_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-{pid}-", dir=out_dir.parent))
            os.replace(out_dir, old / "x")
            os.replace(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_atomically(out_dir: Path, fill: Callable[[Path], None], force: bool) -> None:
    """Refuse to replace `out_dir` without `force`, then `replace_folder`."""
    check_out_dir(out_dir, force)
    replace_folder(out_dir, fill)


def write_table(table: pa.Table, path: Path) -> None:
    """One Parquet file (zstd)."""
    pq.write_table(table, path, compression="zstd")


def copy_parquet(
    con: duckdb.DuckDBPyConnection, query: str, path: Path, params: dict | None = None
) -> None:
    """Have DuckDB write `query`'s rows into the new Parquet file `path` (zstd), in the
    query's order, every column nullable.

    The path goes to DuckDB as a query parameter ($songrec_target), never as SQL text:
    DuckDB 2.0 takes a COPY target parameter literally (quotes, spaces, `?*[]{}` are
    data; tested in tests/faults/test_paths.py), except that it expands a leading `~`
    and reads a leading scheme (`file://`). The path handed over is absolute, so it
    starts with `/` and has neither; it names a file not there yet, in a folder songrec
    made (the temporary folder of replace_folder); and once DuckDB is done the file
    must be exactly there, else the write fails here instead of landing elsewhere.
    """
    target = Path(os.path.abspath(path))
    if not str(target).startswith("/") or target.exists():
        raise EtlError(f"refusing to write {target}: not a new file at an absolute path")
    values = {**(params or {}), "songrec_target": str(target)}
    # DuckDB writes a column REQUIRED (read back as `not null`) when statistics prove it
    # holds no NULL: whether it does would then depend on the data. Without statistics
    # propagation every column is OPTIONAL, as the files have always been.
    con.execute("SET disabled_optimizers = 'statistics_propagation'")
    try:
        con.execute(f"COPY ({query}) TO $songrec_target (FORMAT parquet, COMPRESSION zstd)", values)
    finally:
        con.execute("RESET disabled_optimizers")
    if not target.is_file():
        raise EtlError(f"DuckDB did not write {target}")


@contextlib.contextmanager
def locked_folder(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on an existing folder while it is read and replaced; a
    second run on the same folder waits for the first.

    The lock is the folder's own (flock on it; no lock file is left anywhere). A waiter
    may wake up holding the folder the first run swapped out: it then locks the folder
    now at that path, so it reads what the first run wrote.
    """
    while True:
        try:
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            raise EtlError(f"no such folder: {folder}") from None
        except NotADirectoryError:
            raise EtlError(f"{folder} is not a folder") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            held = os.fstat(fd)
            try:
                now = os.stat(folder)
            except FileNotFoundError:  # between the two renames of a fallback swap
                now = None
        except BaseException:
            os.close(fd)
            raise
        if now is not None and (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino):
            break
        os.close(fd)
        time.sleep(0.05)
    try:
        yield
    finally:
        os.close(fd)  # releases the lock


def write_report(report: dict, path: Path) -> None:
    """The run's report as pretty JSON."""
    path.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n")


def read_report(data_dir: Path) -> dict:
    """The report of an existing ratings folder."""
    path = data_dir / REPORT_FILE
    if not path.is_file():
        raise EtlError(f"{data_dir} is not a songrec data folder (no {REPORT_FILE})")
    return json.loads(path.read_text())
