"""The recommendations: ten songs with reasons, the next ten, more like one, and take-away.

A fragment: Recommend songs, Next ten and More like this rerun this section only. What is
shown is kept as a request (mode, page) and recomputed whenever the list changes, so adding
a recommended song or saying "not for me" updates the ten in place, on the same page.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import streamlit as st

from songrec.app.listening_list import as_pairs, disliked_ids
from songrec.app.page import session
from songrec.app.page.song_rows import SongRow, song_rows
from songrec.app.page.takeaway import takeaway
from songrec.app.page.text import plain
from songrec.models.errors import ModelError
from songrec.models.recommend import RecommendationResult
from songrec.models.recommender import Recommender

MODES = {"Instant (fold-in)": "foldin", "Exact retrain": "retrain"}
PAGE_SIZE = 10
# One exact retrain at a time per server: each recomputes an SVD of every rating (about a
# second of both cores at 1.3M ratings); a second visitor waits for the first.
RETRAIN_SLOTS = 1
EMPTY_HINT = (
    "Your list is empty. Find a song, give it a rating and press **Add to list** (or "
    "import your listening history); then **Recommend songs** finds ten songs for you."
)


@dataclass(frozen=True)
class Shown:
    """What the visitor asked to see: the mode and which ten."""

    mode: str
    page: int = 0


@st.cache_resource
def _retrain_slots() -> threading.Semaphore:
    # Shared by every session of this server process.
    return threading.Semaphore(RETRAIN_SLOTS)


def _compute(recommender: Recommender, shown: Shown) -> RecommendationResult:
    entries = session.entries()
    rated, said = as_pairs(entries), disliked_ids(entries)
    options = {"n": PAGE_SIZE * (shown.page + 1), "mode": shown.mode}
    options |= {"exclude": session.played(), "disliked": said}
    if shown.mode != "retrain":
        return recommender.recommend(rated, **options)
    with st.spinner("Recomputing the model with your list added…"), _retrain_slots():
        return recommender.recommend(rated, **options)


def current(recommender: Recommender, shown: Shown) -> RecommendationResult:
    """The result for `shown` and the list as it is now (kept until either changes)."""
    key = (session.entries(), session.played(), shown, id(recommender))
    kept = st.session_state.get(session.RESULT)
    if kept is not None and kept[0] == key:
        return kept[1]
    result = _compute(recommender, shown)
    st.session_state[session.RESULT] = (key, result)
    return result


def _rows(catalogue: session.Catalogue, result: RecommendationResult, page: int) -> list:
    rows = []
    for item in result.items[PAGE_SIZE * page :]:
        reason = plain(item.because) if item.because else "popular with everyone"
        rows.append(
            SongRow(
                item.song_id,
                item.artist_name,
                item.track_name,
                f"you'd rate it about {item.predicted_rating:.0f} · {reason}",
                catalogue.mbid(item.song_id),
            )
        )
    return rows


def _more_like(catalogue: session.Catalogue) -> None:
    song_id = st.session_state.get(session.MORE_LIKE)
    if song_id is None or not catalogue.model.has_song(song_id):
        return
    model = catalogue.model
    index = model.index_of(song_id)
    rated = {entry.song_id for entry in session.entries()}
    close = [s for s in catalogue.recommender.similar_songs(song_id, 30) if s.song_id not in rated]
    head, close_button = st.columns([6, 1], vertical_alignment="center")
    head.markdown(
        f"**More like {plain(model.artist_names[index])} – {plain(model.track_names[index])}**"
    )
    if close_button.button("Close", key="more_close"):
        st.session_state.pop(session.MORE_LIKE, None)
        st.rerun(scope="fragment")
    rows = [
        SongRow(
            s.song_id,
            s.artist_name,
            s.track_name,
            f"similarity {s.similarity:.2f}",
            catalogue.mbid(s.song_id),
        )
        for s in close[:PAGE_SIZE]
    ]
    song_rows(rows, prefix="more")


@st.fragment
def recommendations(catalogue: session.Catalogue) -> None:
    """The mode choice, Recommend songs, the ten with their actions, Next ten, take-away."""
    if st.session_state.pop(session.FULL_RERUN, False):
        st.rerun(scope="app")  # an action changed the list, which lives outside this fragment
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
    entries = session.entries()
    ask, more = st.columns([1, 1])
    if ask.button("Recommend songs", type="primary"):
        st.session_state[session.SHOWN] = Shown(MODES[label]) if entries else None
        st.session_state.pop(session.MORE_LIKE, None)
        if not entries:
            st.info(EMPTY_HINT)
    shown: Shown | None = st.session_state.get(session.SHOWN)
    if shown is None or not entries:
        takeaway(catalogue, None)
        return
    if more.button("Next ten"):
        shown = Shown(shown.mode, shown.page + 1)
    try:
        result = current(catalogue.recommender, shown)
        if len(result.items) <= PAGE_SIZE * shown.page:  # past the last: back to the first
            shown = Shown(shown.mode)
            result = current(catalogue.recommender, shown)
    except ModelError as exc:
        st.error(f"Could not recommend: {exc}")
        return
    st.session_state[session.SHOWN] = shown
    if result.fallback:
        st.info(result.fallback)
    first = PAGE_SIZE * shown.page + 1
    st.caption(f"Songs {first}–{len(result.items)}, best first.")
    song_rows(_rows(catalogue, result, shown.page), prefix="rec", first_rank=first)
    _more_like(catalogue)
    takeaway(catalogue, result.items[PAGE_SIZE * shown.page :])
