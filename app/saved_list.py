"""Lists that outlive the browser tab: a server-side SQLite store keyed by a secret token.

The browser keeps only a random token (`secrets.token_urlsafe(32)`, 256 bits) in a
cookie; the server keeps the list under the token's sha256, so neither the database nor
its backups hold a usable token. Nothing about a list is ever in a URL: a visitor can
only reach the list whose token their own browser sends, and guessing one is hopeless.

A saved value is a small JSON document with a schema version. Reading it never fails:
garbage, an older schema, or songs the current model no longer has are cleaned up and
reported as a short notice for the page to show.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from songrec.app.listening_list import (
    MAX_SONGS,
    Entries,
    ListError,
    as_pairs,
    clean,
    from_pairs,
    mark_disliked,
)

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
TOKEN_BYTES = 32
_TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")
# A payload bigger than this cannot come from MAX_SONGS entries: refuse to parse it.
_MAX_PAYLOAD = MAX_SONGS * 64 + 1024

_CREATE = """
CREATE TABLE IF NOT EXISTS lists (
    key TEXT PRIMARY KEY,
    payload TEXT NOT NULL,
    updated_at REAL NOT NULL
)
"""


class SavedListError(ValueError):
    """A stored list that cannot be read back (garbage or an unknown schema)."""


@dataclass(frozen=True)
class Restored:
    """What came back from storage: the usable entries and, if anything was fixed, why."""

    entries: Entries
    notice: str | None = None


def new_token() -> str:
    """A fresh unguessable token for one browser."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def is_token(value: object) -> bool:
    """Whether `value` has the shape of a token made by `new_token`."""
    return isinstance(value, str) and _TOKEN_PATTERN.fullmatch(value) is not None


def _key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def encode(entries: Entries) -> str:
    """The JSON document stored for a list."""
    document = {"version": SCHEMA_VERSION, "songs": as_pairs(entries)}
    said = [entry.song_id for entry in entries if entry.disliked]
    if said:  # optional: lists saved before "not for me" existed simply lack it
        document["not_for_me"] = said
    return json.dumps(document)


def decode(payload: str) -> Entries:
    """Entries from a stored document; SavedListError if it is not one this version wrote."""
    if len(payload) > _MAX_PAYLOAD:
        raise SavedListError("the saved list is too large")
    try:
        document = json.loads(payload)
    except (ValueError, RecursionError):  # deep nesting ("[" * 30000) overflows the parser
        raise SavedListError("the saved list is not valid JSON") from None
    if not isinstance(document, dict) or "version" not in document:
        raise SavedListError("the saved list has no version")
    if document["version"] != SCHEMA_VERSION:
        raise SavedListError(f"the saved list is from another version ({document['version']!r})")
    songs = document.get("songs")
    if not isinstance(songs, list):
        raise SavedListError("the saved list has no songs")
    said = document.get("not_for_me", [])
    if not isinstance(said, list) or not all(isinstance(s, str) for s in said):
        raise SavedListError("the saved list's not_for_me is not a list of song ids")
    try:
        return mark_disliked(from_pairs((str(sid), rating) for sid, rating in songs), said)
    except (TypeError, ValueError, ListError) as exc:
        raise SavedListError(f"the saved list has a bad entry ({exc})") from None


def restore(payload: str | None, known: Callable[[str], bool]) -> Restored:
    """The usable part of a stored document, with a notice when something was dropped."""
    if payload is None:
        return Restored(())
    try:
        entries = decode(payload)
    except SavedListError as exc:
        log.warning("discarding a saved list: %s", exc)
        return Restored((), "Your saved list could not be read and was reset.")
    kept, dropped = clean(entries, known)
    if not dropped:
        return Restored(kept)
    songs = "song" if len(dropped) == 1 else "songs"
    return Restored(
        kept,
        f"{len(dropped)} {songs} from your saved list are no longer available and were removed.",
    )


class ListStore:
    """Lists by token in one SQLite file; every call opens its own short connection.

    Streamlit runs each visitor's script in its own thread, so connections are never
    shared; SQLite's own locking (with a busy timeout) serialises the writes.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            # WAL lets readers go on while one visitor's list is being written.
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(_CREATE)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=5.0)
        try:
            with db:  # commits on success, rolls back on error
                yield db
        finally:
            db.close()

    def load(self, token: str) -> str | None:
        """The stored document of `token`, or None."""
        with self._connect() as db:
            row = db.execute("SELECT payload FROM lists WHERE key = ?", (_key(token),)).fetchone()
        return None if row is None else str(row[0])

    def save(self, token: str, entries: Entries) -> None:
        """Store the list of `token`; an empty list deletes the row."""
        if not entries:
            self.delete(token)
            return
        with self._connect() as db:
            db.execute(
                "INSERT INTO lists (key, payload, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET payload = excluded.payload, "
                "updated_at = excluded.updated_at",
                (_key(token), encode(entries), time.time()),
            )

    def delete(self, token: str) -> None:
        """Forget the list of `token`."""
        with self._connect() as db:
            db.execute("DELETE FROM lists WHERE key = ?", (_key(token),))

    def write_raw(self, token: str, payload: str) -> None:
        """Store an arbitrary document (for tests of damaged or older lists)."""
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO lists (key, payload, updated_at) VALUES (?, ?, ?)",
                (_key(token), payload, time.time()),
            )

    def prune(self, older_than_days: float) -> int:
        """Delete lists untouched for `older_than_days`; returns how many."""
        cutoff = time.time() - older_than_days * 86400
        with self._connect() as db:
            return db.execute("DELETE FROM lists WHERE updated_at < ?", (cutoff,)).rowcount
