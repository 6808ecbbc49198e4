"""The built wheel: every module and data file ships, and `songrec` works from it alone."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("app", "etl", "models", "graphs")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, str]:
    """The wheel built from this checkout, and what the build printed."""
    work = tmp_path_factory.mktemp("wheel")
    # Built from a copy: setuptools writes build/ and *.egg-info/ beside the sources.
    source = work / "src"
    for name in PACKAGES:
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    done = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check"),
            *("-w", str(work), str(source)),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    (wheel,) = work.glob("songrec-*.whl")
    return wheel, done.stdout + done.stderr


@pytest.fixture(scope="module")
def installed(built) -> Path:
    """The wheel installed (without dependencies) into a folder."""
    wheel, _ = built
    target = wheel.parent / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    return target


def _from_wheel(target: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    # The wheel's folder first on the path, and run away from the checkout, so nothing
    # comes from the source tree.
    code = (
        "import sys; sys.path.insert(0, sys.argv.pop(1)); import songrec.app.cli as cli;"
        "import songrec.etl as etl;"
        "assert not etl.__file__.startswith(sys.argv.pop(1)), etl.__file__; cli.main()"
    )
    return subprocess.run(
        [sys.executable, "-c", code, str(target), str(REPO), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
    )


def test_the_wheel_carries_every_module_and_data_file(installed) -> None:
    # Everything lives under one `songrec` package: nothing named app, etl, models or
    # graphs lands at the top of site-packages, where another project's could be.
    assert sorted(p.name for p in installed.iterdir() if not p.name.endswith("-info")) == [
        "bin",
        "songrec",
    ]
    for package in PACKAGES:
        for source in (REPO / package).rglob("*.py"):
            assert (installed / "songrec" / source.relative_to(REPO)).is_file(), source
    assert (installed / "songrec" / "etl" / "sql" / "listens_to_plays.sql").is_file()
    assert (installed / "songrec" / "models" / "gscv_comparison.ipynb").is_file()


def test_the_build_prints_no_warning(built) -> None:
    # setuptools warns about every folder Python could import that `packages` does not
    # list (etl/sql was one: a page of warnings on each install).
    _, output = built
    assert "warning" not in output.lower(), output


def test_songrec_runs_etl_train_recommend_from_the_wheel(installed, tmp_path) -> None:
    assert _from_wheel(installed, "--help", cwd=tmp_path).returncode == 0
    data, model = tmp_path / "data", tmp_path / "model"
    steps = [
        [
            "etl",
            "sample",
            "--out",
            str(data),
            "--users",
            "60",
            "--songs",
            "200",
            "--listens",
            "8000",
        ],
        ["train", "--data", str(data), "--out", str(model), "--grid", str(_tiny_grid(tmp_path))],
        ["recommend", "--model", str(model), "--json"],
    ]
    for args in steps:
        done = _from_wheel(installed, *args, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
    assert '"song_id"' in done.stdout


def _tiny_grid(folder: Path) -> Path:
    path = folder / "grid.json"
    path.write_text(
        '{"folds": 2, "algorithms": {"SVD": {"n_factors": [4], "n_epochs": [5]}},'
        ' "ranking": {"gamma": [0], "alpha": [0], "k": [4], "shrink": [0], "beta_offset": [0]}}'
    )
    return path


def test_every_imported_package_is_declared() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = {
        re.split(r"[\[<>=~! ]", name, maxsplit=1)[0].lower() for name in project["dependencies"]
    }
    providers = metadata.packages_distributions()
    local = {"songrec"} | set(sys.stdlib_module_names) | {"__future__"}
    missing = set()
    for package in PACKAGES:
        for source in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(source.read_text())):
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module]
                    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                    else []
                )
                for name in names:
                    top = name.split(".")[0]
                    if top in local:
                        continue
                    dists = {d.lower() for d in providers.get(top, [top])}
                    if not dists & declared and not _via_declared(dists, declared):
                        missing.add(f"{top} ({source.relative_to(REPO)})")
    assert not missing, missing


def _via_declared(dists: set[str], declared: set[str]) -> bool:
    """Packages a declared extra brings (google-cloud-bigquery[bqstorage] -> its storage API)."""
    return any(d.startswith("google-cloud-bigquery") for d in dists) and (
        "google-cloud-bigquery" in declared
    )
