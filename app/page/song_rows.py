"""Rows of songs a listener can act on: rate to add, not for me, more like this.

Used for the recommendations and for "more like this". Each action changes the list
through app/page/session.py and asks for a whole-page rerun (the list lives outside the
recommendations fragment); "more like this" only reruns the fragment.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from songrec.app.listening_list import ListError, add
from songrec.app.page import session
from songrec.app.page.text import links_markdown, plain

# "Not for me" adds the song rated 1 and marked disliked: it leaves every later list and
# weighs as a dislike whatever the visitor's other ratings (models.ranking.matrix).
NOT_FOR_ME = 1
# Five stars on a row, each worth two points of songrec's 1..10 (MusicBrainz rates in five
# stars too). Stars, not a 1..10 select box: ten select boxes made every update of the ten
# about 150 ms slower in the browser (tests/bench/bench_app.py).
STAR_POINTS = 2
RATE_HINT = "Rate a song with the stars to add it to your list (each star is 2 points of 10)."


@dataclass(frozen=True)
class SongRow:
    """One song to show: its names, a Markdown-safe detail line, and its recording id."""

    song_id: str
    artist: str
    title: str
    detail: str
    mbid: str | None = None


def _change_list(song_id: str, rating: int, disliked: bool = False) -> None:
    try:
        session.set_entries(add(session.entries(), song_id, rating, disliked))
    except ListError as exc:
        st.session_state[session.NOTICE] = str(exc)
    st.session_state[session.FULL_RERUN] = True


def stars_to_rating(stars: int) -> int:
    """The 1..10 rating of a row's stars (st.feedback gives 0..4 for one to five stars)."""
    return (stars + 1) * STAR_POINTS


def _on_rate(key: str, song_id: str) -> None:
    stars = st.session_state.get(key)
    if stars is not None:
        _change_list(song_id, stars_to_rating(stars))


def _on_more(song_id: str) -> None:
    st.session_state[session.MORE_LIKE] = song_id


def song_rows(rows: list[SongRow], prefix: str, first_rank: int = 1) -> None:
    """Draw `rows`, each with its listen links and its three actions."""
    st.caption(RATE_HINT)
    for rank, row in enumerate(rows, first_rank):
        # The key names the row in the browser too (CSS class st-key-<key>).
        with st.container(key=f"{prefix}_row_{rank}"):
            _row(rank, row, prefix)


def _row(rank: int, row: SongRow, prefix: str) -> None:
    name, detail, rate, no, more = st.columns(
        [4, 4, 1.6, 1.3, 1.5], vertical_alignment="center", gap="small"
    )
    name.markdown(
        f"**{rank}. {plain(row.artist)} – {plain(row.title)}**  \n"
        f"{links_markdown(row.artist, row.title, row.mbid)}"
    )
    detail.caption(row.detail)
    key = f"{prefix}_rate_{row.song_id}"
    rate.feedback("stars", key=key, on_change=_on_rate, args=(key, row.song_id))
    no.button(
        "Not for me",
        key=f"{prefix}_no_{row.song_id}",
        on_click=_change_list,
        args=(row.song_id, NOT_FOR_ME, True),
        help="Leaves this and every later list, and steers them away from songs like it.",
    )
    more.button(
        "More like this",
        key=f"{prefix}_more_{row.song_id}",
        on_click=_on_more,
        args=(row.song_id,),
    )
