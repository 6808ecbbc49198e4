"""Plays-per-pair and rating distributions of a ratings folder, as the reference showed."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402


def save_figure(fig: plt.Figure, path: Path) -> Path:
    """Save a figure as PNG through a temporary file, so no half-written image is left."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
        os.chmod(tmp, 0o644)  # mkstemp makes owner-only files; a chart is for everyone
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def plot_distributions(data_dir: Path, out_dir: Path) -> list[Path]:
    """Write plays_distribution.png (log scale) and ratings_distribution.png."""
    plays = pq.read_table(data_dir / "plays.parquet", columns=["plays"]).column("plays").to_numpy()
    ratings = pq.read_table(data_dir / "ratings.parquet", columns=["rating"]).column("rating")
    ratings = ratings.to_numpy()

    fig, ax = plt.subplots(figsize=(7, 4))
    bins = np.unique(np.logspace(0, np.log10(max(plays.max(), 2)) + 0.01, 40).astype(int))
    ax.hist(plays, bins=bins, color="#3b6ea8")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="plays per user-song pair (log)",
        ylabel="pairs (log)",
        title=f"Plays per user-song pair ({len(plays):,} pairs)",
    )
    written = [save_figure(fig, out_dir / "plays_distribution.png")]

    fig, ax = plt.subplots(figsize=(7, 4))
    counts = np.bincount(ratings, minlength=11)[1:11]
    ax.bar(range(1, 11), counts / counts.sum() * 100, color="#c4663a")
    ax.set(
        xticks=range(1, 11),
        xlabel="rating",
        ylabel="% of ratings",
        title=f"Ratings ({len(ratings):,})",
    )
    written.append(save_figure(fig, out_dir / "ratings_distribution.png"))
    return written
