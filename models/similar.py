"""Item-to-item answers from the ranking model: similar songs, similar artists, and lookups.

Similarity is the cosine of the ranking model's song factors (models.ranking: the SVD
recommendations are ranked with); an artist's vector is the mean of its songs' unit vectors,
weighted by their plays, so an artist is placed where its listened songs are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from songrec.models.artifact import TrainedModel
from songrec.models.errors import ModelError
from songrec.models.search import SEARCH_COLUMNS, fold


@dataclass(frozen=True)
class SimilarItem:
    """A song close to the query song, with its cosine similarity."""

    song_id: str
    artist_name: str
    track_name: str
    similarity: float


@dataclass(frozen=True)
class SimilarArtist:
    """An artist close to the query artist, with its cosine similarity."""

    artist_name: str
    similarity: float
    songs: int


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def top_indices(similarity: np.ndarray, exclude: np.ndarray, n: int) -> np.ndarray:
    """Indices of the `n` highest scores, `exclude` left out; ties keep the row order."""
    scores = np.array(similarity, dtype=np.float64)
    scores[exclude] = -np.inf
    count = min(n, int(np.isfinite(scores).sum()))
    if count <= 0:
        return np.array([], dtype=np.int64)
    top = np.argpartition(-scores, count - 1)[:count]
    return top[np.lexsort((top, -scores[top]))]


def similar_songs(model: TrainedModel, song_id: str, n: int = 10) -> list[SimilarItem]:
    """The `n` songs whose factors are closest (cosine) to `song_id`'s."""
    if n < 1:
        raise ModelError(f"the number of songs must be at least 1, got {n}")
    index = model.index_of(song_id)
    unit = _unit(model.ranking.song_factors)
    similarity = unit @ unit[index]
    top = top_indices(similarity, np.array([index]), n)
    songs = model.songs
    return [
        SimilarItem(
            str(model.song_ids[i]),
            str(songs["artist_name"].iat[i]),
            str(songs["track_name"].iat[i]),
            float(similarity[i]),
        )
        for i in top
    ]


def artists(model: TrainedModel) -> list[str]:
    """Every artist of the model by name, as a listener looks one up (case and accents aside)."""
    names = model.songs["artist_name"].astype(str).unique().tolist()
    return sorted(names, key=lambda name: (fold(name), name))


def find_artist(model: TrainedModel, artist_name: str) -> str:
    """The model's spelling of `artist_name` (exact, else case-insensitive); ModelError if none."""
    names = model.songs["artist_name"]
    if (names == artist_name).any():
        return artist_name
    folded = names[names.str.casefold() == artist_name.strip().casefold()]
    if folded.empty:
        raise ModelError(
            f"unknown artist {artist_name!r}: not among the model's songs "
            "(find names with `songrec songs --search`)"
        )
    return str(folded.iat[0])


def songs_by_artist(model: TrainedModel, artist_name: str) -> pd.DataFrame:
    """The artist's songs in the model, most played first."""
    name = find_artist(model, artist_name)
    rows = model.songs[model.songs["artist_name"] == name]
    return rows[SEARCH_COLUMNS].sort_values("plays", ascending=False, kind="stable")


def similar_artists(model: TrainedModel, artist_name: str, n: int = 10) -> list[SimilarArtist]:
    """The `n` artists whose songs sit closest (cosine of play-weighted mean vectors)."""
    if n < 1:
        raise ModelError(f"the number of artists must be at least 1, got {n}")
    name = find_artist(model, artist_name)
    codes, names = pd.factorize(model.songs["artist_name"])
    weights = model.songs["plays"].to_numpy(dtype=np.float64) + 1.0
    vectors = model.ranking.song_factors.astype(np.float64)
    sums = np.zeros((len(names), vectors.shape[1]))
    np.add.at(sums, codes, _unit(vectors) * weights[:, None])
    vectors = _unit(sums)
    query = int(np.flatnonzero(names == name)[0])
    similarity = vectors @ vectors[query]
    counts = np.bincount(codes, minlength=len(names))
    top = top_indices(similarity, np.array([query]), n)
    return [SimilarArtist(str(names[i]), float(similarity[i]), int(counts[i])) for i in top]
