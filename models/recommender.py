"""One face for every caller: the CLI, the page and the benchmarks ask a `Recommender`.

It wraps a trained model (both the ranking model and the rating model) and answers the
verbs a caller remembers: `fit` and `load` make one, `recommend` ranks songs for a new
listener, `fold_in` places a listener in the ranking space, and
`similar_songs` / `similar_artists` use the same ranking vectors. The exact retrain keeps
the training matrix after its first use, so later retrains skip reading the ratings.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.sparse import csc_matrix, csr_matrix

from songrec.models.artifact import TrainedModel, load_model
from songrec.models.ranking.matrix import listener_weights
from songrec.models.rating.foldin import one_blas_thread
from songrec.models.recommend import (
    RecommendationResult,
    listener_ratings,
    recommend,
    training_matrix,
)
from songrec.models.similar import SimilarArtist, SimilarItem, similar_artists, similar_songs
from songrec.models.train import TrainResult, train


class Recommender:
    """Recommendations, fold-in and similar songs/artists from one trained model."""

    def __init__(self, model: TrainedModel, ratings: pd.DataFrame | None = None) -> None:
        """`ratings`: the kept training ratings of a model not saved yet (a saved model
        reads its own, checksum verified)."""
        self.model = model
        self._ratings = ratings
        self._matrix: csr_matrix | None = None
        self._listeners_of: csc_matrix | None = None
        self._lock = threading.Lock()

    @classmethod
    def load(cls, model_dir: Path) -> Recommender:
        """The model folder, checksums verified and contents validated."""
        return cls(load_model(Path(model_dir)))

    @classmethod
    def fit(cls, data_dir: Path, **options) -> tuple[Recommender, TrainResult]:
        """Train on a ratings folder (options as models.train.train); nothing is written."""
        result = train(Path(data_dir), **options)
        return cls(result.model, result.ratings), result

    def training_matrix(self) -> csr_matrix:
        """The kept ratings as the ranking model's matrix (read once, then kept)."""
        with self._lock:
            if self._matrix is None:
                self._matrix = training_matrix(self.model, self._ratings)
                self._listeners_of = self._matrix.tocsc()  # song -> its listeners
            return self._matrix

    def co_listeners(self, pairs: Sequence[tuple[str, str]]) -> list[int]:
        """For each (song, other song): how many training listeners played both."""
        self.training_matrix()
        columns = self._listeners_of

        def listeners(song: str) -> np.ndarray:
            index = self.model.index_of(song)
            return columns.indices[columns.indptr[index] : columns.indptr[index + 1]]

        masks: dict[str, np.ndarray] = {}
        counts = []
        for song, other in pairs:
            if song not in masks:  # a few rated songs explain all ten picks
                masks[song] = np.zeros(columns.shape[0], dtype=bool)
                masks[song][listeners(song)] = True
            counts.append(int(masks[song][listeners(other)].sum()))
        return counts

    def explain(self, result: RecommendationResult) -> RecommendationResult:
        """Adds to each reason how many listeners of the rated song also play the pick."""
        explained = [item for item in result.items if item.because_song_id is not None]
        shared = iter(self.co_listeners([(i.because_song_id, i.song_id) for i in explained]))
        items = []
        for item in result.items:
            if item.because_song_id is not None:
                count = next(shared)
                plays = "listeners who play it also play"
                if count == 1:
                    plays = "listener who plays it also plays"
                item = replace(item, because=f"{item.because} ({count} {plays} this)")
            items.append(item)
        return replace(result, items=items)

    def fold_in(self, rated: Sequence[tuple[str, int]]) -> np.ndarray:
        """The listener's position in the ranking space (k numbers)."""
        idx, values = listener_ratings(self.model, rated)
        ranking = self.model.ranking
        return ranking.embed(idx, listener_weights(values, ranking.params.gamma))

    def recommend(
        self,
        rated: Sequence[tuple[str, int]],
        n: int = 10,
        mode: str = "foldin",
        rank_by: str = "taste",
        progress: Callable[[int, int], None] | None = None,
        seed: int | None = None,
        explain: bool = True,
        exclude: Collection[str] = (),
        disliked: Collection[str] = (),
    ) -> RecommendationResult:
        """The top `n` unrated songs, none of `exclude`; `disliked` rated songs count as
        dislikes whatever their rating (see models.recommend.recommend).

        With `explain`, each reason also counts the training listeners who play both the
        rated song and the pick (the training ratings are read once, on first use).
        """
        with one_blas_thread():
            result = recommend(
                self.model,
                rated,
                n,
                mode,
                progress,
                seed,
                rank_by,
                self.training_matrix,
                exclude,
                disliked,
            )
        return self.explain(result) if explain else result

    def similar_songs(self, song_id: str, n: int = 10) -> list[SimilarItem]:
        """The `n` songs closest to `song_id` in the ranking space."""
        return similar_songs(self.model, song_id, n)

    def similar_artists(self, artist_name: str, n: int = 10) -> list[SimilarArtist]:
        """The `n` artists closest to `artist_name` in the ranking space."""
        return similar_artists(self.model, artist_name, n)
