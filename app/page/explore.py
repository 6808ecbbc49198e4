"""Explore: artists like an artist, songs like a song, each song with a link to hear it."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from songrec.app.listen_links import best_link
from songrec.app.page import session
from songrec.app.page.pick import artist_songs
from songrec.app.page.text import plain
from songrec.models.recommender import Recommender

LISTEN_COLUMN = st.column_config.LinkColumn("listen", display_text="▶ listen", width="small")


def model_key(catalogue: session.Catalogue) -> str:
    """Names this model's answers in caches: its folder and when it was trained."""
    return f"{catalogue.model_dir}@{catalogue.model.manifest.get('created_at')}"


@st.cache_data(max_entries=512, show_spinner=False)
def _artists_like(key: str, artist: str, _recommender: Recommender) -> pd.DataFrame:
    # Scoring every artist costs about 0.1 s at 10k songs: answer each artist once.
    near = _recommender.similar_artists(artist, n=10)
    return pd.DataFrame(
        {
            "artist": [a.artist_name for a in near],
            "similarity": [round(a.similarity, 3) for a in near],
            "songs": [a.songs for a in near],
        }
    )


@st.cache_data(max_entries=512, show_spinner=False)
def _songs_like(key: str, song_id: str, _catalogue: session.Catalogue) -> pd.DataFrame:
    close = _catalogue.recommender.similar_songs(song_id, n=10)
    return pd.DataFrame(
        {
            "artist": [s.artist_name for s in close],
            "song": [s.track_name for s in close],
            "similarity": [round(s.similarity, 3) for s in close],
            "listen": [
                best_link(s.artist_name, s.track_name, _catalogue.mbid(s.song_id)) for s in close
            ],
        }
    )


def explore(catalogue: session.Catalogue) -> None:
    """Similar songs to a chosen song, similar artists to a chosen artist."""
    model = catalogue.model
    artist = st.selectbox("Artist to explore", catalogue.artists, key="explore_artist")
    if artist is None:
        return
    options = artist_songs(model, artist)
    song_id = st.selectbox(
        "Song to explore", list(options), format_func=options.get, key="explore_song"
    )
    key = model_key(catalogue)
    left, right = st.columns(2)
    with left:
        st.markdown(f"**Artists like {plain(artist)}**")
        st.dataframe(
            _artists_like(key, artist, catalogue.recommender), hide_index=True, width="stretch"
        )
    with right:
        if song_id is not None:
            st.markdown(f"**Songs like {plain(options[song_id])}**")
            st.dataframe(
                _songs_like(key, song_id, catalogue),
                hide_index=True,
                width="stretch",
                column_config={"listen": LISTEN_COLUMN},
            )
