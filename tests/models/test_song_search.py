"""The song matcher: every word, any case, any accent, word starts first, then plays."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from songrec.models.search import SongIndex, fold, query_words

NAMES = [
    ("Beyoncé", "Halo", 50),
    ("The Beatles", "Let It Be", 40),
    ("Sigur Rós", "Hoppípolla", 30),
    ("Heartbeat City", "Drive", 60),
    ("Die Ärzte", "Schrei nach Liebe", 20),
    ("Straße", "Weiß", 10),
    ("ＡＢＢＡ", "Dancing Queen", 5),
]


def _index(rows=NAMES) -> SongIndex:
    artists, tracks, plays = zip(*rows, strict=True) if rows else ((), (), ())
    return SongIndex(list(artists), list(tracks), list(plays))


def _names(rows: list[int]) -> list[str]:
    return [NAMES[i][0] for i in rows]


def test_case_and_accents_do_not_matter():
    index = _index()
    for query in ("beyonce", "BEYONCÉ", "Beyonce halo", "halo beyoncé"):
        assert _names(index.search(query)) == ["Beyoncé"]
    assert _names(index.search("sigur ros hoppipolla")) == ["Sigur Rós"]
    assert _names(index.search("die arzte")) == ["Die Ärzte"]
    assert _names(index.search("strasse weiss")) == ["Straße"]
    assert _names(index.search("abba")) == ["ＡＢＢＡ"]  # full-width letters fold to ASCII


def test_every_word_must_match_in_artist_or_title():
    index = _index()
    assert _names(index.search("beatles be")) == ["The Beatles"]
    assert index.search("beatles halo") == []
    assert index.search("   ") == [] and index.search("x", limit=0) == []


def test_a_word_start_beats_a_more_played_inner_match():
    # "Heartbeat City" is played more, but "beat" starts a word only in "The Beatles".
    assert _names(_index().search("beat")) == ["The Beatles", "Heartbeat City"]


def test_ties_go_to_the_most_played():
    rows = [("Artist", f"Song {i}", plays) for i, plays in enumerate([3, 9, 1, 7])]
    found = _index(rows).search("song", limit=3)
    assert found == [1, 3, 0]


def test_limit_and_long_queries_are_bounded():
    rows = [("Same", f"Track {i}", i) for i in range(100)]
    assert len(_index(rows).search("same", limit=7)) == 7
    assert len(query_words("a " * 1000)) == 1
    assert len(query_words(" ".join(f"w{i}" for i in range(50)))) <= 12


_letters = st.sampled_from(list("abAB éÉ-ß\nø"))
_name = st.text(_letters, min_size=0, max_size=8)


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(st.tuples(_name, _name, st.integers(0, 5)), max_size=25),
    query=st.text(_letters, max_size=6),
)
def test_finds_exactly_what_a_plain_scan_finds(rows, query):
    # The reference: a row matches when its folded "artist title" holds every folded word.
    words = fold(query).split()
    expected = {
        i for i, (a, t, _) in enumerate(rows) if all(w in f"{fold(a)} {fold(t)}" for w in words)
    }
    found = _index(rows).search(query, limit=len(rows) + 1) if rows else []
    assert set(found) == (expected if words else set())
    assert len(found) == len(set(found))
