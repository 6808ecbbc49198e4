"""kill -9 at any point: the output folder is the old one or the new one, readable, and the
next run leaves no leftovers (temporary siblings, old copies, DuckDB spill folders)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from songrec.etl.aggregate import SPILL_PREFIX
from songrec.etl.output import clean_leftovers, replace_folder

SONGREC = [sys.executable, "-c", "from songrec.app.cli import main; main()"]
SAMPLE = ["--users", "300", "--songs", "1500", "--listens", "150000", "--force"]


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _run(*args: str) -> None:
    subprocess.run([*SONGREC, *args], check=True, capture_output=True)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _state(out: Path) -> str:
    report = pd.read_json(out / "etl_report.json", typ="series")
    pd.read_parquet(out / "ratings.parquet")  # readable, whole
    return str(report["source"])


def test_kill_9_during_etl_leaves_the_old_or_the_new_folder(tmp_path) -> None:
    out = tmp_path / "data"
    _run("etl", "sample", "--out", str(out), "--seed", "1", *SAMPLE)
    old = _state(out)
    for delay in (0.3, 0.8, 1.5, 2.5):
        child = subprocess.Popen(
            [*SONGREC, "etl", "sample", "--out", str(out), "--seed", "2", *SAMPLE],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait()
        assert _state(out) in (old, old.replace("seed=1", "seed=2"))
    _run("etl", "sample", "--out", str(out), "--seed", "3", *SAMPLE)
    assert "seed=3" in _state(out)
    assert _leftovers(tmp_path) == []
    spills = [p for p in Path(tempfile.gettempdir()).glob(f"{SPILL_PREFIX}*") if _is_dead_owner(p)]
    assert spills == []


def _is_dead_owner(path: Path) -> bool:
    pid = path.name[len(SPILL_PREFIX) :].split("-")[0]
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    return False


def test_leftovers_of_dead_runs_go_and_live_ones_stay(tmp_path) -> None:
    dead, alive = _dead_pid(), os.getpid()
    out = tmp_path / "model"
    names = [
        f".model.tmp-{dead}-abc",
        f".model.old-{dead}-def",
        f".model.tmp-{alive}-ghi",
        ".model.tmp-notapid",
        ".other.tmp-1-x",
    ]
    for name in names:
        (tmp_path / name).mkdir()
    replace_folder(out, lambda tmp: (tmp / "f").write_text("new"))
    assert _leftovers(tmp_path) == sorted(names[2:])
    assert (out / "f").read_text() == "new"
    spill = Path(tempfile.gettempdir()) / f"{SPILL_PREFIX}{dead}-zz"
    spill.mkdir(exist_ok=True)
    assert spill in clean_leftovers(spill.parent, (SPILL_PREFIX,)) and not spill.exists()


def test_a_crash_between_the_two_renames_is_repaired(tmp_path) -> None:
    # The fallback swap (where an atomic exchange is not available) moves the old folder
    # aside first; a run killed right then left no folder at all. The next run puts it back.
    out = tmp_path / "data"
    aside = tmp_path / f".data.old-{_dead_pid()}-xyz"
    aside.mkdir()
    (aside / "x").mkdir()
    (aside / "x" / "f").write_text("old")

    def fail(tmp: Path) -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        replace_folder(out, fail)
    assert (out / "f").read_text() == "old" and _leftovers(tmp_path) == []


def test_kill_9_during_etl_ratings_never_mixes_transforms(tmp_path) -> None:
    import pyarrow.parquet as pq

    from songrec.etl.ratings import transform_ratings

    out = tmp_path / "data"
    _run("etl", "sample", "--out", str(out), "--seed", "1", *SAMPLE)
    plays = pq.read_table(out / "plays.parquet")
    expected = {
        name: sorted(transform_ratings(plays, name).column("rating").to_pylist())
        for name in ("cap", "quantile", "log")
    }
    for delay, transform in ((0.4, "quantile"), (0.9, "log"), (1.4, "quantile"), (5.0, "log")):
        child = subprocess.Popen(
            [*SONGREC, "etl", "ratings", "--data", str(out), "--transform", transform],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait()
        report = pd.read_json(out / "etl_report.json", typ="series")
        ratings = sorted(pd.read_parquet(out / "ratings.parquet")["rating"].tolist())
        assert ratings == expected[report["transform"]]
    _run("etl", "ratings", "--data", str(out), "--transform", "cap")
    assert _leftovers(tmp_path) == []


def _children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def _gone(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


def test_kill_9_during_a_parallel_grid_takes_the_workers_down(tmp_path) -> None:
    data, model = tmp_path / "data", tmp_path / "model"
    _run("etl", "sample", "--out", str(data), *SAMPLE)
    grid = tmp_path / "grid.json"
    grid.write_text('{"folds": 2, "algorithms": {"SVD": {"n_factors": [50], "n_epochs": [400]}}}')
    child = subprocess.Popen(
        [*SONGREC, "train", "--data", str(data), "--out", str(model), "--grid", str(grid)]
        + ["--jobs", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        workers: list[int] = []
        while time.monotonic() < deadline and len(workers) < 2:
            time.sleep(0.2)
            workers = [p for p in _children(child.pid) if "popen_loky" in _cmdline(p)]
        assert len(workers) >= 2, "the grid never started its workers"
        child.send_signal(signal.SIGKILL)
        child.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(_gone(p) for p in workers):
            time.sleep(0.2)
        assert all(_gone(p) for p in workers)
    finally:
        if child.poll() is None:
            child.kill()
    assert not model.exists()


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
