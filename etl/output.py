"""The ratings folder: plays, songs, ratings and a report, written all at once or not at all."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from etl.errors import EtlError

PLAYS_FILE = "plays.parquet"
SONGS_FILE = "songs.parquet"
RATINGS_FILE = "ratings.parquet"
REPORT_FILE = "etl_report.json"


def check_out_dir(out_dir: Path, force: bool) -> None:
    """Refuse, before any work, to replace an existing folder without `force`."""
    if out_dir.exists() and not force:
        raise EtlError(f"{out_dir} already exists; pass --force to replace it")
    if out_dir.exists() and not out_dir.is_dir():
        raise EtlError(f"{out_dir} exists and is not a folder")


def replace_folder(out_dir: Path, fill: Callable[[Path], None]) -> None:
    """Let `fill` write into a temporary sibling folder, then swap it in as `out_dir`.

    A failure or interrupt inside `fill` removes the temporary folder and leaves any
    previous `out_dir` untouched. Shared by the ETL output and the model artifact.
    """
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        # mkdtemp makes a private folder; the result is as readable as any other folder.
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)
        fill(tmp)
        if out_dir.exists():
            # Swap: old aside, new in, old removed; a crash in between leaves one complete copy.
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
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


def write_report(report: dict, path: Path) -> None:
    """The run's report as pretty JSON."""
    path.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n")


def read_report(data_dir: Path) -> dict:
    """The report of an existing ratings folder."""
    path = data_dir / REPORT_FILE
    if not path.is_file():
        raise EtlError(f"{data_dir} is not a songrec data folder (no {REPORT_FILE})")
    return json.loads(path.read_text())
