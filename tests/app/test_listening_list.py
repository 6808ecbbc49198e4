"""The list's rules: one row per song, ratings 1..10, remove, clear, clean."""

from __future__ import annotations

import pytest

from songrec.app.listening_list import (
    MAX_SONGS,
    Entry,
    ListError,
    add,
    as_pairs,
    clean,
    clear,
    from_pairs,
    remove,
    set_rating,
)


def test_adding_the_same_song_again_updates_its_rating_in_place():
    entries = add(add(add((), "a", 3), "b", 9), "a", 7)
    assert entries == (Entry("a", 7), Entry("b", 9))


def test_remove_and_change_rating_touch_only_that_song():
    entries = from_pairs([("a", 1), ("b", 2), ("c", 3)])
    assert remove(entries, "b") == (Entry("a", 1), Entry("c", 3))
    assert remove(entries, "zzz") == entries
    assert set_rating(entries, "c", 10) == (Entry("a", 1), Entry("b", 2), Entry("c", 10))
    assert set_rating(entries, "zzz", 4) == entries


def test_clear_empties_the_list():
    assert clear() == ()
    assert as_pairs(clear()) == []


@pytest.mark.parametrize("rating", [0, 11, 2.5, "7", None, True, float("nan")])
def test_ratings_outside_one_to_ten_are_refused(rating):
    with pytest.raises(ListError):
        add((), "a", rating)
    with pytest.raises(ListError):
        set_rating((Entry("a", 5),), "a", rating)


def test_whole_float_ratings_are_accepted_as_ints():
    entries = add((), "a", 6.0)
    assert entries == (Entry("a", 6),)
    assert isinstance(entries[0].rating, int)


def test_from_pairs_keeps_first_position_and_last_rating():
    assert from_pairs([("a", 1), ("b", 2), ("a", 9)]) == (Entry("a", 9), Entry("b", 2))


def test_clean_drops_unknown_songs_and_names_them():
    entries = from_pairs([("a", 1), ("gone", 2), ("c", 3)])
    kept, dropped = clean(entries, lambda sid: sid != "gone")
    assert kept == (Entry("a", 1), Entry("c", 3))
    assert dropped == ("gone",)


def test_the_list_has_a_size_limit_but_updates_still_work_at_it():
    full = from_pairs((f"s{i}", 5) for i in range(MAX_SONGS))
    with pytest.raises(ListError, match="at most"):
        add(full, "one more", 5)
    assert add(full, "s0", 9)[0] == Entry("s0", 9)
