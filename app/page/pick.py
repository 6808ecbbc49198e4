"""Pick a song to rate: search any song, or choose an artist then one of their songs."""

from __future__ import annotations

import streamlit as st

from songrec.app.listening_list import ListError, add
from songrec.app.page import session
from songrec.app.page.text import plain
from songrec.models.artifact import TrainedModel
from songrec.models.similar import songs_by_artist

SEARCH_LIMIT = 25
SEARCH_KEY, FOUND_KEY, ARTIST_KEY, SONG_KEY, RATING_KEY = (
    "search",
    "found_song",
    "artist",
    "song",
    "rating",
)


def song_label(model: TrainedModel, index: int) -> str:
    """'Artist – Title' of row `index` (plain text: selectboxes do not render Markdown)."""
    return f"{model.artist_names[index]} – {model.track_names[index]}"


def artist_songs(model: TrainedModel, artist: str | None) -> dict[str, str]:
    if artist is None:
        return {}
    rows = songs_by_artist(model, artist)
    return dict(zip(rows["song_id"], rows["track_name"], strict=True))


def _choose(key: str, options: dict[str, str], label: str = "Song") -> None:
    if st.session_state.get(key) not in options:
        # New matches or a new artist: start at the best one, not at a stale choice.
        st.session_state.pop(key, None)
    st.selectbox(label, list(options), format_func=options.get, key=key)


def _on_add(key: str) -> None:
    song_id, rating = st.session_state.get(key), st.session_state.get(RATING_KEY)
    if song_id is None:
        return
    try:
        session.set_entries(add(session.entries(), song_id, rating))
    except ListError as exc:
        st.session_state[session.NOTICE] = str(exc)


def picker(catalogue: session.Catalogue) -> None:
    """Find a song (search box, or Artist then Song), a Rating, and Add to list."""
    model = catalogue.model
    query = st.text_input(
        "Find a song",
        key=SEARCH_KEY,
        placeholder="Artist or title, any case or accent",
        help="Every word must appear in the artist or the title. Clear the box to pick by "
        "artist instead.",
    )
    if query.strip():
        rows = catalogue.search(query, SEARCH_LIMIT)
        options = {str(model.song_ids[i]): song_label(model, i) for i in rows}
        if not options:
            st.caption(f"No song matches “{plain(query.strip())}”.")
        _choose(FOUND_KEY, options, "Matching songs")
        source = FOUND_KEY
    else:
        artist = st.selectbox(
            "Artist", catalogue.artists, index=0 if catalogue.artists else None, key=ARTIST_KEY
        )
        _choose(SONG_KEY, artist_songs(model, artist))
        source = SONG_KEY
    st.slider("Rating", min_value=1, max_value=10, value=8, key=RATING_KEY)
    st.button(
        "Add to list",
        on_click=_on_add,
        args=(source,),
        type="primary",
        disabled=st.session_state.get(source) is None,
    )
