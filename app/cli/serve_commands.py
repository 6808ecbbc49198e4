"""`songrec app`: check the model folder, then serve the page with `streamlit run`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from songrec.app.cli.options import model_option
from songrec.app.model_location import MODEL_ENV
from songrec.etl.history import MAX_INPUT_BYTES
from songrec.models.artifact import load_model

PAGE = Path(__file__).resolve().parents[1] / "streamlit_app.py"


def streamlit_command(port: int, host: str) -> list[str]:
    """The `streamlit run` command line for the page."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(PAGE),
        "--server.port",
        str(port),
        "--server.address",
        host,
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        # The history upload's limit (MB), also when .streamlit/config.toml is not in reach.
        "--server.maxUploadSize",
        str(MAX_INPUT_BYTES // 2**20),
    ]


@click.command("app")
@model_option(f"Model folder written by `songrec train` (sets {MODEL_ENV} for the page).")
@click.option("--port", default=8501, show_default=True, type=click.IntRange(1, 65535))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
def app_command(model_dir: Path, port: int, host: str) -> None:
    """Serve the recommender page on http://HOST:PORT (Ctrl+C stops it)."""
    # Fail here with one line rather than in the browser: a missing, tampered or malformed
    # model (the same loader the page uses: checksums, then dtypes, shapes, finite values).
    load_model(model_dir)
    env = {**os.environ, MODEL_ENV: str(model_dir.resolve())}
    click.echo(f"songrec: serving {model_dir} on http://{host}:{port}", err=True)
    sys.stdout.flush()
    sys.stderr.flush()
    # Become the server (exec, not a child): SIGTERM and Ctrl+C reach Streamlit itself, and
    # no server is left behind when `songrec app` is stopped.
    command = streamlit_command(port, host)
    os.execve(command[0], command, env)
