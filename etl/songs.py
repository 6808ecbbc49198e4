"""Song identity: the normalized (artist, track) key and its stable id (Python twin of the SQL)."""

from __future__ import annotations

import hashlib
import re

# RE2's \s, which both BigQuery and DuckDB use: ASCII whitespace only.
_WHITESPACE = re.compile(r"[\t\n\f\r ]+")


def normalize(name: str) -> str:
    """Collapse whitespace runs, trim and lower-case, as the listens -> plays SQL does."""
    return _WHITESPACE.sub(" ", name).strip(" ").lower()


def song_id(artist_name: str, track_name: str) -> str:
    """The stable 16-hex-digit id of a song: same song, same id, on every run and source."""
    key = f"{normalize(artist_name)}\x1f{normalize(track_name)}"
    return hashlib.md5(key.encode("utf-8")).hexdigest()[:16]
