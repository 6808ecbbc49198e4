"""`songrec graphs --data`: the plays and ratings charts of a ratings folder."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from PIL import Image

from songrec.app.cli import cli


def test_graphs_from_a_sample_folder(tmp_path: Path):
    data, out = tmp_path / "data", tmp_path / "graphs"
    runner = CliRunner()
    made = runner.invoke(
        cli,
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
            "6000",
        ],
    )
    assert made.exit_code == 0, made.output
    result = runner.invoke(cli, ["graphs", "--data", str(data), "--out", str(out)])
    assert result.exit_code == 0, result.output
    for name in ("plays_distribution.png", "ratings_distribution.png"):
        with Image.open(out / name) as image:
            assert image.format == "PNG" and image.width > 300 and image.height > 200
    assert sorted(p.name for p in out.iterdir()) == [
        "plays_distribution.png",
        "ratings_distribution.png",
    ]


def test_graphs_needs_something_to_draw(tmp_path: Path):
    result = CliRunner().invoke(cli, ["graphs", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "give at least one of" in result.output
