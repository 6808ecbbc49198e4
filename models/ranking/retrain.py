""" "Retrain with you added", exact: the truncated SVD recomputed with the listener's row.

The training matrix (entries rating^gamma) gets one more row, the listener's liked songs
with their entries (a disliked song was not played, so it adds nothing), listener counts
grow by one for each liked song, and the SVD is recomputed from scratch with the model's
own parameters. The listener is then scored with the new vectors exactly as the instant
mode scores them with the stored ones.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix, vstack

from songrec.models.ranking.matrix import dislikes, entry_values
from songrec.models.ranking.puresvd import RankingModel, RankingParams, fit_ranking


def listener_row(
    n_songs: int,
    idx: np.ndarray,
    ratings: np.ndarray,
    gamma: float,
    said: np.ndarray | None = None,
) -> csr_matrix:
    """The listener's row of the training matrix: liked songs only, entries rating^gamma
    (`said`: explicit dislikes, left out like the others)."""
    liked = ~dislikes(ratings, said)
    idx = np.asarray(idx, dtype=np.int64)[liked]
    values = entry_values(np.asarray(ratings)[liked], gamma)
    return csr_matrix((values, (np.zeros(len(idx), dtype=np.int64), idx)), shape=(1, n_songs))


def refit_with_listener(
    base: csr_matrix,
    params: RankingParams,
    idx: np.ndarray,
    ratings: np.ndarray,
    seed: int = 0,
    said: np.ndarray | None = None,
) -> RankingModel:
    """The ranking model refitted on `base` (listeners x songs, rating^gamma) plus the listener."""
    row = listener_row(base.shape[1], idx, ratings, params.gamma, said)
    return fit_ranking(vstack([base, row], format="csr"), params, seed)
