"""`songrec app`: a bad model folder fails with one line before any server starts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request

import pytest
from page_server import REPO, free_port, wait_healthy

from songrec.app.cli.serve_commands import PAGE, streamlit_command


def songrec(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from songrec.app.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_missing_model_folder_is_one_line_and_exit_2(tmp_path):
    done = songrec("app", "--model", str(tmp_path / "nowhere"))
    assert done.returncode == 2
    assert done.stderr.startswith("error: no model at ") and len(done.stderr.splitlines()) == 1


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
        "--server.maxUploadSize": "50",  # the history upload's cap, in MB
    }


def test_help_names_the_options():
    done = songrec("app", "--help")
    assert done.returncode == 0
    for option in ("--model", "--port", "--host"):
        assert option in done.stdout


def test_sigterm_stops_the_server_itself(model_dir, tmp_path):
    port = free_port()
    command = [sys.executable, "-c", "from songrec.app.cli import main; main()", "app"]
    command += ["--model", str(model_dir), "--port", str(port)]
    env = {**os.environ, "SONGREC_LISTS": str(tmp_path / "lists.sqlite3")}
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process)
        process.send_signal(signal.SIGTERM)  # to `songrec app` only, not a process group
        process.wait(timeout=20)
        with pytest.raises(OSError):
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
