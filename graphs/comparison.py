"""Charts comparing recommenders: grid-search RMSE/MAE per algorithm, and held-out ranking."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from songrec.graphs.distributions import save_figure  # noqa: E402

EVALUATION_METRICS = {
    "precision": "precision@k",
    "recall": "recall@k",
    "ndcg": "NDCG@k",
    "auc": "AUC",
    "coverage": "catalog coverage",
}


def best_per_algorithm(results: pd.DataFrame, metric: str = "rmse") -> pd.DataFrame:
    """Each algorithm's best scored combination by `metric`, best first (skipped rows dropped)."""
    if metric not in results.columns:
        raise ValueError(f"gscv results have no {metric!r} column")
    scored = results[results[metric].notna()]
    if "status" in scored.columns:
        scored = scored[scored["status"] == "ok"]
    best = scored.loc[scored.groupby("algorithm")[metric].idxmin()]
    return best.sort_values(metric, kind="stable").reset_index(drop=True)


def gscv_figure(results: pd.DataFrame, metric: str) -> plt.Figure:
    """Bar chart of each algorithm's best mean `metric` over the folds, with the fold spread."""
    best = best_per_algorithm(results, metric)
    spread_column = f"{metric}_std"
    spread = best[spread_column] if spread_column in best.columns else None
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(best) + 2), 4.5))
    positions = np.arange(len(best))
    ax.bar(positions, best[metric], yerr=spread, capsize=4, color="#3b6ea8")
    for x, value in zip(positions, best[metric], strict=True):
        ax.annotate(
            f"{value:.3f}",
            (x, value),
            ha="center",
            va="bottom",
            fontsize=8,
            xytext=(0, 3),
            textcoords="offset points",
        )
    ax.set_xticks(positions, best["algorithm"], rotation=30, ha="right")
    folds = (
        int(results["folds"].dropna().iloc[0])
        if "folds" in results and results["folds"].notna().any()
        else None
    )
    title = f"{metric.upper()} by algorithm (best combination each"
    title += f", mean ± std over {folds} folds)" if folds else ")"
    ax.set(ylabel=f"{metric.upper()} (lower is better)", title=title)
    if "status" in results.columns:
        left_out = sorted(
            set(results.loc[results["status"] != "ok", "algorithm"]) - set(best["algorithm"])
        )
        if left_out:
            ax.text(
                0, -0.3, "not scored: " + ", ".join(left_out), transform=ax.transAxes, fontsize=8
            )
    return fig


def plot_gscv(results: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Write rmse_gscv.png and mae_gscv.png from a gscv_results.csv table."""
    out_dir = Path(out_dir)
    return [
        save_figure(gscv_figure(results, metric), out_dir / f"{metric}_gscv.png")
        for metric in ("rmse", "mae")
    ]


def evaluation_figure(evaluation: pd.DataFrame) -> plt.Figure:
    """One row of panels per split, one panel per ranking metric, one bar per model."""
    splits = list(dict.fromkeys(evaluation["split"]))
    metrics = [m for m in EVALUATION_METRICS if m in evaluation.columns]
    k = int(evaluation["k"].iloc[0]) if "k" in evaluation.columns and len(evaluation) else 10
    fig, axes = plt.subplots(
        len(splits),
        len(metrics),
        figsize=(3.2 * len(metrics) + 1.5, 0.35 * len(evaluation) + 2.5),
        squeeze=False,
        sharey="row",
    )
    colors = {
        "most_popular": "#999999",
        "als": "#c4663a",
        "item_knn": "#8a6bb8",
        "ranker": "#2f7d4f",
        "rank_by_rating": "#3b6ea8",
    }
    for row, split in enumerate(splits):
        rows = evaluation[evaluation["split"] == split]
        labels = [
            f"{m} ({t})" if t != "-" else m
            for m, t in zip(rows["model"], rows["transform"], strict=True)
        ]
        positions = np.arange(len(rows))
        for col, metric in enumerate(metrics):
            ax = axes[row, col]
            ax.barh(
                positions,
                rows[metric],
                color=[
                    colors.get(m, "#d9a23a" if m.startswith("ease") else "#777777")
                    for m in rows["model"]
                ],
            )
            ax.set_yticks(positions, labels)
            ax.invert_yaxis()
            ax.set_title(
                f"{split}: {EVALUATION_METRICS[metric].replace('@k', f'@{k}')}", fontsize=9
            )
            if metric == "auc":
                ax.axvline(0.5, color="black", linewidth=0.8, linestyle=":")
    fig.suptitle("Held-out evaluation (hidden songs of test users; higher is better)")
    fig.tight_layout()
    return fig


def plot_evaluation(evaluation: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Write evaluation.png from an evaluation.csv table."""
    if evaluation.empty:
        raise ValueError("the evaluation table is empty")
    return [save_figure(evaluation_figure(evaluation), Path(out_dir) / "evaluation.png")]
