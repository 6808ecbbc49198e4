"""models/gscv_comparison.ipynb executed by a real kernel (nbclient) on a real tiny grid search."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image as mpimg
import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

from songrec.graphs.comparison import best_per_algorithm, plot_gscv
from songrec.models.rating.grid import parse_grid
from songrec.models.rating.search import run_grid

NOTEBOOK = Path(__file__).resolve().parents[2] / "models" / "gscv_comparison.ipynb"
TINY = {
    "folds": 2,
    "algorithms": {
        "NormalPredictor": {},
        "BaselineOnly": {},
        "SVD": {"n_factors": [4, 8], "n_epochs": [10]},
        "KNNWithMeans": {"k": [10], "sim_options": {"name": ["msd"], "user_based": [False]}},
    },
}


@pytest.fixture(scope="module")
def gscv_csv(taste, tmp_path_factory) -> Path:
    """gscv_results.csv of a real 2-fold grid search on the planted-taste ratings."""
    ratings, _, _ = taste
    results = run_grid(ratings, parse_grid(TINY, "tiny"), folds=2, jobs=1, seed=0)
    path = tmp_path_factory.mktemp("gscv") / "gscv_results.csv"
    results.to_csv(path, index=False)
    return path


def run_notebook(parameters: dict, workdir: Path) -> nbformat.NotebookNode:
    """Execute the notebook with `parameters` injected after its parameters cell."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "the notebook needs exactly one cell tagged 'parameters'"
    source = "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
    nb.cells.insert(tagged[0] + 1, nbformat.v4.new_code_cell(source))
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    ).execute()
    return nb


def outputs(nb: nbformat.NotebookNode) -> tuple[str, int]:
    """All text/HTML output of the executed notebook, and how many PNG images it shows."""
    texts, images = [], 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            texts += [out.get("text", ""), data.get("text/plain", ""), data.get("text/html", "")]
            images += "image/png" in data
    return "\n".join(map(str, texts)), images


def test_notebook_shows_tables_and_charts_from_gscv_results(gscv_csv, tmp_path) -> None:
    nb = run_notebook({"results_path": str(gscv_csv)}, tmp_path)
    text, images = outputs(nb)
    assert images == 2  # the RMSE and MAE bar charts
    results = pd.read_csv(gscv_csv)
    assert f"{len(results)} combinations, 4 algorithms" in text
    # Every algorithm appears with its best RMSE, rounded as the table shows it.
    for algorithm, rmse in results.groupby("algorithm")["rmse"].min().items():
        assert algorithm in text
        assert f"{rmse:.4f}" in text
    assert "n_factors" in text  # the SVD table spreads the params into columns


def test_notebook_can_run_the_grid_itself(taste_dir, tmp_path) -> None:
    grid = tmp_path / "tiny.json"
    grid.write_text(json.dumps(TINY))
    nb = run_notebook({"data_dir": str(taste_dir), "grid": str(grid)}, tmp_path)
    text, images = outputs(nb)
    assert images == 2
    assert "5 combinations, 4 algorithms" in text


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG, read back by matplotlib; fails on anything else."""
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width = mpimg.imread(path).shape[:2]
    return width, height


def test_plot_gscv_writes_two_bar_charts(gscv_csv, tmp_path) -> None:
    results = pd.read_csv(gscv_csv)
    written = plot_gscv(results, tmp_path / "graphs")
    assert [p.name for p in written] == ["rmse_gscv.png", "mae_gscv.png"]
    for path in written:
        width, height = png_size(path)
        assert width >= 500 and height >= 300
        assert path.stat().st_size > 10_000
    assert sorted(p.name for p in (tmp_path / "graphs").iterdir()) == [
        "mae_gscv.png",
        "rmse_gscv.png",
    ]


def test_best_per_algorithm_skips_unscored_rows(gscv_csv) -> None:
    results = pd.read_csv(gscv_csv)
    skipped = results.iloc[[0]].assign(algorithm="SVDpp", status="skipped", rmse=float("nan"))
    best = best_per_algorithm(pd.concat([results, skipped]), "rmse")
    assert sorted(best["algorithm"]) == ["BaselineOnly", "KNNWithMeans", "NormalPredictor", "SVD"]
    assert best["rmse"].is_monotonic_increasing
    svd = results[results["algorithm"] == "SVD"]
    assert best.set_index("algorithm").loc["SVD", "rmse"] == svd["rmse"].min()
