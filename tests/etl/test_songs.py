"""Song identity: the SQL, the Python twin and the Arrow twin agree on tricky spellings."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from songrec.etl.aggregate import PlaysAggregator
from songrec.etl.listens import LISTEN_SCHEMA
from songrec.etl.songs import normalize, normalize_array, song_id

SPELLINGS = [
    ("The Beatles", "Let It Be"),
    ("the beatles", "let it be"),
    ("  The   Beatles ", "Let\tIt  Be"),
    ("THE BEATLES", "LET IT BE\n"),
    ("Björk", "Jóga"),
    ("BJÖRK", "JÓGA"),
]


def test_normalize_collapses_case_and_whitespace():
    assert normalize("  The \t Beatles\n") == "the beatles"
    assert normalize("Björk") == normalize("BJÖRK") == "björk"


def test_song_id_is_stable_and_spelling_blind():
    ids = {song_id(a, t) for a, t in SPELLINGS[:4]}
    assert len(ids) == 1
    assert song_id("The Beatles", "Let It Be") != song_id("The Beatles", "Yesterday")
    # The id is a pure function of the key: pinned so a change of hashing is noticed.
    assert song_id("a", "b") == __import__("hashlib").md5(b"1:ab").hexdigest()[:16]
    assert song_id("Björk", "x") == __import__("hashlib").md5("6:björkx".encode()).hexdigest()[:16]


def test_no_two_songs_share_a_key():
    # Joined with a separator, these two once hashed the same.
    assert song_id("a\x1fb", "c") != song_id("a", "b\x1fc")
    assert song_id("ab", "c") != song_id("a", "bc")


def test_arrow_twin_matches_python():
    names = [a for a, _ in SPELLINGS] + [t for _, t in SPELLINGS]
    assert normalize_array(pa.array(names)).to_pylist() == [normalize(n) for n in names]


def _aggregate(pairs: list[tuple[str, str]]) -> tuple[pa.Table, pa.Table]:
    """(plays, songs) of one listener's listens of `pairs`, through the real aggregation."""
    when = datetime(2020, 1, 1, tzinfo=UTC)
    listens = pa.Table.from_pylist(
        [
            {"user_name": "u", "artist_name": a, "track_name": t, "listened_at": when}
            for a, t in pairs
        ],
        schema=LISTEN_SCHEMA,
    )
    aggregator = PlaysAggregator()
    try:
        aggregator.add(listens)
        return aggregator.finish()
    finally:
        aggregator.close()


def test_sql_ids_match_python_ids():
    plays, songs = _aggregate(SPELLINGS)
    expected = {song_id(a, t) for a, t in SPELLINGS}
    assert set(songs.column("song_id").to_pylist()) == expected
    assert len(expected) == 2
    ids, counts = plays.column("song_id").to_pylist(), plays.column("plays").to_pylist()
    counts = dict(zip(ids, counts, strict=True))
    assert counts == {song_id(*SPELLINGS[0]): 4, song_id(*SPELLINGS[4]): 2}


@pytest.mark.parametrize("blank", ["", "   ", "\t\n"])
def test_blank_names_are_dropped_by_the_query(blank):
    when = datetime(2020, 1, 1, tzinfo=UTC)
    listens = pa.Table.from_pylist(
        [
            {"user_name": "u", "artist_name": blank, "track_name": "x", "listened_at": when},
            {"user_name": "u", "artist_name": "a", "track_name": "x", "listened_at": when},
        ],
        schema=LISTEN_SCHEMA,
    )
    aggregator = PlaysAggregator()
    aggregator.add(listens)
    plays, _ = aggregator.finish()
    assert plays.num_rows == 1


# Names as hostile data writes them: unicode spaces, case oddities, separators, marks.
NAME_CHARS = "aZ \t\n\u00a0\u2003\u3000\x1f:İIıẞßǅΣσςÖö\u0301\u200b1"
names = st.one_of(
    st.text(alphabet=NAME_CHARS, min_size=1, max_size=8),
    st.text(min_size=1, max_size=8),
)


def _sql_songs(pairs: list[tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """song_id -> the (artist, track) spellings the real aggregation kept for it."""
    _, songs = _aggregate(pairs)
    return {row["song_id"]: (row["artist_name"], row["track_name"]) for row in songs.to_pylist()}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(names, names), min_size=1, max_size=25))
def test_sql_python_and_arrow_agree_on_generated_unicode(pairs):
    kept = [
        (a, t) for a, t in pairs if re.search(r"[^\t\n\f\r ]", a) and re.search(r"[^\t\n\f\r ]", t)
    ]
    by_sql = _sql_songs(pairs) if kept else {}
    # Every listen's song is the song Python computes, and nothing else is there.
    assert set(by_sql) == {song_id(a, t) for a, t in kept}
    # One song, one key: spellings the SQL put under one id normalize alike in Python.
    for sid, (artist, track) in by_sql.items():
        assert song_id(artist, track) == sid
    flat = [n for pair in pairs for n in pair]
    assert normalize_array(pa.array(flat)).to_pylist() == [normalize(n) for n in flat]
