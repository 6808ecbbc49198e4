"""Rating and ranking metrics as flat functions with one signature.

Microsoft Recommenders' conventions: every metric is `metric(rating_true, rating_pred, k)`
over DataFrames with user, item, rating and prediction columns, so a table of metrics is
a loop over a dict of functions. Ranking metrics take each user's top k rows of
`rating_pred` by prediction (ties broken by item id), count a hit when the (user, item)
pair is in `rating_true` (binary relevance), and average over the users present in both
frames. precision@k = hits / k (not hits / list length), recall@k = hits / relevant.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DEFAULT_K = 10
COL_USER = "user_name"
COL_ITEM = "song_id"
COL_RATING = "rating"
COL_PREDICTION = "prediction"


def _paired(
    rating_true: pd.DataFrame, rating_pred: pd.DataFrame, col_user: str, col_item: str
) -> pd.DataFrame:
    return rating_true.merge(rating_pred, on=[col_user, col_item], suffixes=("", "_pred"))


def rmse(
    rating_true: pd.DataFrame,
    rating_pred: pd.DataFrame,
    k: int = DEFAULT_K,
    *,
    col_user: str = COL_USER,
    col_item: str = COL_ITEM,
    col_rating: str = COL_RATING,
    col_prediction: str = COL_PREDICTION,
) -> float:
    """Root mean squared error over the (user, item) pairs in both frames; k is unused."""
    both = _paired(rating_true, rating_pred, col_user, col_item)
    if both.empty:
        return float("nan")
    return float(np.sqrt(np.mean((both[col_rating] - both[col_prediction]) ** 2)))


def mae(
    rating_true: pd.DataFrame,
    rating_pred: pd.DataFrame,
    k: int = DEFAULT_K,
    *,
    col_user: str = COL_USER,
    col_item: str = COL_ITEM,
    col_rating: str = COL_RATING,
    col_prediction: str = COL_PREDICTION,
) -> float:
    """Mean absolute error over the (user, item) pairs in both frames; k is unused."""
    both = _paired(rating_true, rating_pred, col_user, col_item)
    if both.empty:
        return float("nan")
    return float(np.mean(np.abs(both[col_rating] - both[col_prediction])))


def top_k(
    rating_pred: pd.DataFrame,
    k: int = DEFAULT_K,
    *,
    col_user: str = COL_USER,
    col_item: str = COL_ITEM,
    col_prediction: str = COL_PREDICTION,
) -> pd.DataFrame:
    """Each user's k best rows by prediction (ties by item id), with a 1-based `rank`."""
    ordered = rating_pred.sort_values(
        [col_user, col_prediction, col_item], ascending=[True, False, True], kind="stable"
    )
    rank = ordered.groupby(col_user, sort=False).cumcount() + 1
    return ordered.assign(rank=rank.to_numpy())[rank.to_numpy() <= k].reset_index(drop=True)


def _hits(
    rating_true: pd.DataFrame,
    rating_pred: pd.DataFrame,
    k: int,
    col_user: str,
    col_item: str,
    col_prediction: str,
) -> tuple[pd.DataFrame, pd.Series]:
    """(top-k rows of the shared users with a `hit` flag, relevant count per shared user)."""
    relevant = rating_true[[col_user, col_item]].drop_duplicates()
    users = np.intersect1d(relevant[col_user].unique(), rating_pred[col_user].unique())
    top = top_k(
        rating_pred[rating_pred[col_user].isin(users)],
        k,
        col_user=col_user,
        col_item=col_item,
        col_prediction=col_prediction,
    )
    marked = top.merge(relevant.assign(hit=True), on=[col_user, col_item], how="left")
    marked["hit"] = marked["hit"].fillna(False).astype(bool)
    n_relevant = relevant[relevant[col_user].isin(users)].groupby(col_user).size()
    return marked, n_relevant


def precision_at_k(
    rating_true: pd.DataFrame,
    rating_pred: pd.DataFrame,
    k: int = DEFAULT_K,
    *,
    col_user: str = COL_USER,
    col_item: str = COL_ITEM,
    col_rating: str = COL_RATING,
    col_prediction: str = COL_PREDICTION,
) -> float:
    """Mean over users of (relevant items in the top k) / k."""
    marked, n_relevant = _hits(rating_true, rating_pred, k, col_user, col_item, col_prediction)
    if n_relevant.empty:
        return float("nan")
    hits = marked.groupby(col_user)["hit"].sum().reindex(n_relevant.index, fill_value=0)
    return float((hits / k).mean())


def recall_at_k(
    rating_true: pd.DataFrame,
    rating_pred: pd.DataFrame,
    k: int = DEFAULT_K,
    *,
    col_user: str = COL_USER,
    col_item: str = COL_ITEM,
    col_rating: str = COL_RATING,
    col_prediction: str = COL_PREDICTION,
) -> float:
    """Mean over users of (relevant items in the top k) / (relevant items)."""
    marked, n_relevant = _hits(rating_true, rating_pred, k, col_user, col_item, col_prediction)
    if n_relevant.empty:
        return float("nan")
    hits = marked.groupby(col_user)["hit"].sum().reindex(n_relevant.index, fill_value=0)
    return float((hits / n_relevant).mean())


def ndcg_at_k(
    rating_true: pd.DataFrame,
    rating_pred: pd.DataFrame,
    k: int = DEFAULT_K,
    *,
    col_user: str = COL_USER,
    col_item: str = COL_ITEM,
    col_rating: str = COL_RATING,
    col_prediction: str = COL_PREDICTION,
) -> float:
    """Mean over users of binary-relevance DCG@k / ideal DCG@k (gain 1 / log2(rank + 1))."""
    marked, n_relevant = _hits(rating_true, rating_pred, k, col_user, col_item, col_prediction)
    if n_relevant.empty:
        return float("nan")
    gain = marked["hit"] / np.log2(marked["rank"] + 1)
    dcg = gain.groupby(marked[col_user]).sum().reindex(n_relevant.index, fill_value=0.0)
    discounts = np.cumsum(1 / np.log2(np.arange(2, k + 2)))
    ideal = discounts[np.minimum(n_relevant.to_numpy(), k) - 1]
    return float((dcg.to_numpy() / ideal).mean())


def ndcg_from_hits(hits: np.ndarray, n_relevant: np.ndarray) -> float:
    """ndcg_at_k's array twin: `hits` is users x k (True where rank r's song is relevant).

    Users with no relevant item are left out, as ndcg_at_k leaves out users not in both
    frames; tested against ndcg_at_k on generated lists.
    """
    hits = np.asarray(hits, dtype=bool)
    n_relevant = np.asarray(n_relevant)
    k = hits.shape[1]
    users = n_relevant > 0
    if not users.any():
        return float("nan")
    gains = 1 / np.log2(np.arange(2, k + 2))
    dcg = hits[users] @ gains
    ideal = np.cumsum(gains)[np.minimum(n_relevant[users], k) - 1]
    return float((dcg / ideal).mean())


def auc(
    rating_true: pd.DataFrame,
    rating_pred: pd.DataFrame,
    k: int = DEFAULT_K,
    *,
    col_user: str = COL_USER,
    col_item: str = COL_ITEM,
    col_rating: str = COL_RATING,
    col_prediction: str = COL_PREDICTION,
) -> float:
    """Mean over users of the chance a relevant item outscores an irrelevant one (ties: 1/2).

    `rating_pred` holds scores of the items to compare for each user: the relevant ones and
    the unrated ones (all, or a sample). Users with no relevant or no irrelevant scored item
    are left out; k is unused.
    """
    relevant = rating_true[[col_user, col_item]].drop_duplicates().assign(_pos=True)
    scored = rating_pred[[col_user, col_item, col_prediction]].merge(
        relevant, on=[col_user, col_item], how="left"
    )
    scored["_pos"] = scored["_pos"].fillna(False).astype(bool)
    # Mann-Whitney U from average ranks: ties between a positive and a negative count 1/2.
    scored["_rank"] = scored.groupby(col_user)[col_prediction].rank(method="average")
    per_user = scored.groupby(col_user).agg(n=("_pos", "size"), pos=("_pos", "sum"))
    per_user["pos_rank"] = (
        scored["_rank"].where(scored["_pos"], 0.0).groupby(scored[col_user]).sum()
    )
    per_user = per_user[(per_user["pos"] > 0) & (per_user["pos"] < per_user["n"])]
    if per_user.empty:
        return float("nan")
    pos, neg = per_user["pos"], per_user["n"] - per_user["pos"]
    u_stat = per_user["pos_rank"] - pos * (pos + 1) / 2
    return float((u_stat / (pos * neg)).mean())


def catalog_coverage(
    rating_true: pd.DataFrame,
    rating_pred: pd.DataFrame,
    k: int = DEFAULT_K,
    *,
    col_user: str = COL_USER,
    col_item: str = COL_ITEM,
    col_rating: str = COL_RATING,
    col_prediction: str = COL_PREDICTION,
) -> float:
    """Distinct items in all users' top k / distinct items in `rating_true` (the catalog).

    As in Microsoft Recommenders, `rating_true` here is the training data: its items are
    the catalog a recommender could have chosen from.
    """
    catalog = rating_true[col_item].nunique()
    if catalog == 0:
        return float("nan")
    top = top_k(rating_pred, k, col_user=col_user, col_item=col_item, col_prediction=col_prediction)
    return float(top[col_item].nunique() / catalog)


RATING_METRICS = {"rmse": rmse, "mae": mae}
RANKING_METRICS = {
    "precision": precision_at_k,
    "recall": recall_at_k,
    "ndcg": ndcg_at_k,
}
