"""Train the ranking model: validate its parameters, compare transforms, fit on every rating.

The folder's own ratings get the whole validation grid. When the folder has play counts,
every other rating transform is then validated at the chosen alpha, beta, k and shrink
(gamma = 0 reads no rating, so only gamma > 0 can tell transforms apart), and the report
says which transform ranks best. The model served is fitted on the folder's own ratings.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from songrec.etl.ratings import TRANSFORMS
from songrec.models.data import folder_transform, load_plays, rate_plays
from songrec.models.ranking.matrix import rating_matrix
from songrec.models.ranking.puresvd import RankingModel, fit_ranking
from songrec.models.ranking.validate import (
    best_params,
    parse_grid,
    transform_ranks,
    validation_curve,
)

log = logging.getLogger(__name__)

CURVE_FILE = "rank_validation.csv"
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class RankingResult:
    """The fitted ranking model, its validation curve and a report for params.json."""

    model: RankingModel
    curve: pd.DataFrame
    report: dict


def _other_transforms(
    data_dir: Path, kept_songs: pd.DataFrame, own: str, chosen, grid: dict, seed: int
) -> list[pd.DataFrame]:
    plays = load_plays(data_dir, kept_songs["song_id"])
    gammas = [g for g in grid["gamma"] if g > 0] or [1.0]
    if plays is None or plays.empty:
        return []
    fixed = {
        "gamma": gammas,
        "alpha": [chosen.alpha],
        "beta_offset": [round(chosen.beta - chosen.alpha, 6)],
        "k": [chosen.k],
        "shrink": [chosen.shrink],
    }
    index = pd.Index(kept_songs["song_id"])
    return [
        validation_curve(rate_plays(plays, name), index, fixed, seed, transform=name)
        for name in TRANSFORMS
        if name != own
    ]


def train_ranking(
    kept: pd.DataFrame,
    kept_songs: pd.DataFrame,
    data_dir: Path | None = None,
    grid: dict | None = None,
    seed: int = 42,
    progress: Progress | None = None,
) -> RankingResult:
    """Validate, compare transforms (when plays are there), fit on all kept ratings."""
    grid = parse_grid(grid)
    own = folder_transform(data_dir) if data_dir is not None else "-"
    index = pd.Index(kept_songs["song_id"])
    curve = validation_curve(kept, index, grid, seed, transform=own, progress=progress)
    params = best_params(curve)
    others = _other_transforms(data_dir, kept_songs, own, params, grid, seed) if data_dir else []
    matrix, _ = rating_matrix(kept, index, params.gamma)
    model = fit_ranking(matrix, params, seed)
    if model.rank < params.k:  # a small catalogue caps k
        params = replace(params, k=model.rank)
        model = replace(model, params=params)
    ranks = transform_ranks([curve, *others])
    chosen = curve[
        (curve["gamma"] == params.gamma)
        & (curve["alpha"] == params.alpha)
        & (curve["beta"] == params.beta)
        & (curve["k"] == params.k)
        & (curve["shrink"] == params.shrink)
    ]
    report = {
        **params.as_dict(),
        "singular_values": [round(float(v), 6) for v in model.singular_values],
        "transform": own,
        "validation_ndcg": round(float(chosen["ndcg"].iat[0]), 4) if len(chosen) else None,
        "transform_ndcg": {row.transform: round(float(row.ndcg), 4) for row in ranks.itertuples()},
        "best_transform": None if ranks.empty else str(ranks["transform"].iat[0]),
    }
    log.info("ranking model: %s (validation NDCG@10 %s)", params, report["validation_ndcg"])
    return RankingResult(model, pd.concat([curve, *others], ignore_index=True), report)
