"""MusicBrainz recording ids (MBIDs): which values count as one (Python twin of the SQL).

The definition is the listens -> plays SQL (etl/sql/listens_to_plays.sql): the value is
lower-cased, and kept only when it is then a canonical UUID, 8-4-4-4-12 lower-case hex
digits with nothing around them; anything else (blank, braces, spaces, a truncated id)
becomes NULL. Only ASCII letters lower-case to hex digits, in the SQL engines' simple case
mapping and in Python's alike, so a value holding any other character is never an id.
"""

from __future__ import annotations

import re

MBID_PATTERN = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_MBID = re.compile(MBID_PATTERN)
MUSICBRAINZ_RECORDING_URL = "https://musicbrainz.org/recording/{}"


def is_mbid(value: object) -> bool:
    """Whether `value` is already a canonical (lower-case) MBID."""
    return isinstance(value, str) and _MBID.fullmatch(value) is not None


def valid_mbid(value: object) -> str | None:
    """The canonical MBID a raw value stands for, as the SQL keeps it; None if it is none."""
    if not isinstance(value, str) or not value.isascii():
        return None
    lowered = value.lower()
    return lowered if _MBID.fullmatch(lowered) else None


def recording_url(mbid: str | None) -> str | None:
    """The MusicBrainz page of a recording id; None when there is no valid id."""
    return MUSICBRAINZ_RECORDING_URL.format(mbid) if is_mbid(mbid) else None
