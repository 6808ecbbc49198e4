"""Song identity: the normalized (artist, track) key and its stable id (Python twin of the SQL).

The definition is the listens -> plays SQL (etl/sql/listens_to_plays.sql and etl.aggregate):
whitespace runs ([\t\n\f\r ], RE2's \\s) become one space, spaces are trimmed (only
spaces: no-break and other unicode spaces are part of the name), and letters are
lower-cased one character at a time (the simple case mapping DuckDB, BigQuery and Arrow use,
not Python's context-dependent one: "İ" -> "i", a final "Σ" -> "σ"). The id hashes the
artist key's length in UTF-8 bytes before the two keys, so no two (artist, track) pairs
share a key: ("a\x1fb", "c") and ("a", "b\x1fc") once did.
"""

from __future__ import annotations

import hashlib
import re

import pyarrow as pa
import pyarrow.compute as pc

# RE2's \s, which both BigQuery and DuckDB use: ASCII whitespace only.
_WHITESPACE = re.compile(r"[\t\n\f\r ]+")


def _lower(char: str) -> str:
    # Python lower-cases with the full mapping ("İ" -> "i" + a combining dot); the SQL
    # engines use the simple one, which is the first character of the full one.
    return char.lower()[:1]


def normalize(name: str) -> str:
    """Collapse whitespace runs, trim spaces and lower-case, as the listens -> plays SQL does."""
    collapsed = _WHITESPACE.sub(" ", name).strip(" ")
    return collapsed.lower() if collapsed.isascii() else "".join(map(_lower, collapsed))


def key_text(artist_key: str, track_key: str) -> str:
    """The hashed text of a song: the artist key's UTF-8 length, ':', then both keys."""
    return f"{len(artist_key.encode('utf-8'))}:{artist_key}{track_key}"


def song_id(artist_name: str, track_name: str) -> str:
    """The stable 16-hex-digit id of a song: same song, same id, on every run and source."""
    key = key_text(normalize(artist_name), normalize(track_name))
    return hashlib.md5(key.encode("utf-8")).hexdigest()[:16]


def normalize_array(names: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Vectorized `normalize` for Arrow string arrays (formats that arrive already counted)."""
    collapsed = pc.replace_substring_regex(names, pattern=r"[\t\n\f\r ]+", replacement=" ")
    return pc.utf8_lower(pc.utf8_trim(collapsed, characters=" "))
