"""The page's sections: pick and rate songs, the list, recommendations, and exploring.

Each function draws one section from the shared model and this visitor's state
(app/session.py). Every answer comes from models/ (`recommend`, `similar_*`); the page
only turns them into tables.
"""

from __future__ import annotations

import re
import threading

import pandas as pd
import streamlit as st

from songrec.app import session
from songrec.app.listening_list import Entry as ListEntry
from songrec.app.listening_list import ListError, add, as_pairs, check_rating, clear
from songrec.models.artifact import TrainedModel
from songrec.models.errors import ModelError
from songrec.models.recommend import RecommendationResult
from songrec.models.recommender import Recommender
from songrec.models.similar import songs_by_artist

MODES = {"Instant (fold-in)": "foldin", "Exact retrain": "retrain"}
# One exact retrain at a time per server: each recomputes an SVD of every rating (about a
# second of both cores at 1.3M ratings); a second visitor waits for the first.
RETRAIN_SLOTS = 1
EMPTY_HINT = (
    "Your list is empty. Pick an artist and a song, give it a rating and press "
    "**Add to list**; then **Recommend songs** finds ten songs for you."
)


def plain(text: str) -> str:
    """`text` shown as itself where Streamlit renders Markdown (st.markdown, st.table cells).

    Names come from the data: every ASCII punctuation character is backslash-escaped, which
    CommonMark defines as the literal character, so no emphasis, link, image, KaTeX ($),
    colour directive (:red[...]) or emoji shortcode (:tada:) can form.
    """
    return re.sub(r"([!-/:-@\[-`{-~])", r"\\\1", text)


def _count(n: int) -> str:
    return f"{n} song" if n == 1 else f"{n} songs"


def _song_options(model: TrainedModel, artist: str | None) -> dict[str, str]:
    if artist is None:
        return {}
    rows = songs_by_artist(model, artist)
    return dict(zip(rows["song_id"], rows["track_name"], strict=True))


def _name(model: TrainedModel, song_id: str) -> tuple[str, str]:
    row = model.songs.iloc[model.index_of(song_id)]
    return str(row["artist_name"]), str(row["track_name"])


def _on_add() -> None:
    song_id, rating = st.session_state.get("song"), st.session_state.get("rating")
    if song_id is None:
        return
    try:
        session.set_entries(add(session.entries(), song_id, rating))
    except ListError as exc:
        st.session_state[session.NOTICE] = str(exc)


def _on_clear() -> None:
    session.set_entries(clear())


def picker(catalogue: session.Catalogue) -> None:
    """Artist, Song, Rating and the Add to list button."""
    model = catalogue.model
    artist = st.selectbox(
        "Artist", catalogue.artists, index=0 if catalogue.artists else None, key="artist"
    )
    options = _song_options(model, artist)
    if st.session_state.get("song") not in options:
        # A new artist: start at their most played song, not at a stale choice.
        st.session_state.pop("song", None)
    st.selectbox("Song", list(options), format_func=options.get, key="song")
    st.slider("Rating", min_value=1, max_value=10, value=8, key="rating")
    st.button("Add to list", on_click=_on_add, type="primary")


def _list_frame(model: TrainedModel, entries: tuple[ListEntry, ...]) -> pd.DataFrame:
    names = [_name(model, entry.song_id) for entry in entries]
    return pd.DataFrame(
        {
            "artist": [artist for artist, _ in names],
            "song": [track for _, track in names],
            "rating": [entry.rating for entry in entries],
        },
        index=pd.Index([entry.song_id for entry in entries], name="song_id"),
    )


def _edited_entries(edited: pd.DataFrame, before: tuple[ListEntry, ...]) -> tuple:
    """The list as the table now shows it: deleted rows gone, changed ratings applied."""
    old = dict(before)
    result = []
    for song_id, rating in zip(edited.index, edited["rating"], strict=True):
        try:
            value = check_rating(rating)
        except ListError:  # an emptied or impossible cell keeps the old rating
            value = old[song_id]
        result.append(ListEntry(str(song_id), value))
    return tuple(result)


def listening_list(catalogue: session.Catalogue) -> None:
    """The list as an editable table (change a rating, delete rows) and Clear list."""
    entries = session.entries()
    st.subheader(f"Your list ({_count(len(entries))})")
    if not entries:
        st.info(EMPTY_HINT)
    else:
        edited = st.data_editor(
            _list_frame(catalogue.model, entries),
            key=session.editor_key(),
            num_rows="delete",
            hide_index=True,
            disabled=["artist", "song"],
            column_config={
                "rating": st.column_config.NumberColumn(
                    "rating", min_value=1, max_value=10, step=1, format="%d"
                )
            },
            width="stretch",
        )
        changed = _edited_entries(edited, entries)
        if changed != entries:
            session.set_entries(changed)
            st.rerun()
    st.button("Clear list", on_click=_on_clear, disabled=not entries)


def _result_frame(result: RecommendationResult) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "rank": range(1, len(result.items) + 1),
            "artist": [plain(item.artist_name) for item in result.items],
            "song": [plain(item.track_name) for item in result.items],
            "predicted rating": [f"{item.predicted_rating:.1f}" for item in result.items],
            "why": [plain(item.because or "popular with everyone") for item in result.items],
        }
    )


def _run(recommender: Recommender, mode: str) -> RecommendationResult:
    rated = as_pairs(session.entries())
    if mode != "retrain":
        return recommender.recommend(rated, n=10, mode=mode)
    slots = _retrain_slots()
    with st.spinner("Recomputing the model with your list added…"):
        with slots:
            return recommender.recommend(rated, n=10, mode=mode)


@st.cache_resource
def _retrain_slots() -> threading.Semaphore:
    # Shared by every session of this server process.
    return threading.Semaphore(RETRAIN_SLOTS)


@st.fragment
def recommendations(catalogue: session.Catalogue) -> None:
    """The mode choice, Recommend songs, and the top ten.

    A fragment: clicking Recommend songs reruns this section only, not the whole page.
    """
    st.subheader("Recommendations")
    modes = list(MODES) if session.exact_retrain_enabled() else list(MODES)[:1]
    label = st.radio(
        "How to recommend",
        modes,
        horizontal=True,
        help="Instant places your list in the trained model in milliseconds. Exact retrain "
        "recomputes the whole model with your list added, as the original app did (about a "
        "second).",
    )
    if st.button("Recommend songs", type="primary"):
        if not session.entries():
            st.info(EMPTY_HINT)
        else:
            try:
                st.session_state[session.RESULT] = _run(catalogue.recommender, MODES[label])
            except ModelError as exc:
                st.error(f"Could not recommend: {exc}")
    result: RecommendationResult | None = st.session_state.get(session.RESULT)
    if result is not None:
        if result.fallback:
            st.info(result.fallback)
        # A plain table: ten rows need no scrolling grid, and it reads well on a phone.
        st.table(_result_frame(result), hide_index=True)


def _model_key(catalogue: session.Catalogue) -> str:
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
def _songs_like(key: str, song_id: str, _recommender: Recommender) -> pd.DataFrame:
    close = _recommender.similar_songs(song_id, n=10)
    return pd.DataFrame(
        {
            "artist": [s.artist_name for s in close],
            "song": [s.track_name for s in close],
            "similarity": [round(s.similarity, 3) for s in close],
        }
    )


def explore(catalogue: session.Catalogue) -> None:
    """Similar songs to a chosen song, similar artists to a chosen artist."""
    model = catalogue.model
    artist = st.selectbox("Artist to explore", catalogue.artists, key="explore_artist")
    if artist is None:
        return
    options = _song_options(model, artist)
    song_id = st.selectbox(
        "Song to explore", list(options), format_func=options.get, key="explore_song"
    )
    key = _model_key(catalogue)
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
                _songs_like(key, song_id, catalogue.recommender), hide_index=True, width="stretch"
            )
