"""The ranking model: a truncated SVD of the whole listener x song rating matrix.

For top-N lists, Cremonesi, Koren & Turrin (RecSys 2010) take the SVD of the rating matrix
with unplayed songs as 0 ("PureSVD") and score a listener's row r with r V Vᵀ: the model
sees which songs listeners do *not* play, which a model fitted on played songs never does.
Three refinements, each chosen by held-out validation (models.ranking.validate):

- entries are ratings raised to `gamma` (0: played or not; 1: the rating itself);
- each song's column is divided by (its listeners)^alpha before the SVD, and scores are
  multiplied by (its listeners)^beta after it (popularity normalisation, as in EigenRec:
  without it the hits dominate the top singular vectors);
- the k singular directions are shrunk by s²/(s² + lambda), the ridge-regression weights:
  r V diag(s²/(s²+λ)) Vᵀ is the low-rank form of the ridge item-item model, which is what
  brings PureSVD level with EASE while storing k numbers per song instead of a song x song
  matrix. lambda = shrink x s₁² / 100.

Stored: `vectors` = V diag(√w) (songs x k, float16 values: half the bytes, and orthonormal
vectors scaled by weights <= 1 lose nothing that matters to a ranking), and each song's
listener count.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.linalg import svds

from songrec.models.errors import ModelError

# Below this many cells a dense SVD is faster and exact; ARPACK also needs k < min(shape).
DENSE_CELLS = 4_000_000


@dataclass(frozen=True)
class RankingParams:
    """Hyper-parameters of the ranking model (see the module docstring)."""

    k: int = 100
    gamma: float = 0.0
    alpha: float = 0.2
    beta: float = 0.3
    shrink: float = 2.0

    def as_dict(self) -> dict:
        """Plain dict (for params.json and the validation curve)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> RankingParams:
        """Parse params.json's `ranking` entry; ModelError on a missing or bad value."""
        try:
            params = cls(
                k=int(values["k"]),
                gamma=float(values["gamma"]),
                alpha=float(values["alpha"]),
                beta=float(values["beta"]),
                shrink=float(values["shrink"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"bad ranking parameters {values!r}: {exc}") from None
        if params.k < 1 or not all(
            np.isfinite([params.gamma, params.alpha, params.beta, params.shrink])
        ):
            raise ModelError(f"bad ranking parameters {values!r}")
        return params


@dataclass(frozen=True, eq=False)
class RankingModel:
    """Song vectors V diag(√w) and listener counts: everything a listener is scored with."""

    vectors: np.ndarray  # songs x k, float32
    listeners: np.ndarray  # songs, float32: training listeners of each song
    params: RankingParams
    singular_values: np.ndarray  # k, descending

    def __post_init__(self) -> None:
        n = self.vectors.shape[0]
        if self.vectors.ndim != 2 or self.listeners.shape != (n,):
            raise ModelError(
                f"inconsistent ranking model: vectors {self.vectors.shape}, "
                f"listener counts {self.listeners.shape}"
            )
        counts = np.maximum(self.listeners.astype(np.float64), 1.0)
        object.__setattr__(self, "in_scale", (counts**-self.params.alpha).astype(np.float32))
        object.__setattr__(self, "out_scale", (counts**self.params.beta).astype(np.float32))
        for array in (self.vectors, self.listeners, self.in_scale, self.out_scale):
            array.flags.writeable = False

    @property
    def song_factors(self) -> np.ndarray:
        """Songs in the SVD's own coordinates (V S): the space similar songs are found in.

        Directions weigh by their singular value, so the strong taste directions decide
        similarity and the weak, noisy ones barely count (cosine of V alone let noise pick
        neighbours from other taste groups on planted data: 3 of 10 at worst, 10 with V S).
        """
        return self.vectors * self.singular_values.astype(np.float32)[None, :]

    @property
    def rank(self) -> int:
        """Number of singular directions kept."""
        return int(self.vectors.shape[1])

    def embed(self, idx: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """The listener in the k-dimensional song space (rated songs, signed weights)."""
        idx = np.asarray(idx, dtype=np.int64)
        scaled = np.asarray(weights, dtype=np.float32) * self.in_scale[idx]
        return scaled @ self.vectors[idx]

    def score(self, idx: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Ranking score of every song for one listener (higher: recommend first)."""
        return (self.vectors @ self.embed(idx, weights)) * self.out_scale

    def score_many(self, rows: csr_matrix) -> np.ndarray:
        """Scores for many listeners at once: `rows` is listeners x songs of weights."""
        scaled = rows.multiply(self.in_scale[None, :]).tocsr().astype(np.float32)
        return np.asarray(scaled @ self.vectors) @ self.vectors.T * self.out_scale[None, :]

    def contributions(self, idx: np.ndarray, weights: np.ndarray, picks: np.ndarray) -> np.ndarray:
        """picks x rated: how much each rated song added to each pick's score."""
        idx = np.asarray(idx, dtype=np.int64)
        left = self.vectors[idx] * (np.asarray(weights) * self.in_scale[idx])[:, None]
        right = self.vectors[picks] * self.out_scale[picks, None]
        return right @ left.T


def truncated_svd(matrix: csr_matrix, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(singular values descending, right singular vectors as columns) of rank min(k, ...)."""
    n_rows, n_cols = matrix.shape
    k = max(1, min(k, min(n_rows, n_cols) - 1 if min(n_rows, n_cols) > 1 else 1))
    if n_rows * n_cols <= DENSE_CELLS or k >= min(n_rows, n_cols) - 1:
        _, values, vt = np.linalg.svd(matrix.toarray(), full_matrices=False)
        return values[:k], vt[:k].T
    # A fixed start vector makes ARPACK deterministic for a given matrix.
    v0 = np.random.default_rng(seed).uniform(-1, 1, min(n_rows, n_cols))
    _, values, vt = svds(matrix.astype(np.float64), k=k, v0=v0)
    order = np.argsort(-values)
    return values[order], vt[order].T


def shrink_weights(values: np.ndarray, shrink: float) -> np.ndarray:
    """Ridge weights s²/(s² + λ) with λ = shrink x s₁² / 100 (1 everywhere when shrink = 0)."""
    squared = np.asarray(values, dtype=np.float64) ** 2
    lam = shrink * (squared[0] if len(squared) else 0.0) / 100.0
    return squared / np.maximum(squared + lam, 1e-300)


def scaled_matrix(matrix: csr_matrix, listeners: np.ndarray, alpha: float) -> csr_matrix:
    """Each song's column divided by (its listeners)^alpha."""
    scale = np.maximum(np.asarray(listeners, dtype=np.float64), 1.0) ** -alpha
    return matrix.multiply(scale[None, :]).tocsr()


def fit_ranking(
    matrix: csr_matrix, params: RankingParams, seed: int = 0, listeners: np.ndarray | None = None
) -> RankingModel:
    """Fit the ranking model on a listeners x songs matrix whose entries are rating^gamma.

    `listeners` (each song's listener count) defaults to the matrix's own column counts.
    """
    if matrix.nnz == 0:
        raise ModelError("no ratings to fit the ranking model on")
    if listeners is None:
        listeners = np.diff(matrix.tocsc().indptr).astype(np.float32)
    values, vectors = truncated_svd(scaled_matrix(matrix, listeners, params.alpha), params.k, seed)
    weighted = vectors * np.sqrt(shrink_weights(values, params.shrink))[None, :]
    # Rounded to float16 here, not only on disk, so a fitted and a loaded model rank alike.
    return RankingModel(
        vectors=np.ascontiguousarray(weighted.astype(np.float16), dtype=np.float32),
        listeners=np.asarray(listeners, dtype=np.float32),
        params=params,
        singular_values=values.astype(np.float64),
    )
