"""run_cli: expected failures, a full disk and click's usage errors included, are one line."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from songrec.app.cli import cli
from songrec.app.cli.errors import run_cli


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


def commands(
    group: click.Group, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], click.Command]]:
    """Every command of the CLI, groups included, as (words after `songrec`, command)."""
    found = [(path, group)]
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += commands(command, (*path, name))
        else:
            found.append(((*path, name), command))
    return found


COMMANDS = commands(cli)


def run_script(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """The console script's path (run_cli): exit code, stdout and stderr."""
    monkeypatch.setattr(sys, "argv", ["songrec", *args])
    code = run_cli(cli)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_every_command_is_enumerated():
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"", "etl", "etl sample", "etl ratings", "train", "recommend", "app"} <= names
    assert len(names) >= 14


@pytest.mark.parametrize("path", [path for path, _ in COMMANDS], ids=" ".join)
def test_an_unknown_option_is_one_line(path, monkeypatch, capsys):
    code, out, err = run_script(monkeypatch, capsys, *path, "--no-such-option")
    assert code == 2 and out == ""
    assert err.splitlines() == [
        f"error: No such option '--no-such-option'. (see `{' '.join(('songrec', *path))} --help`)"
    ]


def input_paths(command: click.Command) -> list[click.Parameter]:
    """The parameters naming something the command reads: a path that must exist, a path
    argument, or the model folder."""
    return [
        p
        for p in command.params
        if isinstance(p.type, click.Path)
        and (p.type.exists or isinstance(p, click.Argument) or p.name == "model_dir")
    ]


def plausible_args(command: click.Command, missing: str, skip: click.Parameter) -> list[str]:
    """Every other required parameter given a value that parses."""
    args: list[str] = []
    for param in command.params:
        if param is skip or not param.required:
            continue
        if isinstance(param.type, click.Choice):
            value = str(param.type.choices[0])
        elif isinstance(param.type, click.Path):
            value = missing  # never reached: a missing input fails first
        else:
            value = "a"
        args += [value] if isinstance(param, click.Argument) else [param.opts[0], value]
    return args


CASES = [
    (path, command, param)
    for path, command in COMMANDS
    if not isinstance(command, click.Group)
    for param in input_paths(command)
]


def test_every_command_that_reads_a_path_is_covered():
    covered = {path for path, _, _ in CASES}
    expected = {("etl", "ratings"), ("etl", "dump"), ("etl", "plays"), ("graphs",), ("train",)}
    assert expected | {("recommend",), ("songs",), ("similar",), ("app",), ("evaluate",)} <= covered


@pytest.mark.parametrize(
    ("path", "command", "param"),
    CASES,
    ids=[f"{' '.join(path)} {param.name}" for path, _, param in CASES],
)
def test_a_missing_input_path_is_one_line(path, command, param, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    missing = str(tmp_path / "missing" / "nowhere")
    args = plausible_args(command, missing, param)
    given = [missing] if isinstance(param, click.Argument) else [param.opts[0], missing]
    # Output folders go to tmp_path (nothing is written: the missing input stops the run).
    args = [str(tmp_path / "out") if a == missing else a for a in args]
    code, out, err = run_script(monkeypatch, capsys, *path, *args, *given)
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert missing in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


REQUIRING = [
    (path, command)
    for path, command in COMMANDS
    if not isinstance(command, click.Group) and any(p.required for p in command.params)
]


@pytest.mark.parametrize(("path", "command"), REQUIRING, ids=[" ".join(p) for p, _ in REQUIRING])
def test_a_missing_required_parameter_is_one_line(path, command, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SONGREC_MODEL", str(tmp_path))  # a folder: the model is not at fault
    code, out, err = run_script(monkeypatch, capsys, *path)
    assert code == 2 and out == ""
    (line,) = err.splitlines()
    assert line.startswith("error: Missing ") and line.endswith(f"{' '.join(path)} --help`)")
