"""run_cli: expected failures, a full disk included, are one line and exit 2."""

from __future__ import annotations

import subprocess
import sys


def test_a_full_disk_is_one_line() -> None:
    # /dev/full answers every write with ENOSPC, as a full disk does.
    script = (
        "import sys, click\n"
        "from songrec.app.cli.errors import run_cli\n"
        "@click.command()\n"
        "def write():\n"
        "    with open('/dev/full', 'w') as handle:\n"
        "        handle.write('x' * 65536)\n"
        "sys.exit(run_cli(write))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == ["error: No space left on device"]


def test_duckdb_out_of_disk_or_memory_is_one_line() -> None:
    script = (
        "import sys, click, duckdb\n"
        "from songrec.app.cli.errors import run_cli\n"
        "@click.command()\n"
        "def spill():\n"
        "    con = duckdb.connect(config={'memory_limit': '20MB'})\n"
        "    con.execute('SELECT list(range) FROM range(50000000)').fetchall()\n"
        "sys.exit(run_cli(spill))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 2, done.stderr[-500:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in done.stderr
