"""Progress bars: whole, distinct lines in a log; tqdm's bar on a terminal only."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import struct
import subprocess
import sys
import termios

import pytest

from songrec.app.cli.progress import LogBar, StepBar, TerminalBar, progress_bar


def test_etl_sample_writes_one_progress_line_to_a_log(tmp_path):
    # stderr is a pipe, as in `make demo > log` or CI. 1,200 listeners: three batches.
    done = subprocess.run(
        [
            *(sys.executable, "-c", "from songrec.app.cli import main; main()"),
            *("etl", "sample", "--out", str(tmp_path / "s"), "--users", "1200"),
            *("--songs", "300", "--listens", "30000"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "\r" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("sample")]
    assert len(lines) == 1, done.stderr
    # The total is the listeners (known from the start), never the guessed listen count;
    # the listens made are counted beside it.
    read = int(done.stdout.split(" listens read")[0].rsplit(" ", 1)[1].replace(",", ""))
    assert lines[0].startswith("sample: 100% 1200/1200 ")
    assert lines[0].endswith(f", {read:,} listens]")


def test_a_log_bar_writes_distinct_lines_and_ends_once():
    out = io.StringIO()
    with LogBar(total=5, desc="stage", unit="fit", file=out, every_s=0) as bar:
        for _ in range(5):
            bar.set_postfix_str("fitting")
            bar.update(1)
            bar.update(0)  # a report without progress adds no line
        bar.close()  # closed twice (as StageBars and `with` may): one final line
    lines = out.getvalue().splitlines()
    assert [line.split()[2] for line in lines] == ["1/5", "2/5", "3/5", "4/5", "5/5"]
    assert len(set(lines)) == len(lines) and lines[-1].startswith("stage: 100% 5/5 ")


def test_a_log_bar_without_a_total_shows_none():
    out = io.StringIO()
    with LogBar(desc="download", unit="play", unit_scale=True, file=out) as bar:
        bar.update(1500)
        bar.update(1500)
    (line,) = out.getvalue().splitlines()
    assert line.startswith("download: 3.00kplay [") and "%" not in line


def test_a_log_bar_closed_by_an_error_adds_no_line():
    out = io.StringIO()
    with pytest.raises(ValueError), LogBar(total=10, desc="dump", file=out) as bar:
        bar.update(3)
        raise ValueError("bad archive")
    assert out.getvalue() == ""
    silent = LogBar(total=2, desc="retrain", file=out, disable=True)
    silent.update(2)
    silent.close()
    assert out.getvalue() == ""


def test_off_a_terminal_the_bar_is_a_log_bar(capsys):
    assert isinstance(progress_bar("x", total=1), LogBar)


def test_on_a_terminal_the_bar_is_tqdm_and_an_error_wipes_it():
    script = (
        "import sys\n"
        "from songrec.app.cli.progress import progress_bar\n"
        "with progress_bar('fine', total=3) as bar:\n"
        "    bar.update(3)\n"
        "print(type(bar).__name__, flush=True)\n"
        "try:\n"
        "    with progress_bar('broken', total=3) as bar:\n"
        "        bar.update(1)\n"
        "        raise ValueError\n"
        "except ValueError:\n"
        "    print('error: broken', file=sys.stderr, flush=True)\n"
    )
    leader, follower = pty.openpty()
    # 24 rows x 100 columns: tqdm fits its line to the terminal's width.
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        done = subprocess.run(
            [sys.executable, "-c", script],
            stdout=subprocess.PIPE,
            stderr=follower,
            text=True,
            timeout=60,
        )
    finally:
        os.close(follower)
    terminal = b""
    try:
        while chunk := os.read(leader, 65536):
            terminal += chunk
    except OSError:  # the follower closed: all read
        pass
    finally:
        os.close(leader)
    assert done.returncode == 0 and done.stdout.strip() == TerminalBar.__name__
    shown = terminal.decode()
    assert "\r" in shown and "fine: 100%" in shown
    # What stays on screen: each line as its last carriage return left it. The failed bar
    # was cleared, so the error follows the finished bar directly.
    screen = [line.split("\r")[-1].strip() for line in shown.replace("\r\n", "\n").split("\n")]
    screen = [line for line in screen if line]
    assert len(screen) == 2 and screen[0].startswith("fine: 100%")
    assert screen[1] == "error: broken"


def test_a_step_bar_counts_the_steps_after_the_reading_bar(capsys):
    # In a log (stderr captured, not a terminal): the reading's line first, then one
    # line for the steps once they are all done.
    with progress_bar("dump", total=10, unit="B") as before, StepBar("build", before) as step:
        before.update(10)
        step(0, 3, "merging plays")
        step(1, 3, "songs")
        step(2, 3, "writing plays.parquet")
        step(3, 3, "written")
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(":")[0] for line in lines] == ["dump", "build"]
    assert lines[1].startswith("build: 100% 3/3 ") and lines[1].endswith(", written]")


def test_a_run_failing_in_a_step_prints_no_bar(capsys):
    # The reading finished, a later step failed: only the error may follow.
    with pytest.raises(RuntimeError):
        with (
            progress_bar("dump", total=10, unit="B") as before,
            StepBar("build", before) as step,
        ):
            before.update(10)
            step(0, 3, "merging plays")
            raise RuntimeError("out of memory")
    assert capsys.readouterr().err == ""
