"""Start the real page server (`songrec app`) on a free local port, for browsers to test."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen, timeout: float = 60.0) -> float:
    """Seconds until Streamlit's health endpoint answers; RuntimeError if it never does."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"the page server exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as answer:
                if answer.status == 200:
                    return time.perf_counter() - started
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the page server did not answer within {timeout:.0f} s")


@contextmanager
def serve(model_dir: Path, lists: Path, log: Path):
    """Run `songrec app --model model_dir` on 127.0.0.1:<free port>; yields (url, process)."""
    port = free_port()
    env = {**os.environ, "SONGREC_LISTS": str(lists), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-c", "from songrec.app.cli import main; main()", "app"]
    command += ["--model", str(model_dir), "--port", str(port), "--host", "127.0.0.1"]
    with open(log, "w") as out:
        # Its own process group: `songrec app` starts streamlit as a child, stopped with it.
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(url, process)
            yield url, process
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
