"""Held-out splits: who is tested, what is hidden, and that the same seed gives the same split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from songrec.models.errors import ModelError
from songrec.models.evaluation.splits import chrono_holdout, random_holdout


def plays_frame(seed: int = 0) -> pd.DataFrame:
    """40 users with 3..30 songs each, distinct listening times."""
    rng = np.random.default_rng(seed)
    rows = []
    start = pd.Timestamp("2020-01-01", tz="UTC")
    for u in range(40):
        n = 3 if u < 5 else int(rng.integers(5, 31))
        for s in rng.choice(100, size=n, replace=False):
            when = start + pd.Timedelta(minutes=int(rng.integers(0, 10**6)))
            rows.append((f"user{u:02d}", f"song{s:03d}", int(rng.integers(1, 20)), when))
    return pd.DataFrame(rows, columns=["user_name", "song_id", "plays", "last_listened_at"])


def pairs(frame: pd.DataFrame) -> set[tuple[str, str]]:
    return set(zip(frame["user_name"], frame["song_id"], strict=True))


@pytest.mark.parametrize("split", [random_holdout, chrono_holdout])
def test_split_partitions_rows_and_hides_a_fifth_of_test_users(split) -> None:
    plays = plays_frame()
    holdout = split(plays, frac=0.2, seed=3, test_user_frac=0.5)
    assert pairs(holdout.train) | pairs(holdout.test) == pairs(plays)
    assert not pairs(holdout.train) & pairs(holdout.test)
    counts = plays.groupby("user_name").size()
    # Users with fewer than 5 ratings are never test users; half of the others are.
    assert set(holdout.test_users) <= set(counts.index[counts >= 5])
    assert len(holdout.test_users) == round(0.5 * (counts >= 5).sum())
    hidden = holdout.test.groupby("user_name").size()
    assert set(hidden.index) == set(holdout.test_users)
    for user, n_hidden in hidden.items():
        assert n_hidden == max(1, round(0.2 * counts[user]))
    # Everyone else stays fully in training, and the test users keep their visible rows.
    others = holdout.train_users_only()
    assert not set(others["user_name"]) & set(holdout.test_users)
    assert len(others) + len(holdout.visible()) == len(holdout.train)
    assert set(holdout.visible()["user_name"]) == set(holdout.test_users)


def test_random_holdout_depends_only_on_the_seed() -> None:
    plays = plays_frame()
    first = random_holdout(plays, seed=1)
    shuffled = plays.sample(frac=1, random_state=9)
    again = random_holdout(shuffled, seed=1)
    assert pairs(first.test) == pairs(again.test)
    assert pairs(random_holdout(plays, seed=2).test) != pairs(first.test)


def test_chrono_holdout_hides_each_users_latest_songs() -> None:
    plays = plays_frame()
    holdout = chrono_holdout(plays, seed=0)
    for user in holdout.test_users:
        seen = holdout.train[holdout.train["user_name"] == user]["last_listened_at"]
        hidden = holdout.test[holdout.test["user_name"] == user]["last_listened_at"]
        assert hidden.min() >= seen.max()


def test_bad_inputs_are_clear_errors() -> None:
    plays = plays_frame()
    with pytest.raises(ModelError, match="last_listened_at"):
        chrono_holdout(plays.drop(columns="last_listened_at"))
    with pytest.raises(ModelError, match="missing values"):
        chrono_holdout(plays.assign(last_listened_at=pd.NaT))
    with pytest.raises(ModelError, match="fraction"):
        random_holdout(plays, frac=1.5)
    with pytest.raises(ModelError, match="no user has"):
        random_holdout(plays[plays["user_name"] < "user05"])
