"""songrec's page: find and rate songs you know, get ten you will like, act on them, take
them away as a playlist, and explore similar songs and artists.

Start it with `songrec app` (or `make demo`); $SONGREC_MODEL names the model folder. Each
section is a module of app/page/; the visitor's state lives in app/page/session.py.
"""

from __future__ import annotations

import streamlit as st

from songrec.app.page import session
from songrec.app.page.explore import explore
from songrec.app.page.pick import picker
from songrec.app.page.recommendations import recommendations
from songrec.app.page.your_list import listening_list
from songrec.models.errors import ModelError

st.set_page_config(page_title="songrec", page_icon="🎵", layout="wide")
st.title("songrec")
st.caption("Rate a few songs you know; get ten you have not heard yet, each with a reason.")

session.limit_blas_threads()
try:
    catalogue = session.catalogue(session.model_dir())
except ModelError as exc:
    st.error(f"The model cannot be loaded: {exc}")
    st.stop()

session.start(catalogue.model)
session.follow(catalogue.model)
st.html(session.cookie_script(st.session_state[session.TOKEN]), unsafe_allow_javascript=True)
about = session.catalogue_note(catalogue)
if about:
    st.info(about)
notice = session.take_notice()
if notice:
    st.warning(notice)

# Only the open tab runs: exploring costs nothing while a listener builds their list.
songs_tab, explore_tab = st.tabs(["Your songs", "Explore"], key="view", on_change="rerun")
if songs_tab.open:
    with songs_tab:
        pick, listed = st.columns([2, 3], gap="large")
        with pick:
            picker(catalogue)
        with listed:
            listening_list(catalogue)
        recommendations(catalogue)
        st.caption(
            "Your list is saved on this server under a random key kept in a cookie of this "
            "browser; if the browser refuses cookies it lasts for this visit only."
            if session.persistence_available()
            else "Saving lists is unavailable on this server: your list lasts for this visit."
        )
if explore_tab.open:
    with explore_tab:
        explore(catalogue)
