"""The visitor's list: an editable table (ratings, deletions), links to hear each song."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from songrec.app.listen_links import best_link
from songrec.app.listening_list import Entries, ListError, check_rating, clear
from songrec.app.listening_list import Entry as ListEntry
from songrec.app.page import session
from songrec.app.page.history_upload import history_import
from songrec.app.page.recommendations import EMPTY_HINT
from songrec.app.page.text import count

LISTEN_COLUMN = st.column_config.LinkColumn("listen", display_text="▶ listen", width="small")


def _frame(catalogue: session.Catalogue, entries: Entries) -> pd.DataFrame:
    model = catalogue.model
    rows = [model.index_of(entry.song_id) for entry in entries]
    artists = [str(model.artist_names[i]) for i in rows]
    tracks = [str(model.track_names[i]) for i in rows]
    return pd.DataFrame(
        {
            "artist": artists,
            "song": tracks,
            "rating": [entry.rating for entry in entries],
            "not for me": [entry.disliked for entry in entries],
            "listen": [
                best_link(a, t, catalogue.mbid(e.song_id))
                for a, t, e in zip(artists, tracks, entries, strict=True)
            ],
        },
        index=pd.Index([entry.song_id for entry in entries], name="song_id"),
    )


def _edited(edited: pd.DataFrame, before: Entries) -> Entries:
    """The list as the table now shows it: deleted rows gone, changed ratings applied (a
    new rating ends "not for me": the visitor changed their mind)."""
    old = {entry.song_id: entry for entry in before}
    result = []
    for song_id, rating in zip(edited.index, edited["rating"], strict=True):
        was = old[song_id]
        try:
            value = check_rating(rating)
        except ListError:  # an emptied or impossible cell keeps the old rating
            value = was.rating
        result.append(ListEntry(str(song_id), value, was.disliked and value == was.rating))
    return tuple(result)


def _on_clear() -> None:
    session.set_entries(clear())


def listening_list(catalogue: session.Catalogue) -> None:
    """The list as an editable table (change a rating, delete rows) and Clear list."""
    entries = session.entries()
    st.subheader(f"Your list ({count(len(entries))})")
    if not entries:
        st.info(EMPTY_HINT)
    else:
        edited = st.data_editor(
            _frame(catalogue, entries),
            key=session.editor_key(),
            num_rows="delete",
            hide_index=True,
            disabled=["artist", "song", "not for me", "listen"],
            column_config={
                "rating": st.column_config.NumberColumn(
                    "rating", min_value=1, max_value=10, step=1, format="%d"
                ),
                "listen": LISTEN_COLUMN,
            },
            width="stretch",
        )
        changed = _edited(edited, entries)
        if changed != entries:
            session.set_entries(changed)
            st.rerun()
    st.button("Clear list", on_click=_on_clear, disabled=not entries)
    history_import(catalogue)
