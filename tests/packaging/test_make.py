"""The Makefile's set-up: `make demo` installs the package only, `make test` adds the
test extras, each once (two stamps); the Python check comes first."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def dry_run(target: str, venv: Path, *extra: str) -> list[str]:
    """The commands `make -n TARGET` would run against the virtual environment `venv`."""
    # Run from `make test` too: none of the outer make's flags or variables (nor a MODEL or
    # DATA of the environment) may leak in.
    env = {"PATH": os.environ["PATH"]}
    done = subprocess.run(
        ["make", "-n", "--no-print-directory", target, f"VENV={venv}", *extra],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.splitlines()


def installs(lines: list[str]) -> list[str]:
    """What each `pip install` line installs."""
    return [line.rsplit(" ", 1)[1] for line in lines if " -m pip install " in line]


def test_demo_installs_the_package_without_the_test_extras(tmp_path):
    lines = dry_run("demo", tmp_path / "venv")
    assert "sys.version_info >= (3, 11)" in lines[0]
    assert installs(lines) == ["pip", "."]
    assert any(line.endswith("songrec app --model .songrec/model --port 8501") for line in lines)


def test_test_installs_the_test_extras_on_a_fresh_machine(tmp_path):
    lines = dry_run("test", tmp_path / "venv")
    assert "sys.version_info >= (3, 11)" in lines[0]
    assert installs(lines) == ["pip", ".", "'.[test]'"]


def test_test_after_demo_adds_only_the_test_extras(tmp_path):
    venv = tmp_path / "venv"
    venv.mkdir()
    stamp = venv / ".installed"  # what `make demo` leaves
    stamp.touch()
    later = time.time() + 5  # newer than pyproject.toml, whatever the checkout's times
    os.utime(stamp, (later, later))
    lines = dry_run("test", venv)
    assert installs(lines) == ["'.[test]'"]
    assert not any("venv" in line and " -m venv " in line for line in lines)
    # and a second `make demo` after that installs nothing
    (venv / ".installed-test").touch()
    os.utime(venv / ".installed-test", (later, later))
    assert installs(dry_run("demo", venv, "DATA=/nonexistent/data")) == []
