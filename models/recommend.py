"""Top songs for a new listener from a few (song, rating) pairs.

The order comes from the ranking model (models.ranking: a truncated SVD of the whole
rating matrix, which knows which songs listeners play); the predicted rating shown beside
each song comes from the rating model (Surprise SVD, folded in). `rank_by="rating"` orders
by that predicted rating instead: the reference's behaviour, kept for fidelity, which
finds almost none of a listener's hidden songs (see README's evaluation).

Modes: `foldin` (instant) projects the listener onto the stored model; `retrain` (exact)
recomputes the model with the listener added: the ranking SVD in about a second, or, with
`rank_by="rating"`, the reference's full Surprise refit. The model is never changed.
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix

from songrec.models.artifact import TrainedModel
from songrec.models.data import RATING_MAX, RATING_MIN
from songrec.models.errors import ModelError
from songrec.models.ranking.matrix import (
    arrow_rating_matrix,
    listener_weights,
    rating_matrix,
)
from songrec.models.ranking.puresvd import RankingModel
from songrec.models.ranking.retrain import refit_with_listener
from songrec.models.rating.foldin import fold_in, predict_all
from songrec.models.rating.retrain import retrain_listener
from songrec.models.similar import top_indices

log = logging.getLogger(__name__)

MODES = ("foldin", "retrain")
RANK_BY = ("taste", "rating")
EMPTY_FALLBACK = "no ratings given: showing the most popular songs"


@dataclass(frozen=True)
class Recommendation:
    """One recommended song, the rating the listener would likely give it, and why."""

    song_id: str
    artist_name: str
    track_name: str
    predicted_rating: float
    because: str | None
    because_song_id: str | None = None


@dataclass(frozen=True)
class RecommendationResult:
    """The list, how it was made, and a sentence when a fallback was used."""

    items: list[Recommendation]
    mode: str
    rank_by: str = "taste"
    fallback: str | None = None


def _check_rating(song_id: str, rating: object) -> int:
    if isinstance(rating, bool) or not isinstance(rating, numbers.Real):
        raise ModelError(f"rating of {song_id} must be a number {RATING_MIN}..{RATING_MAX}")
    if rating != int(rating) or not RATING_MIN <= rating <= RATING_MAX:
        raise ModelError(
            f"rating {rating} of {song_id} is outside {RATING_MIN}..{RATING_MAX} "
            "(whole numbers only)"
        )
    return int(rating)


def listener_ratings(
    model: TrainedModel, rated: Sequence[tuple[str, int]]
) -> tuple[np.ndarray, np.ndarray]:
    """(song rows, ratings) of a listener, validated; a song rated twice keeps the last."""
    last: dict[int, int] = {}
    for song_id, rating in rated:
        value = _check_rating(song_id, rating)
        index = model.index_of(song_id)
        last.pop(index, None)
        last[index] = value
    return np.fromiter(last.keys(), np.int64, len(last)), np.fromiter(last.values(), float)


def training_matrix(model: TrainedModel, ratings: pd.DataFrame | None = None) -> csr_matrix:
    """The kept ratings as the ranking model's matrix: `ratings`, else the model's own file
    (checksum re-verified)."""
    gamma = model.ranking.params.gamma
    if ratings is None:  # read as Arrow: a large model's page starts seconds sooner
        return arrow_rating_matrix(model.read_ratings_table(), model.song_ids, gamma)[0]
    return rating_matrix(ratings, pd.Index(model.song_ids), gamma)[0]


def check_request(n: int, mode: str, rank_by: str) -> None:
    """ModelError for an impossible request."""
    if mode not in MODES:
        raise ModelError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if rank_by not in RANK_BY:
        raise ModelError(f"unknown ranking {rank_by!r}; choose one of {', '.join(RANK_BY)}")
    if n < 1:
        raise ModelError(f"the number of songs to recommend must be at least 1, got {n}")


def _name(model: TrainedModel, index: int) -> str:
    return f"{model.artist_names[index]} – {model.track_names[index]}"


def _clip(score: float) -> float:
    return float(min(RATING_MAX, max(RATING_MIN, score)))


def popular(model: TrainedModel, n: int) -> RecommendationResult:
    """The most played songs, for a listener who rated nothing."""
    order = np.argsort(-model.songs["plays"].to_numpy(), kind="stable")[:n]
    items = [
        Recommendation(
            str(model.song_ids[i]),
            model.artist_names[i],
            model.track_names[i],
            _clip(model.global_mean + float(model.item_bias[i])),
            None,
        )
        for i in order
    ]
    return RecommendationResult(items, "popular", "popularity", EMPTY_FALLBACK)


def predicted_ratings(
    model: TrainedModel, idx: np.ndarray, values: np.ndarray, songs: np.ndarray | None = None
) -> np.ndarray:
    """The rating model's prediction (unclipped), the listener folded in: for every song, or
    for `songs` only (then indexed like the full array, other entries NaN)."""
    reg = float(model.params.get("reg_all", 0.02))
    bias, user = fold_in(model.item_factors, model.item_bias, model.global_mean, idx, values, reg)
    if songs is None:
        return predict_all(model.item_factors, model.item_bias, model.global_mean, bias, user)
    predicted = np.full(model.n_songs, np.nan)
    factors = model.item_factors[songs].astype(np.float64)
    predicted[songs] = model.global_mean + bias + model.item_bias[songs] + factors @ user
    return predicted


def taste_reasons(
    ranking: RankingModel, idx: np.ndarray, weights: np.ndarray, picks: np.ndarray
) -> np.ndarray:
    """For each pick, the liked rated song that added most to its ranking score."""
    added = ranking.contributions(idx, weights, picks)
    added[:, weights <= 0] = -np.inf  # a dislike never explains a pick
    return idx[np.argmax(added, axis=1)]


def rating_reasons(
    factors: np.ndarray, picks: np.ndarray, idx: np.ndarray, values: np.ndarray
) -> np.ndarray:
    """For rank_by=rating: the liked rated song closest to each pick (cosine of factors).

    Liked: rated 7 or more, or (for a listener who rates everything low) at least their mean.
    """
    liked = idx[values >= min(values.mean(), 7.0)]

    def unit(rows: np.ndarray) -> np.ndarray:
        vectors = factors[rows].astype(np.float64)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    return liked[np.argmax(unit(picks) @ unit(liked).T, axis=1)]


def _items(
    model: TrainedModel, picks: np.ndarray, predicted: np.ndarray, reasons: np.ndarray
) -> list[Recommendation]:
    return [
        Recommendation(
            str(model.song_ids[pick]),
            model.artist_names[pick],
            model.track_names[pick],
            _clip(predicted[pick]),
            f"because you rated {_name(model, int(reason))}",
            str(model.song_ids[reason]),
        )
        for pick, reason in zip(picks, reasons, strict=True)
    ]


def recommend(
    model: TrainedModel,
    rated: Sequence[tuple[str, int]],
    n: int = 10,
    mode: str = "foldin",
    progress: Callable[[int, int], None] | None = None,
    seed: int | None = None,
    rank_by: str = "taste",
    training: Callable[[], csr_matrix] | None = None,
    exclude: Collection[str] = (),
    disliked: Collection[str] = (),
) -> RecommendationResult:
    """The top `n` songs the listener has not rated, in the ranking model's order.

    `training` gives the exact retrain its training matrix (models.recommender passes one
    that keeps it between calls; by default it is read from the model folder); `progress`
    reports a Surprise refit. `exclude`: more song ids never to recommend (songs the
    listener already played but did not rate; unknown ids are ignored). `disliked`: rated
    songs the listener called "not for me": dislikes whatever their rating.
    """
    check_request(n, mode, rank_by)
    idx, values = listener_ratings(model, rated)
    if len(idx) == 0:
        return popular(model, n)
    said = np.isin(model.song_ids[idx], list(disliked)) if disliked else None
    # Rated songs, then the excluded ones: top_indices leaves all of them out.
    left_out = np.concatenate(
        [idx, np.array([model.index_of(s) for s in exclude if model.has_song(s)], dtype=idx.dtype)]
    )
    if rank_by == "rating":
        if mode == "foldin":
            scores, factors = predicted_ratings(model, idx, values), model.item_factors
        else:
            seed = seed if seed is not None else model.params.get("seed")
            scores, factors = retrain_listener(model, idx, values, seed, progress)
        # Ties go by popularity rank (the row order), so the list is stable.
        picks = top_indices(scores, left_out, n)
        reasons = rating_reasons(factors, picks, idx, values) if len(picks) else picks
        predicted = scores
    else:
        ranking = model.ranking
        if mode == "retrain":
            matrix = training() if training is not None else training_matrix(model)
            seed = seed if seed is not None else int(model.params.get("seed") or 0)
            ranking = refit_with_listener(matrix, ranking.params, idx, values, seed, said)
        weights = listener_weights(values, ranking.params.gamma, said)
        picks = top_indices(ranking.score(idx, weights), left_out, n)
        reasons = taste_reasons(ranking, idx, weights, picks) if len(picks) else picks
        predicted = predicted_ratings(model, idx, values, picks)
    if len(picks) == 0:
        return RecommendationResult([], mode, rank_by, "you rated every song the model knows")
    return RecommendationResult(_items(model, picks, predicted, reasons), mode, rank_by)
