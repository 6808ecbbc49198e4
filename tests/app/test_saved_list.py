"""Saved lists: tokens, the stored document, the SQLite store, and cleanup on restore."""

from __future__ import annotations

import json
import sqlite3

import pytest

from songrec.app.listening_list import Entry, add, from_pairs
from songrec.app.saved_list import (
    SCHEMA_VERSION,
    ListStore,
    SavedListError,
    decode,
    encode,
    is_token,
    new_token,
    restore,
)


def test_tokens_are_random_and_recognised():
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(is_token(t) for t in tokens)
    for bad in ["", "abc", "x" * 42, "x" * 44, "a/" * 21 + "a", None, 12, "ü" * 43]:
        assert not is_token(bad)


def test_a_list_round_trips_through_its_document():
    entries = from_pairs([("a" * 16, 3), ("b" * 16, 10)])
    document = encode(entries)
    assert json.loads(document)["version"] == SCHEMA_VERSION
    assert "not_for_me" not in json.loads(document), "lists without it read as before"
    assert decode(document) == entries
    said = add(entries, "c" * 16, 1, disliked=True)
    assert decode(encode(said)) == said and decode(encode(said))[-1].disliked


@pytest.mark.parametrize(
    "payload",
    [
        "not json at all",
        "[1, 2, 3]",
        '{"songs": []}',
        '{"version": 0, "songs": [["a", 3]]}',
        '{"version": 1, "songs": "a,b"}',
        '{"version": 1, "songs": [["a", 11]]}',
        '{"version": 1, "songs": [["a"]]}',
        '{"version": 1, "songs": [1, 2]}',
        '{"version": 1, "songs": [["a", 3]]}' + " " * 40_000,
        '{"version": 1, "songs": [["a", 3]], "not_for_me": "a"}',
        '{"version": 1, "songs": [["a", 3]], "not_for_me": [3]}',
    ],
)
def test_damaged_or_older_documents_are_refused(payload):
    with pytest.raises(SavedListError):
        decode(payload)
    restored = restore(payload, lambda sid: True)
    assert restored.entries == ()
    assert "reset" in restored.notice


def test_restore_drops_songs_the_model_no_longer_has_with_a_notice():
    document = encode(from_pairs([("keep", 4), ("gone1", 5), ("gone2", 6)]))
    restored = restore(document, lambda sid: sid == "keep")
    assert restored.entries == (Entry("keep", 4),)
    assert restored.notice.startswith("2 songs")
    assert restore(document, lambda sid: True).notice is None
    assert restore(None, lambda sid: True).entries == ()


def test_the_store_keeps_lists_apart_and_never_stores_the_token(tmp_path):
    path = tmp_path / "lists.sqlite3"
    store = ListStore(path)
    one, two = new_token(), new_token()
    store.save(one, from_pairs([("a", 1)]))
    store.save(two, from_pairs([("b", 2)]))
    # A second store on the same file (another server process) sees the same rows.
    again = ListStore(path)
    assert decode(again.load(one)) == (Entry("a", 1),)
    assert decode(again.load(two)) == (Entry("b", 2),)
    assert again.load(new_token()) is None
    with sqlite3.connect(path) as db:
        keys = [row[0] for row in db.execute("SELECT key FROM lists")]
    assert len(keys) == 2 and one not in keys and two not in keys


def test_saving_an_empty_list_forgets_it(tmp_path):
    store = ListStore(tmp_path / "lists.sqlite3")
    token = new_token()
    store.save(token, from_pairs([("a", 1)]))
    store.save(token, ())
    assert store.load(token) is None


def test_prune_forgets_old_lists_only(tmp_path):
    store = ListStore(tmp_path / "lists.sqlite3")
    token = new_token()
    store.save(token, from_pairs([("a", 1)]))
    assert store.prune(older_than_days=1) == 0
    assert store.prune(older_than_days=-1) == 1
    assert store.load(token) is None
