"""A listener's list of rated songs: pure functions over an immutable tuple of entries.

One song appears once: adding it again changes its rating (the reference app added a
second row). The order is the order songs were first added, so the table does not jump
around when a rating changes. Nothing here knows about Streamlit, storage or the model;
`clean` takes a predicate so the caller decides which song ids are still valid.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable
from typing import NamedTuple

from songrec.models.data import RATING_MAX, RATING_MIN

# A list longer than this is almost certainly not typed in by hand; it also bounds what
# one visitor can make the server store.
MAX_SONGS = 500


class ListError(ValueError):
    """A rating outside 1..10, or a list that would grow past MAX_SONGS."""


class Entry(NamedTuple):
    """One rated song; `disliked` when the listener said "not for me" (a dislike whatever
    the rating, until the rating is changed)."""

    song_id: str
    rating: int
    disliked: bool = False


Entries = tuple[Entry, ...]


def check_rating(rating: object) -> int:
    """The rating as an int; ListError unless it is a whole number in 1..10."""
    if isinstance(rating, bool) or not isinstance(rating, numbers.Real):
        raise ListError(f"a rating must be a whole number {RATING_MIN}..{RATING_MAX}")
    # The range check first: it is False for NaN (an emptied table cell), which int() rejects.
    if not RATING_MIN <= rating <= RATING_MAX or rating != int(rating):
        raise ListError(f"rating {rating} is outside {RATING_MIN}..{RATING_MAX}")
    return int(rating)


def add(entries: Entries, song_id: str, rating: object, disliked: bool = False) -> Entries:
    """The list with `song_id` rated `rating`: updated in place if present, else appended."""
    value = check_rating(rating)
    if any(entry.song_id == song_id for entry in entries):
        return set_rating(entries, song_id, value, disliked)
    if len(entries) >= MAX_SONGS:
        raise ListError(f"the list holds at most {MAX_SONGS} songs; remove some first")
    return (*entries, Entry(song_id, value, disliked))


def set_rating(entries: Entries, song_id: str, rating: object, disliked: bool = False) -> Entries:
    """The list with the rating of `song_id` changed; unchanged if the song is absent."""
    value = check_rating(rating)
    return tuple(Entry(e.song_id, value, disliked) if e.song_id == song_id else e for e in entries)


def disliked_ids(entries: Entries) -> frozenset[str]:
    """The songs the listener called "not for me"."""
    return frozenset(entry.song_id for entry in entries if entry.disliked)


def remove(entries: Entries, song_id: str) -> Entries:
    """The list without `song_id` (unchanged if absent)."""
    return tuple(entry for entry in entries if entry.song_id != song_id)


def clear() -> Entries:
    """The empty list."""
    return ()


def from_pairs(pairs: Iterable[tuple[str, object]]) -> Entries:
    """A list from (song_id, rating) pairs: a repeated song keeps its first place, last rating."""
    entries: Entries = ()
    for song_id, rating in pairs:
        entries = add(entries, str(song_id), rating)
    return entries


def clean(entries: Entries, known: Callable[[str], bool]) -> tuple[Entries, tuple[str, ...]]:
    """(entries whose song is `known`, the song ids that were dropped)."""
    kept = tuple(entry for entry in entries if known(entry.song_id))
    dropped = tuple(entry.song_id for entry in entries if not known(entry.song_id))
    return kept, dropped


def as_pairs(entries: Entries) -> list[tuple[str, int]]:
    """(song_id, rating) pairs, the form `models.recommend.recommend` takes."""
    return [(entry.song_id, entry.rating) for entry in entries]


def mark_disliked(entries: Entries, song_ids: Iterable[str]) -> Entries:
    """The list with `song_ids` marked "not for me" (other entries unchanged)."""
    said = set(song_ids)
    return tuple(e._replace(disliked=True) if e.song_id in said else e for e in entries)
