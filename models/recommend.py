"""Top songs for a new listener from a few (song, rating) pairs: fold-in or full retrain.

One function serves the CLI and the app. `foldin` (default) solves the listener's bias
and factors against the model's fixed item factors (milliseconds); `retrain` refits
Surprise SVD with the listener added (the reference's behaviour; seconds). Neither
changes the model, so one loaded model serves every listener.
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from models.artifact import TrainedModel
from models.data import RATING_MAX, RATING_MIN
from models.errors import ModelError
from models.rating.foldin import fold_in, predict_all
from models.rating.retrain import retrain_listener
from models.similar import top_indices

log = logging.getLogger(__name__)

MODES = ("foldin", "retrain")
EMPTY_FALLBACK = "no ratings given: showing the most popular songs"


@dataclass(frozen=True)
class Recommendation:
    """One recommended song, its predicted rating and why."""

    song_id: str
    artist_name: str
    track_name: str
    score: float
    because: str | None


@dataclass(frozen=True)
class RecommendationResult:
    """The list, the mode that made it, and a sentence when a fallback was used."""

    items: list[Recommendation]
    mode: str
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


def _names(model: TrainedModel, index: int) -> tuple[str, str]:
    songs = model.songs
    return str(songs["artist_name"].iat[index]), str(songs["track_name"].iat[index])


def _clip(score: float) -> float:
    return float(min(RATING_MAX, max(RATING_MIN, score)))


def _popular(model: TrainedModel, n: int) -> RecommendationResult:
    order = np.argsort(-model.songs["plays"].to_numpy(), kind="stable")[:n]
    items = [
        Recommendation(
            str(model.song_ids[i]),
            *_names(model, i),
            _clip(model.global_mean + float(model.item_bias[i])),
            None,
        )
        for i in order
    ]
    return RecommendationResult(items, "popular", EMPTY_FALLBACK)


def _reasons(
    factors: np.ndarray, picks: np.ndarray, idx: np.ndarray, values: np.ndarray
) -> np.ndarray:
    """For each pick, the liked rated song closest to it by cosine of item factors.

    Liked: rated 7 or more, or (for a listener who rates everything low) at least their mean.
    """
    liked = idx[values >= min(values.mean(), 7.0)]

    def unit(rows: np.ndarray) -> np.ndarray:
        vectors = factors[rows].astype(np.float64)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    similarity = unit(picks) @ unit(liked).T
    return liked[np.argmax(similarity, axis=1)]


def recommend(
    model: TrainedModel,
    rated: Sequence[tuple[str, int]],
    n: int = 10,
    mode: str = "foldin",
    progress: Callable[[int, int], None] | None = None,
    seed: int | None = None,
) -> RecommendationResult:
    """The top `n` songs the listener has not rated, best predicted rating first."""
    if mode not in MODES:
        raise ModelError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if n < 1:
        raise ModelError(f"the number of songs to recommend must be at least 1, got {n}")
    idx, values = listener_ratings(model, rated)
    if len(idx) == 0:
        return _popular(model, n)
    if mode == "foldin":
        reg = float(model.params.get("reg_all", 0.02))
        bias, user = fold_in(
            model.item_factors, model.item_bias, model.global_mean, idx, values, reg
        )
        scores = predict_all(model.item_factors, model.item_bias, model.global_mean, bias, user)
        factors = model.item_factors
    else:
        seed = seed if seed is not None else model.params.get("seed")
        scores, factors = retrain_listener(model, idx, values, seed, progress)
    # Ties go by popularity rank (the row order), so the list is stable.
    top = top_indices(scores, idx, n)
    if len(top) == 0:
        return RecommendationResult([], mode, "you rated every song the model knows")
    reasons = _reasons(factors, top, idx, values)
    items = []
    for pick, reason in zip(top, reasons, strict=True):
        artist, track = _names(model, int(reason))
        items.append(
            Recommendation(
                str(model.song_ids[pick]),
                *_names(model, int(pick)),
                _clip(scores[pick]),
                f"because you rated {artist} – {track}",
            )
        )
    return RecommendationResult(items, mode)
