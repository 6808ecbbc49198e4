"""Import a listening history on the page: a ListenBrainz export or a Last.fm CSV.

The upload stays in this server's memory (Streamlit keeps it per session and drops it when
the uploader is cleared); nothing is written to disk, so no other visitor can reach it.
Plays become ratings with the model's own transform (models.history) and join the list;
songs already in the list keep the visitor's own rating.
"""

from __future__ import annotations

import logging

import streamlit as st

from songrec.app.listening_list import MAX_SONGS, Entries, add
from songrec.app.page import session
from songrec.app.page.text import count, plain
from songrec.etl.errors import EtlError
from songrec.etl.history import MAX_INPUT_BYTES, read_history
from songrec.models.errors import ModelError
from songrec.models.history import ImportedHistory, import_history, summary

log = logging.getLogger(__name__)
TYPES = ["zip", "jsonl", "json", "csv", "tsv", "txt"]
VERSION = "songrec_history_version"
REPORT = "songrec_history_report"


def merged(entries: Entries, imported: list[tuple[str, int]]) -> tuple[Entries, int]:
    """The list with the imported songs appended (own ratings win), and how many were added."""
    listed = {entry.song_id for entry in entries}
    added = 0
    for song_id, rating in imported:
        if song_id in listed or len(entries) >= MAX_SONGS:
            continue
        entries = add(entries, song_id, rating)
        added += 1
    return entries, added


def report(imported: ImportedHistory, added: int) -> str:
    """What the import did, for the visitor (Markdown-safe)."""
    lines = [plain(summary(imported).removeprefix("history: ").capitalize()) + "."]
    lines.append(f"Added {count(added)} to your list (ratings from your plays; edit them freely).")
    if imported.left_out:
        lines.append(
            f"The other {imported.left_out:,} songs you play stay out of your recommendations."
        )
    if imported.unmatched_examples:
        missing = "; ".join(f"{a} – {t}" for a, t in imported.unmatched_examples)
        lines.append(f"Not in this catalogue, e.g.: {plain(missing)}.")
    if imported.transform_note:
        note = imported.transform_note
        lines.append(plain(note[:1].upper() + note[1:]) + ".")
    return "  \n".join(lines)


def _import(catalogue: session.Catalogue, name: str, data: bytes) -> None:
    try:
        imported = import_history(read_history(data, name), catalogue.model, limit=MAX_SONGS)
    except (EtlError, ModelError) as exc:
        st.session_state[REPORT] = ("error", f"Could not import {plain(name)}: {plain(str(exc))}")
        return
    except Exception as exc:  # a page shows one line, never a traceback; the log keeps it
        log.exception("history import failed")
        line = f"{type(exc).__name__}: {exc}".splitlines()[0]
        st.session_state[REPORT] = ("error", f"Could not import {plain(name)}: {plain(line)}")
        return
    entries, added = merged(session.entries(), imported.entries)
    session.set_entries(entries)
    session.add_played(imported.played)
    st.session_state[REPORT] = ("success", report(imported, added))


def history_import(catalogue: session.Catalogue) -> None:
    """The expander with the uploader; imports as soon as a file arrives."""
    version = st.session_state.setdefault(VERSION, 0)
    with st.expander("Import your listening history"):
        st.caption(
            "A ListenBrainz export (the .zip from listenbrainz.org → Settings → Export, or its "
            ".jsonl) or a Last.fm scrobble CSV, up to "
            f"{MAX_INPUT_BYTES // 2**20} MB. It is read in memory and not kept."
        )
        upload = st.file_uploader(
            "History file",
            type=TYPES,
            key=f"history_upload_{version}",
            max_upload_size=MAX_INPUT_BYTES // 2**20,
        )
        if upload is not None:
            with st.spinner("Reading your history…"):
                _import(catalogue, upload.name, upload.getvalue())
            st.session_state[VERSION] = version + 1  # a fresh, empty uploader
            st.rerun()
    kept = st.session_state.pop(REPORT, None)
    if kept is not None:
        kind, text = kept
        (st.error if kind == "error" else st.success)(text)
