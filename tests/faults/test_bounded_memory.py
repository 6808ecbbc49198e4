"""Through the real CLI, under an address-space limit: empty and block-sized inputs end,
with one line, in bounded memory (they once doubled a buffer until the host ran out); many
user-song pairs go through a DuckDB capped far below their size: it spills to disk, and
the folder is the same as without the cap."""

from __future__ import annotations

import resource
import subprocess
import sys
import zipfile
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest

from songrec.etl.listen_blocks import BLOCK_BYTES

LIMIT = 3 << 30  # address space: the run needs well under this; the old loop took 20 GB


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))


def _dump(path: Path, out: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", "from songrec.app.cli import main; main()", "etl", "dump"]
    return subprocess.run(
        [*command, str(path), "--user", "rob", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_limited,
    )


def _block_sized(path: Path) -> int:
    """A file of valid listens exactly BLOCK_BYTES long; returns its number of listens."""
    line = orjson.dumps(
        {"listened_at": 1600000000, "track_metadata": {"artist_name": "A", "track_name": "T"}}
    )
    count, rest = divmod(BLOCK_BYTES, len(line) + 1)
    with open(path, "wb") as handle:
        handle.write((line + b"\n") * (count - 1))
        # Pad the last listen's name so the file ends exactly at the block boundary.
        padded = line.replace(b'"T"', b'"T' + b"x" * rest + b'"')
        handle.write(padded + b"\n")
    assert path.stat().st_size == BLOCK_BYTES
    return count


@pytest.mark.parametrize("kind", ["empty jsonl", "empty zip member", "only blank lines"])
def test_empty_inputs_are_one_line_errors(tmp_path, kind) -> None:
    path = tmp_path / ("export.zip" if "zip" in kind else "listens.jsonl")
    if kind == "empty jsonl":
        path.write_bytes(b"")
    elif kind == "only blank lines":
        path.write_bytes(b"\n \n\r\n")
    else:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("listens/2024/1.jsonl", b"")
    done = _dump(path, tmp_path / "out")
    assert done.returncode == 2, done.stderr[-1000:]
    # Beside the progress bar, exactly one line: the error.
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "no valid listens" in errors[0]
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_a_block_sized_input_keeps_every_listen(tmp_path) -> None:
    path = tmp_path / "listens.jsonl"
    count = _block_sized(path)
    done = _dump(path, tmp_path / "out")
    assert done.returncode == 0, done.stderr[-1000:]
    report = orjson.loads((tmp_path / "out" / "etl_report.json").read_bytes())
    assert report["listens_read"] == count and report["listens_rejected"] == 0


# Enough pairs that the partial plays, merges and sorts outgrow a 48 MB DuckDB (narrow
# partial tables: 350k pairs spilled only 37 MB).
MANY_PAIRS = ["--users", "10000", "--songs", "3000", "--listens", "2500000", "--transform"]


# (transform, threads, the run's memory limit, DuckDB's share, what it must spill at least)
SMALL_CAPS = [
    # one thread in 48 MB: more than the cap goes to disk, the window of quantile too
    ("quantile", 1, "96MB", "45.7 MiB", 48 << 20),
    # cap rates rows alone: its ratings keep the sorted plays table's stored order, which
    # must hold with two threads over a spilled table (two threads need more than 48 MB)
    ("cap", 2, "128MB", "61.0 MiB", 1),
]


@pytest.mark.parametrize(("transform", "threads", "limit", "share", "spill"), SMALL_CAPS)
def test_many_pairs_under_a_small_memory_limit_spill_and_match_an_uncapped_run(
    tmp_path, transform, threads, limit, share, spill
) -> None:
    """590k user-song pairs (tens of MB of tables, hash tables and sorts) through a DuckDB
    capped at tens of MB: the run ends, DuckDB spilled to disk, and every file equals a
    run under the default cap, order included."""
    small, default = tmp_path / "small", tmp_path / "default"
    command = [sys.executable, "-c", "from songrec.app.cli import main; main()", "etl", "sample"]
    capped = subprocess.run(
        [*command, *MANY_PAIRS, transform, "--out", str(small)]
        + ["--memory-limit", limit, "--threads", str(threads)],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_limited,
    )
    assert capped.returncode == 0, capped.stderr[-1000:]
    report = orjson.loads((small / "etl_report.json").read_bytes())
    assert report["pairs"] > 500_000
    assert report["duckdb"]["memory_limit"] == limit and report["duckdb"]["threads"] == threads
    assert report["duckdb"]["duckdb_memory_limit"] == share  # DuckDB's half
    assert report["duckdb"]["spilled_bytes"] >= spill
    free = subprocess.run(
        [*command, *MANY_PAIRS, transform, "--out", str(default)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert free.returncode == 0, free.stderr[-1000:]
    for name in ("plays", "songs", "ratings", "spellings"):
        a = pq.read_table(small / f"{name}.parquet")
        b = pq.read_table(default / f"{name}.parquet")
        assert a.equals(b), name
    for name in ("plays", "ratings"):
        table = pq.read_table(small / f"{name}.parquet")
        assert pq.ParquetFile(small / f"{name}.parquet").num_row_groups > 1
        keys = list(zip(table["user_name"].to_pylist(), table["song_id"].to_pylist(), strict=True))
        assert keys == sorted(keys), name


def test_a_memory_limit_too_small_is_one_line(tmp_path) -> None:
    command = [sys.executable, "-c", "from songrec.app.cli import main; main()", "etl", "sample"]
    for limit, said in (("4MB", "raise --memory-limit"), ("lots", "not a memory size")):
        done = subprocess.run(
            [*command, *MANY_PAIRS, "cap", "--out", str(tmp_path / "x"), "--memory-limit", limit],
            capture_output=True,
            text=True,
            timeout=300,
        )
        errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
        assert done.returncode == 2 and len(errors) == 1 and said in errors[0], done.stderr
        assert "Traceback" not in done.stderr and not (tmp_path / "x").exists()
