"""Metrics on tiny cases checked by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from songrec.models.evaluation import metrics


def frame(rows: list[tuple], value: str) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user_name", "song_id", value])


# a likes x and y; b likes q. Scores: a ranks x, z, w, y; b ranks r, q.
TRUE = frame([("a", "x", 7), ("a", "y", 3), ("b", "q", 5)], "rating")
PRED = frame(
    [("a", "x", 0.9), ("a", "z", 0.8), ("a", "w", 0.5), ("a", "y", 0.1)]
    + [("b", "r", 0.3), ("b", "q", 0.2)]
    # c is only predicted, d is only in the truth: neither counts (users in both frames).
    + [("c", "x", 1.0)],
    "prediction",
)
TRUTH_WITH_EXTRA_USER = pd.concat([TRUE, frame([("d", "x", 1)], "rating")], ignore_index=True)


def test_precision_is_hits_over_k() -> None:
    # a: x hit in top 2 -> 1/2; b: q hit at rank 2 -> 1/2.
    assert metrics.precision_at_k(TRUTH_WITH_EXTRA_USER, PRED, k=2) == pytest.approx(0.5)
    # k larger than b's list still divides by k: a 1/3 (x), b 1/3 (q).
    assert metrics.precision_at_k(TRUE, PRED, k=3) == pytest.approx(1 / 3)
    assert metrics.precision_at_k(TRUE, PRED, k=1) == pytest.approx(0.5)


def test_recall_divides_by_relevant() -> None:
    # a: 1 of 2 relevant; b: 1 of 1.
    assert metrics.recall_at_k(TRUTH_WITH_EXTRA_USER, PRED, k=2) == pytest.approx(0.75)
    assert metrics.recall_at_k(TRUE, PRED, k=4) == pytest.approx(1.0)


def test_ndcg_binary_relevance() -> None:
    ndcg_a = 1.0 / (1.0 + 1 / math.log2(3))  # hit at rank 1, two relevant items
    ndcg_b = (1 / math.log2(3)) / 1.0  # hit at rank 2, one relevant item
    expected = (ndcg_a + ndcg_b) / 2
    assert metrics.ndcg_at_k(TRUE, PRED, k=2) == pytest.approx(expected)
    perfect = frame([("a", "x", 2.0), ("a", "y", 1.0)], "prediction")
    assert metrics.ndcg_at_k(TRUE, perfect, k=2) == pytest.approx(1.0)


def test_ties_break_on_item_id() -> None:
    tied = frame([("b", "r", 1.0), ("b", "q", 1.0)], "prediction")
    assert metrics.precision_at_k(TRUE, tied, k=1) == pytest.approx(1.0)  # q < r
    top = metrics.top_k(PRED, k=2)
    assert top[top["user_name"] == "a"]["song_id"].tolist() == ["x", "z"]
    assert top["rank"].tolist() == [1, 2, 1, 2, 1]


def test_auc_counts_pairs_and_half_ties() -> None:
    # a: x beats z and w, y loses to both -> 2/4; b: q loses to r -> 0.
    assert metrics.auc(TRUE, PRED) == pytest.approx(0.25)
    tie = frame([("b", "q", 0.5), ("b", "r", 0.5), ("b", "s", 0.1)], "prediction")
    assert metrics.auc(TRUE, tie) == pytest.approx(0.75)  # (1/2 + 1) / 2
    # A user whose scored items are all relevant has no pair to compare: left out.
    only_pos = frame([("b", "q", 0.5)], "prediction")
    assert math.isnan(metrics.auc(TRUE, only_pos))


def test_rmse_and_mae_on_shared_pairs() -> None:
    pred = frame([("a", "x", 8.0), ("a", "y", 1.0), ("a", "zz", 10.0)], "prediction")
    # errors: x 7 vs 8 -> 1, y 3 vs 1 -> 2; zz is not in the truth.
    assert metrics.rmse(TRUE, pred) == pytest.approx(math.sqrt(2.5))
    assert metrics.mae(TRUE, pred) == pytest.approx(1.5)
    assert math.isnan(metrics.rmse(TRUE, frame([("z", "z", 1.0)], "prediction")))


def test_catalog_coverage_uses_training_items() -> None:
    train = frame([("t", s, 1) for s in "xyzwqr"], "rating")
    # top 2: a {x, z}, b {r, q}, c {x} -> 4 distinct of 6.
    assert metrics.catalog_coverage(train, PRED, k=2) == pytest.approx(4 / 6)
    assert metrics.catalog_coverage(train, PRED, k=1) == pytest.approx(2 / 6)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_ndcg_from_hits_agrees_with_ndcg_at_k(data) -> None:
    """The array twin used by the ranking validation equals the DataFrame metric."""
    from songrec.models.evaluation.metrics import ndcg_at_k, ndcg_from_hits

    n_users = data.draw(st.integers(1, 6))
    n_items = data.draw(st.integers(3, 15))
    k = data.draw(st.integers(1, n_items))
    relevant = data.draw(
        st.lists(
            st.lists(st.booleans(), min_size=n_items, max_size=n_items),
            min_size=n_users,
            max_size=n_users,
        )
    )
    relevant = np.array(relevant)
    scores = (
        np.array(data.draw(st.permutations(list(range(n_users * n_items)))))
        .reshape(n_users, n_items)
        .astype(float)
    )
    users = [f"u{u}" for u in range(n_users)]
    items = [f"i{i:02d}" for i in range(n_items)]
    truth = pd.DataFrame(
        [(users[u], items[i]) for u in range(n_users) for i in range(n_items) if relevant[u, i]],
        columns=["user_name", "song_id"],
    )
    pred = pd.DataFrame(
        [(users[u], items[i], scores[u, i]) for u in range(n_users) for i in range(n_items)],
        columns=["user_name", "song_id", "prediction"],
    )
    top = np.argsort(-scores, axis=1)[:, :k]
    hits = np.take_along_axis(relevant, top, axis=1)
    expected = ndcg_at_k(truth, pred, k) if len(truth) else float("nan")
    got = ndcg_from_hits(hits, relevant.sum(axis=1))
    assert (np.isnan(expected) and np.isnan(got)) or got == pytest.approx(expected, abs=1e-12)
