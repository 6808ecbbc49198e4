"""The compared models on planted taste groups: faithful to Surprise, aligned, never cheating."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from songrec.models.evaluation import baselines as models
from songrec.models.evaluation.evaluate import auc_cells, top_from_scores
from songrec.models.evaluation.splits import random_holdout

PARAMS = {"n_factors": 8, "n_epochs": 30, "lr_all": 0.01, "reg_all": 0.05}


@pytest.fixture(scope="module")
def split(taste):
    ratings, _, group_of = taste
    holdout = random_holdout(ratings, frac=0.2, seed=4, test_user_frac=0.25)
    targets = models.Targets(
        users=pd.Index(holdout.test_users),
        catalog=pd.Index(np.sort(holdout.train["song_id"].unique())),
        visible=holdout.visible(),
        hidden=holdout.test,
    )
    return holdout, targets, group_of


def test_ease_is_a_ridge_regression_of_each_song_on_the_others() -> None:
    # EASE's definition, solved column by column: song j's weights regress its column on
    # every other song's column with an L2 penalty lam (and no weight on itself).
    rng = np.random.default_rng(3)
    plays = rng.random((30, 8)) < 0.35
    users = [f"u{u}" for u in range(30)]
    songs = [f"s{s}" for s in range(8)]
    rows, cols = np.nonzero(plays)
    others = pd.DataFrame({"user_name": np.array(users)[rows], "song_id": np.array(songs)[cols]})
    probe = pd.DataFrame({"user_name": ["new"] * 8, "song_id": songs})
    targets = models.Targets(pd.Index(["new"]), pd.Index(songs), probe.iloc[[0]], probe.iloc[1:])
    lam = 2.0
    scored = models.ease(targets, others, lam)
    x = plays.astype(float)
    expected = np.zeros(8)
    for j in range(8):
        rest = [c for c in range(8) if c != j]
        a = x[:, rest]
        weights = np.linalg.solve(a.T @ a + lam * np.eye(7), a.T @ x[:, j])
        expected[j] = weights[rest.index(0)] if j != 0 else 0.0  # the new listener has song 0
    np.testing.assert_allclose(scored.scores[0], expected, atol=1e-5)


def test_item_knn_sums_cosine_similarities() -> None:
    others = pd.DataFrame(
        {"user_name": ["a", "a", "b", "b", "c"], "song_id": ["s1", "s2", "s1", "s3", "s2"]}
    )
    probe = pd.DataFrame({"user_name": ["new"], "song_id": ["s1"]})
    targets = models.Targets(pd.Index(["new"]), pd.Index(["s1", "s2", "s3"]), probe, probe.iloc[:0])
    scores = models.item_knn(targets, others).scores[0]
    # s1 {a, b}, s2 {a, c}, s3 {b}: cos(s1, s2) = 1/2, cos(s1, s3) = 1/sqrt(2)
    np.testing.assert_allclose(scores, [0.0, 0.5, 1 / np.sqrt(2)], atol=1e-6)


def test_ranker_follows_each_test_users_taste(split, taste) -> None:
    holdout, targets, group_of = split
    _, songs, _ = taste
    scored = models.ranker(targets, holdout.train_users_only(), songs, {"k": [4, 8]}, seed=2)
    top = top_from_scores(targets, scored.scores, k=5)
    group = top["user_name"].str.split("_").str[1].astype(int)
    own = pd.Series([group_of[s] for s in top["song_id"]]) == group
    assert own.groupby(group).mean().min() >= 0.85


def test_foldin_follows_each_test_users_taste(split) -> None:
    holdout, targets, group_of = split
    others = holdout.train_users_only()
    scored = models.svd_foldin(targets, others, holdout.visible(), PARAMS, seed=2)
    top = top_from_scores(targets, scored.scores, k=5)
    # Group 0 is everyone's popular list (mean + item bias would give only group 0's songs);
    # the test users of groups 1 and 2 must get their own group's songs.
    group = top["user_name"].str.split("_").str[1].astype(int)
    own = pd.Series([group_of[s] for s in top["song_id"]]) == group
    share = own.groupby(group).mean()
    assert share.loc[[1, 2]].min() >= 0.85, share
    assert scored.predictions["prediction"].between(1, 10).all()


def test_most_popular_is_one_list_for_everyone(split) -> None:
    holdout, targets, _ = split
    scored = models.most_popular(targets, holdout.train)
    counts = holdout.train.groupby("song_id").size()
    assert (scored.scores == counts.reindex(targets.catalog).to_numpy()).all()
    assert scored.predictions is None


def test_top_lists_skip_visible_songs_and_break_ties_by_id() -> None:
    targets = models.Targets(
        users=pd.Index(["a", "b"]),
        catalog=pd.Index(["s1", "s2", "s3", "s4"]),
        visible=pd.DataFrame({"user_name": ["a", "b"], "song_id": ["s1", "s4"]}),
        hidden=pd.DataFrame({"user_name": ["a"], "song_id": ["s3"]}),
    )
    scores = np.array([[9.0, 1.0, 5.0, 5.0], [2.0, 2.0, -np.inf, 9.0]])
    top = top_from_scores(targets, scores, k=3)
    assert top.groupby("user_name")["song_id"].agg(list).to_dict() == {
        "a": ["s3", "s4", "s2"],
        "b": ["s1", "s2"],  # s4 is visible, s3 cannot be ranked
    }
    rows, cols = auc_cells(targets, negatives=1, rng=np.random.default_rng(0))
    cells = set(zip(targets.users[rows], targets.catalog[cols], strict=True))
    assert ("a", "s3") in cells  # the hidden song
    assert not {("a", "s1"), ("b", "s4")} & cells  # visible songs are never negatives
    assert sum(1 for u, _ in cells if u == "b") == 1  # one sampled negative for b
