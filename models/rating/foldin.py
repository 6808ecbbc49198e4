"""A new listener's bias and factors by regularized least squares against fixed item factors.

Surprise's SVD minimizes, by SGD, the sum over ratings of
    (r_ui - mu - b_u - b_i - q_i . p_u)^2 + reg * (b_u^2 + b_i^2 + |q_i|^2 + |p_u|^2),
the penalty counted once per rating. With the item side fixed, the listener's part is a
ridge regression of y_i = r_ui - mu - b_i on [1, q_i] whose penalty is reg * n_ratings on
p_u: that is solved exactly here, in one small (k+1) x (k+1) system.

The bias gets a stronger penalty than the factors (`BIAS_REG_FACTOR`): with the same
penalty, a listener who rates only favourites, all 10, is explained almost entirely by a
large bias (one number that fits them all), the factors stay near zero and the ranking is
mu + b_i, the popular list everyone gets. A costly bias makes the factors carry the signal,
so the list follows the listener's taste.
"""

from __future__ import annotations

import functools

import numpy as np
from threadpoolctl import ThreadpoolController

# Penalty on the listener's bias, as a multiple of the factors' penalty (see above).
BIAS_REG_FACTOR = 25.0


@functools.cache
def _controller() -> ThreadpoolController:
    return ThreadpoolController()


def one_blas_thread():
    """Context that runs BLAS on one thread: these problems are tiny, and a multi-threaded
    BLAS on a busy machine spends its time waking threads (0.4 s instead of 2 ms)."""
    return _controller().limit(limits=1, user_api="blas")


def fold_in(
    item_factors: np.ndarray,
    item_bias: np.ndarray,
    global_mean: float,
    item_idx: np.ndarray,
    ratings: np.ndarray,
    reg: float,
    bias_reg: float | None = None,
) -> tuple[float, np.ndarray]:
    """(user_bias, user_factors) minimizing the SVD objective with the items held fixed.

    `reg` is the model's reg_all; `bias_reg` (default reg * BIAS_REG_FACTOR) penalizes the
    bias. Both are scaled by the number of ratings, as SGD applies them once per rating.
    The item arrays are only read.
    """
    item_idx = np.asarray(item_idx, dtype=np.int64)
    values = np.asarray(ratings, dtype=np.float64)
    k = item_factors.shape[1]
    n = len(item_idx)
    if n == 0:
        return 0.0, np.zeros(k, dtype=np.float64)
    if bias_reg is None:
        bias_reg = reg * BIAS_REG_FACTOR
    q = item_factors[item_idx].astype(np.float64)
    y = values - global_mean - item_bias[item_idx].astype(np.float64)
    design = np.empty((n, k + 1))
    design[:, 0] = 1.0
    design[:, 1:] = q
    penalty = np.full(k + 1, reg * n)
    penalty[0] = bias_reg * n
    with one_blas_thread():
        if n <= k and penalty.min() > 0:
            # Fewer ratings than unknowns (the usual case): the same solution through the
            # n x n system of the Woodbury identity, (DᵀD + P)⁻¹Dᵀy = P⁻¹Dᵀ(DP⁻¹Dᵀ + I)⁻¹y.
            scaled = design / penalty[None, :]
            inner = scaled @ design.T
            inner[np.diag_indices_from(inner)] += 1.0
            solution = scaled.T @ np.linalg.solve(inner, y)
        else:
            gram = design.T @ design
            gram[np.diag_indices_from(gram)] += penalty
            solution = np.linalg.solve(gram, design.T @ y)
    return float(solution[0]), solution[1:]


def predict_all(
    item_factors: np.ndarray,
    item_bias: np.ndarray,
    global_mean: float,
    user_bias: float,
    user_factors: np.ndarray,
) -> np.ndarray:
    """Unclipped predicted rating of every item for one listener."""
    with one_blas_thread():
        dots = item_factors @ user_factors.astype(np.float32)
    return global_mean + user_bias + item_bias + dots
