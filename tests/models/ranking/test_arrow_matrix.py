"""arrow_rating_matrix (Arrow's hash tables, what the page reads a saved model's ratings
with) and rating_matrix (pandas, what training uses) build the same matrix and listeners
on generated ratings: unicode names, duplicate pairs, songs outside the catalogue."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from songrec.models.ranking.matrix import arrow_rating_matrix, rating_matrix

names = st.text(st.characters(blacklist_categories=("Cs",)), max_size=6)
songs = st.lists(st.text("0123456789abcdef", min_size=1, max_size=4), unique=True, max_size=12)


@settings(max_examples=80, deadline=None)
@given(
    songs,
    st.lists(st.tuples(names, st.integers(0, 15), st.integers(1, 10)), max_size=60),
    st.sampled_from([0.0, 0.5, 1.0]),
    st.sampled_from([pa.string(), pa.large_string()]),
    st.data(),
)
def test_arrow_and_pandas_matrices_agree(pool, rows, gamma, text, data):
    pool = pool or ["0"]
    catalogue = data.draw(st.lists(st.sampled_from(pool), unique=True))
    frame = pd.DataFrame(
        {
            "user_name": [user for user, _, _ in rows],
            "song_id": [pool[k % len(pool)] for _, k, _ in rows],
            "rating": np.array([r for _, _, r in rows], dtype=np.int8),
        }
    )
    table = pa.table(
        {
            "user_name": pa.array(frame["user_name"].tolist(), text),
            "song_id": pa.array(frame["song_id"].tolist(), text),
            "rating": pa.array(frame["rating"].to_numpy(), pa.int8()),
        }
    )
    want, want_users = rating_matrix(frame, pd.Index(catalogue, dtype=object), gamma)
    got, got_users = arrow_rating_matrix(table, catalogue, gamma)
    assert got.shape == want.shape
    np.testing.assert_allclose(got.toarray(), want.toarray(), rtol=1e-12)
    assert got_users.tolist() == want_users.tolist()
