"""`evaluate` end to end on a small folder made by the real ETL from the sample generator."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import click
import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from songrec.app.cli.errors import run_cli
from songrec.app.cli.evaluate_commands import evaluate_command
from songrec.etl.pipeline import EtlRun, run_listens
from songrec.etl.sample import SampleSpec, sample_listens
from songrec.graphs.comparison import plot_evaluation
from songrec.models.errors import ModelError
from songrec.models.evaluation.evaluate import COLUMNS, evaluate, write_evaluation

SMALL_SVD = {"n_factors": 10, "n_epochs": 10}
SMALL_ALS = {"factors": 16, "iterations": 10}
SMALL_EASE = (50.0,)
SMALL_RANKING = {"k": [8, 16, 32]}
METRICS = ["precision", "recall", "ndcg", "auc", "coverage"]


@pytest.fixture(scope="module")
def small_dir(tmp_path_factory) -> Path:
    """150 listeners with genre tastes, 400 songs, through listens -> plays -> ratings."""
    out = tmp_path_factory.mktemp("eval") / "data"
    spec = SampleSpec(users=150, songs=400, listens=30_000, seed=5)
    run_listens(EtlRun(source="test sample", out_dir=out), sample_listens(spec))
    return out


def _small_evaluation(folder: Path) -> pd.DataFrame:
    """The evaluation at test size: small models, two transforms."""
    return evaluate(
        folder,
        top_songs=300,
        k=10,
        seed=1,
        transforms=["cap", "log"],
        svd=SMALL_SVD,
        als=SMALL_ALS,
        ease=SMALL_EASE,
        ranking=SMALL_RANKING,
    )


@pytest.fixture(scope="module")
def table(small_dir) -> pd.DataFrame:
    return _small_evaluation(small_dir)


def test_every_model_on_every_split_and_transform(table) -> None:
    assert list(table.columns) == COLUMNS
    assert len(table) == 2 * (4 + 2 * 2)
    for split in ("random", "chrono"):
        rows = table[table["split"] == split]
        assert set(zip(rows["model"], rows["transform"], strict=True)) == {
            ("most_popular", "-"),
            ("als", "bm25"),
            ("item_knn", "binary"),
            ("ease_50", "binary"),
            ("ranker", "cap"),
            ("rank_by_rating", "cap"),
            ("ranker", "log"),
            ("rank_by_rating", "log"),
        }
    assert (table[METRICS].ge(0) & table[METRICS].le(1)).all().all()
    assert (table["hidden"] > 0).all() and (table["test_users"] > 0).all()
    rates = table["model"] == "rank_by_rating"
    assert table.loc[rates, ["rmse", "mae"]].notna().all().all()
    assert table.loc[~rates, ["rmse", "mae"]].isna().all().all()
    # RMSE >= MAE always holds; ratings are 1..10, so neither can exceed 9.
    assert (table.loc[rates, "rmse"] >= table.loc[rates, "mae"]).all()
    assert (table.loc[rates, "rmse"] <= 9).all()


def test_personal_models_beat_the_popular_list_on_taste_data(table) -> None:
    # The sample's listeners follow genres: a personal model must find more hidden songs.
    for split in ("random", "chrono"):
        rows = table[table["split"] == split].set_index(["model", "transform"])
        popular = rows.loc[("most_popular", "-")]
        for model in [("als", "bm25"), ("ranker", "cap"), ("ranker", "log"), ("ease_50", "binary")]:
            assert rows.loc[model, "ndcg"] > 1.5 * popular["ndcg"], model
            assert (
                rows.loc[model, "auc"] > 0.7 and rows.loc[model, "coverage"] > popular["coverage"]
            )
        # The served ranker is not the order by predicted rating: it finds far more.
        assert rows.loc[("ranker", "cap"), "ndcg"] > 3 * rows.loc[("rank_by_rating", "cap"), "ndcg"]


def test_test_listeners_are_never_in_training(small_dir) -> None:
    from songrec.models.evaluation import baselines
    from songrec.models.evaluation.evaluate import load_plays
    from songrec.models.evaluation.splits import random_holdout

    plays, songs = load_plays(small_dir, 300)
    holdout = random_holdout(plays, seed=1)
    others = holdout.train_users_only()
    targets = baselines.Targets.new_listeners(holdout)
    # A listener with nothing visible gets exactly the same scores as any other such
    # listener from every model: nothing of theirs leaked into a fit.
    blank = baselines.Targets(
        targets.users, targets.catalog, targets.visible.iloc[:0], targets.hidden
    )
    for scored in (
        baselines.item_knn(blank, others),
        baselines.ease(blank, others, 50.0),
        baselines.als(blank, others, blank.visible, SMALL_ALS, 1),
    ):
        assert np.allclose(scored.scores, scored.scores[0])


def test_same_seed_same_table(small_dir, table) -> None:
    again = _small_evaluation(small_dir)
    cols = [c for c in COLUMNS if c != "fit_seconds"]
    pd.testing.assert_frame_equal(table[cols], again[cols], rtol=1e-4)


def test_no_listening_times_skips_the_chrono_split(small_dir, tmp_path) -> None:
    folder = tmp_path / "untimed"
    shutil.copytree(small_dir, folder)
    plays = pd.read_parquet(folder / "plays.parquet")
    plays["last_listened_at"] = pd.NaT
    plays.to_parquet(folder / "plays.parquet")
    result = evaluate(
        folder,
        top_songs=300,
        transforms=["cap"],
        svd=SMALL_SVD,
        als=SMALL_ALS,
        ease=SMALL_EASE,
        ranking=SMALL_RANKING,
    )
    assert set(result["split"]) == {"random"} and len(result) == 6


def test_bad_input_is_a_model_error(small_dir, tmp_path) -> None:
    with pytest.raises(ModelError, match="unknown transform"):
        evaluate(small_dir, transforms=["cap", "bogus"])
    with pytest.raises(ModelError, match="k must be"):
        evaluate(small_dir, k=0)
    folder = tmp_path / "noplays"
    shutil.copytree(small_dir, folder)
    (folder / "plays.parquet").unlink()
    with pytest.raises(ModelError, match="plays.parquet"):
        evaluate(folder)
    with pytest.raises(ModelError, match="does not exist"):
        evaluate(tmp_path / "missing")


def test_write_evaluation_replaces_atomically(table, tmp_path) -> None:
    path = tmp_path / "out" / "evaluation.csv"
    path.parent.mkdir()
    path.write_text("old")
    assert write_evaluation(table, path) == path
    back = pd.read_csv(path)
    assert len(back) == len(table)
    np.testing.assert_allclose(back["ndcg"], table["ndcg"])
    assert [p.name for p in path.parent.iterdir()] == ["evaluation.csv"]


def test_cli_writes_csv_and_prints_a_table(small_dir, tmp_path) -> None:
    out = tmp_path / "evaluation.csv"
    result = CliRunner().invoke(
        evaluate_command,
        ["--data", str(small_dir), "--top-songs", "200", "--k", "5", "--out", str(out)]
        + ["--transforms", "cap"],
    )
    assert result.exit_code == 0, result.output
    assert "| split | model | ratings | RMSE | MAE | P@5 |" in result.output
    assert "| random | als | bm25 |" in result.output
    written = pd.read_csv(out)
    assert len(written) == 2 * (3 + 3 + 2) and (written["k"] == 5).all()
    assert "| random | ranker | cap |" in result.output


def test_cli_bad_input_is_one_line_and_exit_2(small_dir, tmp_path, monkeypatch, capsys) -> None:
    group = click.Group("songrec", commands={"evaluate": evaluate_command})
    out = tmp_path / "e.csv"
    argv = ["songrec", "evaluate", "--data", str(small_dir), "--transforms", "nope"]
    monkeypatch.setattr(sys, "argv", [*argv, "--out", str(out)])
    assert run_cli(group) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown transform(s) nope; choose from cap")
    assert len(err.splitlines()) == 1
    assert not out.exists()


def test_plot_evaluation_writes_a_chart(table, tmp_path) -> None:
    (written,) = plot_evaluation(table, tmp_path)
    assert written == tmp_path / "evaluation.png"
    assert written.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width = mpimg.imread(written).shape[:2]
    assert width >= 800 and height >= 400
    assert written.stat().st_size > 20_000
    with pytest.raises(ValueError, match="empty"):
        plot_evaluation(table.iloc[:0], tmp_path)
