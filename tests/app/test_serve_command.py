"""`songrec app`: a bad model folder fails with one line before any server starts."""

from __future__ import annotations

import subprocess
import sys

from app.cli.serve_commands import PAGE, streamlit_command


def songrec(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from app.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_missing_model_folder_is_one_line_and_exit_2(tmp_path):
    done = songrec("app", "--model", str(tmp_path / "nowhere"))
    assert done.returncode == 2
    assert done.stderr.startswith("error: model folder") and "Traceback" not in done.stderr


def test_a_tampered_model_folder_is_refused(tampered_model_dir):
    done = songrec("app", "--model", str(tampered_model_dir))
    assert done.returncode == 2
    assert "checksum mismatch for item_factors.npy" in done.stderr


def test_the_server_listens_where_asked_and_sends_no_usage_stats():
    command = streamlit_command(8765, "127.0.0.1")
    assert str(PAGE) in command and PAGE.is_file()
    pairs = dict(zip(command[5::2], command[6::2], strict=True))
    assert pairs == {
        "--server.port": "8765",
        "--server.address": "127.0.0.1",
        "--server.headless": "true",
        "--browser.gatherUsageStats": "false",
    }


def test_help_names_the_options():
    done = songrec("app", "--help")
    assert done.returncode == 0
    for option in ("--model", "--port", "--host"):
        assert option in done.stdout
