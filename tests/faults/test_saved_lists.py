"""Saved lists: whatever the database holds, restoring it never raises, and garbage is reset."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from songrec.app.saved_list import restore

json_documents = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=200),
        json_documents.map(json.dumps),
        st.fixed_dictionaries({"version": st.integers(0, 3), "songs": json_documents}).map(
            json.dumps
        ),
        st.integers(1, 40_000).map(lambda n: "[" * n),
        st.integers(1, 40_000).map(lambda n: '{"a":' * n),
    )
)
def test_restore_never_raises_and_resets_what_it_cannot_read(payload) -> None:
    restored = restore(payload, lambda song_id: True)
    if restored.notice is not None:
        assert restored.entries == () or "no longer available" in restored.notice
    assert all(1 <= entry.rating <= 10 for entry in restored.entries)


def test_deep_nesting_is_reset_with_a_notice() -> None:
    restored = restore("[" * 30_000, lambda song_id: True)
    assert restored.entries == () and "could not be read" in restored.notice
