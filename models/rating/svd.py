"""Surprise SVD fitted with a report after every epoch.

Surprise's SVD has no per-epoch callback, and it restarts from random factors and zero
biases on each `fit`, so fitting one epoch at a time would not give the same model. Its
SGD loop does, however, call `trainset.all_ratings()` once per epoch; the trainset's
iterator is given a tail that reports the finished epoch. The model is exactly the one a
plain `SVD(...).fit(trainset)` gives, at the cost of one extra Python call per epoch.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterator
from itertools import chain

from surprise import SVD, Trainset

log = logging.getLogger(__name__)

# Every hyper-parameter of Surprise's SVD (read from its signature, so a grid that tunes
# e.g. init_mean or reg_bu gets the same setting in the holdout and the final fit).
SVD_PARAMS = tuple(
    name
    for name in inspect.signature(SVD.__init__).parameters
    if name not in ("self", "random_state", "verbose")
)
SVD_DEFAULTS = {"n_factors": 100, "n_epochs": 20, "lr_all": 0.005, "reg_all": 0.02}


def svd_params(params: dict) -> dict:
    """Surprise's defaults overlaid with the given hyper-parameters (only the SVD ones)."""
    return {**SVD_DEFAULTS, **{k: v for k, v in params.items() if k in SVD_PARAMS}}


def fit_svd(
    trainset: Trainset,
    params: dict,
    seed: int | None,
    progress: Callable[[int, int], None] | None = None,
) -> SVD:
    """Fit Surprise SVD on `trainset`; `progress(epoch, n_epochs)` after each epoch."""
    algo = SVD(**svd_params(params), random_state=seed)
    n_epochs = algo.n_epochs
    # Compute the cached global mean first: it iterates all_ratings() too.
    _ = trainset.global_mean
    if progress is None:
        return algo.fit(trainset)
    epoch = 0
    plain = trainset.all_ratings

    def _tail() -> Iterator:
        nonlocal epoch
        epoch += 1
        progress(epoch, n_epochs)
        return
        yield  # a generator that yields nothing, run when an epoch's ratings are exhausted

    def _with_report() -> Iterator:
        return chain(plain(), _tail())

    trainset.all_ratings = _with_report  # type: ignore[method-assign]
    try:
        algo.fit(trainset)
    finally:
        del trainset.all_ratings
    log.info("SVD fitted: %d epochs on %d ratings", epoch, trainset.n_ratings)
    return algo
