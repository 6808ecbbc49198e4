"""Empty and block-sized inputs through the real CLI, under a memory limit: they end, with
one line, in bounded memory (they once doubled a buffer until the host ran out)."""

from __future__ import annotations

import resource
import subprocess
import sys
import zipfile
from pathlib import Path

import orjson
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
