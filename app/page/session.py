"""The page's state: the shared model, and one visitor's list with its saved copy.

The model is loaded once per server process (`st.cache_resource`) and shared by every
visitor, so nothing here may change it. A visitor's list lives in their own
`st.session_state`; it is mirrored to the SQLite store under the token their browser
keeps in a cookie (see app/saved_list.py for why), and the page keeps working without
the store or the cookie. The recommendations shown are remembered as a request (mode and
page), so they follow the list: any change to it recomputes them in place.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from threadpoolctl import threadpool_limits

from songrec.app.listening_list import Entries, clean
from songrec.app.model_location import DEFAULT_MODEL, MODEL_ENV
from songrec.app.saved_list import ListStore, is_token, new_token, restore
from songrec.models.artifact import MANIFEST, TrainedModel
from songrec.models.recommender import Recommender
from songrec.models.search import song_index
from songrec.models.similar import artists

log = logging.getLogger(__name__)

LISTS_ENV = "SONGREC_LISTS"
RETRAIN_ENV = "SONGREC_EXACT_RETRAIN"
DEFAULT_LISTS = ".songrec/lists.sqlite3"
COOKIE = "songrec_list"
# Browsers cap cookie lifetimes at 400 days; the page renews the cookie on every visit.
COOKIE_MAX_AGE = 400 * 24 * 3600

TOKEN = "songrec_token"
ENTRIES = "songrec_entries"
NOTICE = "songrec_notice"
EDITOR_VERSION = "songrec_editor_version"
RESULT = "songrec_result"
SHOWN = "songrec_shown"
# Songs of an imported history (this visit): never recommended, even past the list's cap.
PLAYED = "songrec_played"
MORE_LIKE = "songrec_more_like"
FULL_RERUN = "songrec_full_rerun"
MODEL_KEY = "songrec_model"


@dataclass(frozen=True)
class Catalogue:
    """The shared model and the lookups the page needs on every run."""

    recommender: Recommender
    artists: tuple[str, ...]
    model_dir: Path

    @property
    def model(self) -> TrainedModel:
        """The served model (the recommender's)."""
        return self.recommender.model

    def mbid(self, song_id: str) -> str | None:
        """The song's MusicBrainz recording id, if known."""
        return self.model.recording_mbid(self.model.index_of(song_id))

    def search(self, text: str, limit: int) -> list[int]:
        """Rows of the songs matching `text`, best first (models.search)."""
        return song_index(self.model).search(text, limit)


def model_dir() -> Path:
    """The model folder the page serves: $SONGREC_MODEL, else .songrec/model."""
    return Path(os.environ.get(MODEL_ENV) or DEFAULT_MODEL)


def exact_retrain_enabled() -> bool:
    """Whether the page offers the exact retrain ($SONGREC_EXACT_RETRAIN=off hides it).

    A retrain keeps the training matrix in memory (about 20 MB at 1.3M ratings) and takes
    about a second of CPU per click: a small host can offer the instant mode only.
    """
    return os.environ.get(RETRAIN_ENV, "on").strip().lower() not in ("off", "0", "no", "false")


def lists_path() -> Path:
    """Where saved lists live: $SONGREC_LISTS, else .songrec/lists.sqlite3."""
    return Path(os.environ.get(LISTS_ENV) or DEFAULT_LISTS)


@st.cache_resource
def limit_blas_threads() -> None:
    """One BLAS thread per call, for the whole server process (set once).

    Visitors are the parallelism. On a busy 2-core machine, BLAS thread pools of several
    sessions spinning against each other made one fold-in 14x slower (tests/bench/bench_app.py).
    """
    threadpool_limits(limits=1, user_api="blas")


@st.cache_resource(show_spinner="Loading the model…", max_entries=2)
def _load(folder: str, stamp: int) -> Catalogue:
    # `stamp` (the manifest's mtime) makes a retrained folder load afresh.
    recommender = Recommender.load(Path(folder))
    # Read the training matrix now, under the loading spinner, not in the first visitor's
    # click (the reasons and the exact retrain use it: about 1 s at 1.3M ratings).
    recommender.training_matrix()
    model = recommender.model
    song_index(model)  # likewise the search index (about 2 s at a million songs)
    return Catalogue(recommender, tuple(artists(model)), Path(folder))


def catalogue_note(catalogue: Catalogue) -> str | None:
    """One line saying the catalogue is made up, when the model was trained on the sample."""
    if not catalogue.model.synthetic:
        return None
    return (
        "This catalogue is synthetic: the artists and songs were made up by `songrec etl "
        "sample` for the demo. Train on real listens (a ListenBrainz dump or your own "
        "export: see README, *Real data*) to get real songs."
    )


def catalogue(folder: Path) -> Catalogue:
    """The loaded model of `folder`, shared by all sessions; ModelError if it fails its checks."""
    manifest = folder / MANIFEST
    stamp = manifest.stat().st_mtime_ns if manifest.is_file() else 0
    return _load(str(folder.resolve()), stamp)


@st.cache_resource(max_entries=4)
def _store(path: str) -> ListStore | None:
    try:
        return ListStore(Path(path))
    except (OSError, sqlite3.Error) as exc:
        log.warning("saved lists disabled: cannot open %s: %s", path, exc)
        return None


def store() -> ListStore | None:
    """The shared list store, or None when it cannot be opened (lists then last one visit)."""
    return _store(str(lists_path().resolve()))


def _token_candidate() -> str | None:
    seeded = st.session_state.get(TOKEN)
    if seeded is not None:
        return seeded
    try:
        return st.context.cookies.get(COOKIE)
    except Exception:  # no browser context (bare script run): no saved list
        return None


def start(model: TrainedModel) -> None:
    """Once per session: pick the browser's token and restore its list, cleaned."""
    if ENTRIES in st.session_state:
        return
    candidate = _token_candidate()
    notice = None
    if candidate is None:
        token = new_token()
    elif is_token(candidate):
        token = candidate
    else:
        token = new_token()
        notice = "Your saved list could not be read and was reset."
    entries: Entries = ()
    lists = store()
    if lists is not None and notice is None:
        try:
            restored = restore(lists.load(token), model.has_song)
        except sqlite3.Error as exc:
            log.warning("cannot read saved list: %s", exc)
            restored = restore(None, model.has_song)
        entries, notice = restored.entries, restored.notice
        if notice is not None:
            _save(token, entries)
    st.session_state[TOKEN] = token
    st.session_state[ENTRIES] = entries
    st.session_state[NOTICE] = notice
    st.session_state[EDITOR_VERSION] = 0
    st.session_state[RESULT] = None
    st.session_state[SHOWN] = None


def follow(model: TrainedModel) -> None:
    """On every run: when the served model changed under this session (retrained, replaced),
    drop list entries it no longer knows, with a notice, and forget the old results."""
    if st.session_state.get(MODEL_KEY) is model:
        return
    first = MODEL_KEY not in st.session_state
    st.session_state[MODEL_KEY] = model
    if first:
        return  # `start` cleaned the list against this very model
    kept, dropped = clean(st.session_state[ENTRIES], model.has_song)
    st.session_state[RESULT] = None
    st.session_state[SHOWN] = None
    st.session_state.pop(MORE_LIKE, None)
    if dropped:
        st.session_state[ENTRIES] = kept
        st.session_state[EDITOR_VERSION] += 1
        _save(st.session_state[TOKEN], kept)
        songs = "song" if len(dropped) == 1 else "songs"
        st.session_state[NOTICE] = (
            f"The catalogue was updated: {len(dropped)} {songs} of your list are no longer "
            "in it and were removed."
        )


def _save(token: str, entries: Entries) -> None:
    lists = store()
    if lists is None:
        return
    try:
        lists.save(token, entries)
    except sqlite3.Error as exc:  # a full disk must not break the page
        log.warning("cannot save list: %s", exc)


def entries() -> Entries:
    """This visitor's list."""
    return st.session_state[ENTRIES]


def set_entries(new: Entries) -> None:
    """Replace this visitor's list and save it (shown recommendations follow on next run)."""
    if new == st.session_state[ENTRIES]:
        return
    st.session_state[ENTRIES] = new
    st.session_state[EDITOR_VERSION] += 1
    _save(st.session_state[TOKEN], new)


def played() -> frozenset[str]:
    """Song ids the visitor's imported history says they already play."""
    return st.session_state.get(PLAYED, frozenset())


def add_played(song_ids: tuple[str, ...]) -> None:
    """Remember more songs the visitor already plays (shown recommendations follow)."""
    st.session_state[PLAYED] = played() | frozenset(song_ids)


def take_notice() -> str | None:
    """The cleanup notice, shown once."""
    return st.session_state.pop(NOTICE, None)


def editor_key() -> str:
    """Key of the list table; it changes whenever the list does, so stale edits never apply."""
    return f"list_editor_{st.session_state[EDITOR_VERSION]}"


def cookie_script(token: str) -> str:
    """HTML that keeps `token` in this browser (renewed every visit)."""
    # json.dumps quotes the token for JavaScript; the token alphabet needs no escaping.
    return (
        "<script>(function(){var s=location.protocol==='https:'?'; Secure':'';"
        f"document.cookie={json.dumps(COOKIE)}+'='+{json.dumps(token)}"
        f"+'; Max-Age={COOKIE_MAX_AGE}; Path=/; SameSite=Strict'+s;}})();</script>"
    )


def persistence_available() -> bool:
    """Whether lists are saved on this server at all."""
    return store() is not None
