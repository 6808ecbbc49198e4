"""Download the list and the recommendations shown as a playlist (JSPF or CSV)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import streamlit as st

from songrec.app.listening_list import as_pairs
from songrec.app.page import session
from songrec.app.playlist import (
    MEDIA_TYPES,
    PlaylistTrack,
    importable,
    listed_tracks,
    recommended_tracks,
    render,
)
from songrec.models.recommend import Recommendation

INCLUDE = {
    "Your list and these recommendations": ("your list", "recommended"),
    "These recommendations": ("recommended",),
    "Your list": ("your list",),
}


def playlist_tracks(
    catalogue: session.Catalogue, recommended: Sequence[Recommendation] | None
) -> list[PlaylistTrack]:
    """The visitor's list, then the recommendations shown, as playlist tracks."""
    model = catalogue.model
    listed = listed_tracks(as_pairs(session.entries()), model)
    return listed + recommended_tracks(recommended or (), model)


def takeaway(catalogue: session.Catalogue, recommended: Sequence[Recommendation] | None) -> None:
    """The export choice and the JSPF and CSV download buttons."""
    tracks = playlist_tracks(catalogue, recommended)
    if not tracks:
        return
    st.markdown("**Take it away**")
    choices = list(INCLUDE) if recommended else ["Your list"]
    what, jspf, csv = st.columns([3, 2, 2], vertical_alignment="bottom")
    # One key per set of choices: a choice made before recommending must not stick after.
    key = "takeaway_choice" if recommended else "takeaway_choice_list"
    choice = what.selectbox("Playlist of", choices, key=key)
    chosen = [t for t in tracks if t.section in INCLUDE.get(choice, INCLUDE["Your list"])]
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
    title = f"songrec {stamp}"
    for column, fmt, label in ((jspf, "jspf", "Download JSPF"), (csv, "csv", "Download CSV")):
        column.download_button(
            label,
            data=render(chosen, fmt, title).encode("utf-8"),
            file_name=f"songrec-{stamp}.{fmt}",
            mime=MEDIA_TYPES[fmt],
            on_click="ignore",
            key=f"download_{fmt}",
        )
    known = importable(chosen)
    st.caption(
        f"JSPF is the playlist format ListenBrainz imports; it takes songs with a MusicBrainz "
        f"recording id ({known} of these {len(chosen)})."
    )
