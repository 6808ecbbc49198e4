"""`songrec evaluate`: held-out comparison of the recommenders, a thin layer over models/."""

from __future__ import annotations

from pathlib import Path

import click
import pandas as pd

from songrec.app.cli.options import data_option
from songrec.app.cli.progress import Bar, progress_bar
from songrec.models.errors import ModelError
from songrec.models.evaluation.evaluate import (
    DEFAULT_TOP_SONGS,
    DEFAULT_TRANSFORMS,
    EVAL_EASE,
    evaluate,
    write_evaluation,
)
from songrec.models.evaluation.metrics import DEFAULT_K

# Column headers of the printed table (the CSV keeps the plain names).
HEADERS = {
    "split": "split",
    "model": "model",
    "transform": "ratings",
    "rmse": "RMSE",
    "mae": "MAE",
    "precision": "P@{k}",
    "recall": "R@{k}",
    "ndcg": "NDCG@{k}",
    "auc": "AUC",
    "coverage": "coverage",
}


def markdown_table(table: pd.DataFrame) -> str:
    """The evaluation as a Markdown table (3 decimals, blank where a model rates nothing)."""
    k = int(table["k"].iloc[0]) if len(table) else DEFAULT_K
    columns = list(HEADERS)
    lines = [
        "| " + " | ".join(HEADERS[c].format(k=k) for c in columns) + " |",
        "|"
        + "|".join("---" if c in ("split", "model", "transform") else "---:" for c in columns)
        + "|",
    ]
    for _, row in table.iterrows():
        cells = [
            ("" if pd.isna(row[c]) else f"{row[c]:.3f}")
            if isinstance(row[c], float)
            else str(row[c])
            for c in columns
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


@click.command("evaluate")
@data_option("Ratings folder (plays.parquet, ratings.parquet, songs.parquet).")
@click.option("--top-songs", default=DEFAULT_TOP_SONGS, show_default=True, type=click.IntRange(1))
@click.option("--k", default=DEFAULT_K, show_default=True, type=click.IntRange(1))
@click.option(
    "--out",
    "out_file",
    default=Path("evaluation.csv"),
    show_default=True,
    type=click.Path(path_type=Path, dir_okay=False),
)
@click.option(
    "--transforms",
    default=",".join(DEFAULT_TRANSFORMS),
    show_default=True,
    help="Rating transforms to compare, comma-separated.",
)
@click.option(
    "--ease-lambdas",
    default=",".join(f"{v:g}" for v in EVAL_EASE),
    show_default=True,
    help="EASE regularizations to score, comma-separated (one row each).",
)
@click.option("--seed", default=42, show_default=True, type=int)
def evaluate_command(
    data_dir: Path,
    top_songs: int,
    k: int,
    out_file: Path,
    transforms: str,
    ease_lambdas: str,
    seed: int,
) -> None:
    """Score what is served on held-out new listeners, beside every baseline.

    Models: the ranking model and the order by predicted rating (per rating transform),
    most popular, ALS, item-kNN and EASE. Writes the table as CSV and prints it.
    """
    names = [t.strip() for t in transforms.split(",") if t.strip()]
    try:
        lambdas = [float(v) for v in ease_lambdas.split(",") if v.strip()]
    except ValueError:
        raise ModelError(
            f"--ease-lambdas {ease_lambdas!r}: expected numbers, e.g. 100,300"
        ) from None
    bars: list[Bar] = []  # opened on the first report, so a bad input prints no bar

    def progress(done: int, total: int, label: str) -> None:
        if not bars:
            bars.append(progress_bar("evaluate", total=total, unit="model"))
        bars[0].set_postfix_str(label)
        bars[0].update(done - bars[0].n)

    try:
        table = evaluate(data_dir, top_songs, k, seed, names, progress, ease=lambdas)
    finally:
        for bar in bars:
            bar.close()
    write_evaluation(table, out_file)
    click.echo(markdown_table(table))
    if "chrono" not in set(table["split"]):
        click.echo("note: no chrono split: the data carries no listening times")
    click.echo(f"wrote {out_file}")


COMMANDS = [evaluate_command]
