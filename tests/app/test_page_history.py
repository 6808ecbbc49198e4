"""Importing a listening history on the page: real export formats, bad files, the list."""

from __future__ import annotations

from pathlib import Path

import pytest
from page_helpers import (
    add_song,
    button,
    export_lines,
    export_zip,
    listed,
    open_page,
    recommended,
    songs_of,
)

from songrec.etl.history import read_history
from songrec.models.history import import_history

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "listenbrainz-samples"


def upload(at, name: str, data: bytes) -> None:
    at.file_uploader[0].upload(name, data).run()
    assert not at.exception


def test_an_export_fills_the_list_with_the_models_ratings(page_env, model):
    at = open_page()
    artist = at.selectbox(key="artist").options[0]
    own = songs_of(model, artist)[0]
    add_song(at, artist, own, 3)
    plays = {0: 12, 5: 1, 7: 4, model.index_of(own): 9}
    upload(at, "listenbrainz_someone.zip", export_zip(export_lines(model, plays)))
    expected = import_history(read_history(export_lines(model, plays), "x.jsonl"), model)
    shown = listed(at)
    assert shown[own] == 3, "a song already listed keeps the visitor's rating"
    assert {s: r for s, r in expected.entries if s != own} == {
        s: r for s, r in shown.items() if s != own
    }
    assert len(shown) == 4
    assert any("Added 3 songs to your list" in s.value for s in at.success)
    assert len(at.file_uploader) == 1 and at.file_uploader[0].value is None, "uploader emptied"


@pytest.mark.realdata
def test_a_real_export_outside_the_catalogue_is_reported_not_added(page_env):
    at = open_page()
    upload(at, "user_export.jsonl", (SAMPLES / "user_export.jsonl").read_bytes())
    assert listed(at) == {}
    report = at.success[0].value
    assert "0 in the catalogue" in report and "Not in this catalogue" in report


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("listens.jsonl", b"\x89PNG\r\n\x1a\n" + bytes(200)),
        ("notes.csv", b"colour,size\nred,3\n"),
        ("broken.zip", export_zip(b'{"listened_at": 1}\n')[:40]),
        ("empty.jsonl", b""),
    ],
)
def test_a_bad_or_foreign_file_gets_one_line(page_env, name, data):
    at = open_page()
    upload(at, name, data)
    assert listed(at) == {}
    assert len(at.error) == 1
    message = at.error[0].value
    assert message.startswith(f"Could not import {name.replace('.', chr(92) + '.')}")
    assert "\n" not in message and "Traceback" not in message


def test_songs_past_the_lists_cap_stay_out_of_recommendations(page_env, model, monkeypatch):
    from songrec.app.page import history_upload

    monkeypatch.setattr(history_upload, "MAX_SONGS", 2)
    at = open_page()
    played = {0: 9, 1: 7, 2: 5, 3: 3}  # the two least played go past the cap
    upload(at, "listens.jsonl", export_lines(model, played))
    assert len(listed(at)) == 2
    assert any("other 2 songs you play stay out" in s.value for s in at.success)
    button(at, "Recommend songs").click().run()
    shown = set(recommended(at)["song_id"])
    assert len(shown) == 10 and not shown & {str(model.song_ids[i]) for i in played}
