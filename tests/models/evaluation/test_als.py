"""ALS on planted taste groups: it must recommend the group's songs, never played ones."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from songrec.models.errors import ModelError
from songrec.models.evaluation.als import fit_als, play_matrix, recommend_als, score_als


def taste_plays(seed: int = 0) -> pd.DataFrame:
    """Two groups of 30 users; group g plays 8 of its own 12 songs (g0_*, g1_*)."""
    rng = np.random.default_rng(seed)
    rows = []
    for group in (0, 1):
        for u in range(30):
            for s in rng.choice(12, size=8, replace=False):
                rows.append((f"u{group}_{u:02d}", f"g{group}_{s:02d}", int(rng.integers(1, 50))))
    return pd.DataFrame(rows, columns=["user_name", "song_id", "plays"])


def test_play_matrix_keeps_counts() -> None:
    plays = pd.DataFrame(
        {"user_name": ["b", "a", "a"], "song_id": ["y", "x", "y"], "plays": [3, 1, 7]}
    )
    matrix, users, items = play_matrix(plays)
    assert users.tolist() == ["a", "b"] and items.tolist() == ["x", "y"]
    assert matrix.toarray().tolist() == [[1, 7], [0, 3]]


def test_als_recommends_the_users_taste_and_skips_played() -> None:
    plays = taste_plays()
    # Few factors for two planted groups: more would let ALS fit each user's own songs.
    model = fit_als(plays, factors=2, iterations=15, seed=1)
    users = model.users.tolist()
    recs = recommend_als(model, users, n=4)
    assert recs.groupby("user_name").size().to_dict() == {u: 4 for u in users}
    played = set(zip(plays["user_name"], plays["song_id"], strict=True))
    assert not any(
        (u, s) in played for u, s in zip(recs["user_name"], recs["song_id"], strict=True)
    )
    # Each user has exactly 4 unplayed songs of their own group: all of them come first.
    same_group = recs["song_id"].str[1] == recs["user_name"].str[1]
    assert same_group.all(), recs[~same_group]
    scores = score_als(model, users[:3])
    assert scores.shape == (3, len(model.items))
    assert np.isfinite(scores).all()


def test_als_is_deterministic_with_a_seed() -> None:
    plays = taste_plays()
    first = fit_als(plays, factors=4, iterations=3, seed=7)
    second = fit_als(plays, factors=4, iterations=3, seed=7)
    np.testing.assert_allclose(first.item_factors, second.item_factors, rtol=1e-5)


def test_unknown_user_and_empty_plays_are_errors() -> None:
    model = fit_als(taste_plays(), factors=4, iterations=2, seed=0)
    with pytest.raises(ModelError, match="nobody"):
        recommend_als(model, ["nobody"])
    with pytest.raises(ModelError, match="no plays"):
        fit_als(taste_plays().iloc[:0])
