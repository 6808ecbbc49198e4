"""run_cli: expected failures, a full disk included, are one line and exit 2."""

from __future__ import annotations

import subprocess
import sys


def test_a_full_disk_is_one_line() -> None:
    # /dev/full answers every write with ENOSPC, as a full disk does.
    script = (
        "import sys, click\n"
        "from app.cli.errors import run_cli\n"
        "@click.command()\n"
        "def write():\n"
        "    with open('/dev/full', 'w') as handle:\n"
        "        handle.write('x' * 65536)\n"
        "sys.exit(run_cli(write))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == ["error: No space left on device"]
