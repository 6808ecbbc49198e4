"""Song identity: the normalized (artist, track) key and its stable id (Python twin of the SQL)."""

from __future__ import annotations

import hashlib
import re

import pyarrow as pa
import pyarrow.compute as pc

# RE2's \s, which both BigQuery and DuckDB use: ASCII whitespace only.
_WHITESPACE = re.compile(r"[\t\n\f\r ]+")


def normalize(name: str) -> str:
    """Collapse whitespace runs, trim and lower-case, as the listens -> plays SQL does."""
    return _WHITESPACE.sub(" ", name).strip(" ").lower()


def song_id(artist_name: str, track_name: str) -> str:
    """The stable 16-hex-digit id of a song: same song, same id, on every run and source."""
    key = f"{normalize(artist_name)}\x1f{normalize(track_name)}"
    return hashlib.md5(key.encode("utf-8")).hexdigest()[:16]


def normalize_array(names: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Vectorized `normalize` for Arrow string arrays (formats that arrive already counted)."""
    collapsed = pc.replace_substring_regex(names, pattern=r"[\t\n\f\r ]+", replacement=" ")
    return pc.utf8_lower(pc.utf8_trim(collapsed, characters=" "))
