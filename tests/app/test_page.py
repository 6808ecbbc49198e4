"""The page driven by Streamlit's AppTest: the whole flow, privacy, the shared model, bad input.

AppTest cannot send cookies, so a test that plays "the same browser again" seeds the
session's token the way the cookie would; the cookie itself is exercised by the browser
test (test_browser.py).
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from page_helpers import APP, add_song, button, listed, open_page, recommended, songs_of
from streamlit.testing.v1 import AppTest

from songrec.app.listening_list import from_pairs
from songrec.app.page import session
from songrec.app.page.text import plain
from songrec.app.saved_list import ListStore, encode, new_token
from songrec.etl.output import replace_folder
from songrec.models.artifact import load_model


def test_the_whole_flow(page_env, model):
    at = open_page()
    assert [s.label for s in at.selectbox][:2] == ["Artist", "Song"]
    assert at.slider(key="rating").min == 1 and at.slider(key="rating").max == 10
    assert any(info.value.startswith("Your list is empty") for info in at.info)
    artist = at.selectbox(key="artist").options[2]
    first, second = songs_of(model, artist)[:2]

    add_song(at, artist, first, 9)
    assert listed(at) == {first: 9}
    add_song(at, artist, first, 4)
    assert listed(at) == {first: 4}, "adding a song again must update it, not duplicate it"

    other = at.selectbox(key="artist").options[5]
    third = songs_of(model, other)[0]
    add_song(at, artist, second, 10)
    add_song(at, other, third, 2)
    assert list(listed(at)) == [first, second, third]

    # Delete the first row and change the third's rating, as the table's editor would.
    at.session_state[at.data_editor[0].key] = {
        "edited_rows": {2: {"rating": 7}},
        "added_rows": [],
        "deleted_rows": [0],
    }
    at.run()
    assert not at.exception
    assert listed(at) == {second: 10, third: 7}

    button(at, "Recommend songs").click().run()
    table = recommended(at)
    assert len(table) == 10
    assert list(table["rank"]) == list(range(1, 11))
    assert table["why"].str.startswith("because you rated").all()
    names = set(zip(model.songs["artist_name"], model.songs["track_name"], strict=True))
    rated = {
        tuple(model.songs.loc[model.songs["song_id"] == s, ["artist_name", "track_name"]].iloc[0])
        for s in listed(at)
    }
    shown = set(zip(table["artist"], table["song"], strict=True))
    assert shown <= names and not shown & rated

    button(at, "Clear list").click().run()
    assert listed(at) == {}
    assert len(recommended(at)) == 0
    button(at, "Recommend songs").click().run()
    assert not at.exception and not at.error
    assert any(info.value.startswith("Your list is empty") for info in at.info)


def test_exact_retrain_mode_gives_ten_unrated_songs(page_env, model):
    at = open_page()
    artist = at.selectbox(key="artist").options[0]
    song = songs_of(model, artist)[0]
    add_song(at, artist, song, 10)
    at.radio[0].set_value("Exact retrain")
    button(at, "Recommend songs").click().run()
    assert not at.exception and not at.error
    table = recommended(at)
    assert len(table) == 10
    track = model.songs.loc[model.songs["song_id"] == song, "track_name"].iloc[0]
    assert not ((table["artist"] == artist) & (table["song"] == track)).any()


def test_a_small_host_can_switch_the_exact_retrain_off(page_env, monkeypatch):
    monkeypatch.setenv("SONGREC_EXACT_RETRAIN", "off")
    assert open_page().radio[0].options == ["Instant (fold-in)"]
    monkeypatch.setenv("SONGREC_EXACT_RETRAIN", "on")
    assert open_page().radio[0].options == ["Instant (fold-in)", "Exact retrain"]


def test_two_sessions_keep_separate_lists(page_env, model):
    one, two = open_page(), open_page()
    artists = one.selectbox(key="artist").options
    a, b = songs_of(model, artists[0])[0], songs_of(model, artists[1])[0]
    add_song(one, artists[0], a, 8)
    two.run()
    assert listed(two) == {}
    add_song(two, artists[1], b, 3)
    one.run()
    assert listed(one) == {a: 8} and listed(two) == {b: 3}
    assert one.session_state[session.TOKEN] != two.session_state[session.TOKEN]


def test_the_shared_model_is_unchanged_by_many_recommendations(page_env, model_dir, model):
    shared = session.catalogue(model_dir).model
    before = [shared.item_factors.copy(), shared.item_bias.copy(), shared.song_ids.copy()]
    at = open_page()
    artists = at.selectbox(key="artist").options
    for i in range(12):
        add_song(
            at,
            artists[i % len(artists)],
            songs_of(model, artists[i % len(artists)])[i % 3],
            1 + i % 10,
        )
        button(at, "Recommend songs").click().run()
        assert len(recommended(at)) == 10
    at.radio[0].set_value("Exact retrain")
    button(at, "Recommend songs").click().run()
    assert len(recommended(at)) == 10
    assert session.catalogue(model_dir).model is shared, "the model must be loaded only once"
    fresh = load_model(model_dir)
    for now, then, disk in zip(
        [shared.item_factors, shared.item_bias, shared.song_ids],
        before,
        [fresh.item_factors, fresh.item_bias, fresh.song_ids],
        strict=True,
    ):
        assert not now.flags.writeable
        np.testing.assert_array_equal(now, then)
        np.testing.assert_array_equal(now, disk)


def test_the_list_comes_back_for_the_same_browser_only(page_env, model):
    token = new_token()
    first = open_page(token)
    artist = first.selectbox(key="artist").options[1]
    song = songs_of(model, artist)[1]
    add_song(first, artist, song, 6)
    assert listed(open_page(token)) == {song: 6}
    assert listed(open_page(new_token())) == {}
    assert listed(open_page()) == {}


def test_a_saved_list_with_unknown_songs_is_cleaned_with_a_notice(page_env, model):
    token = new_token()
    known = model.song_ids[0]
    ListStore(page_env).write_raw(
        token, encode(from_pairs([("ffffffffffffffff", 5), (known, 9), ("eeeeeeeeeeeeeeee", 2)]))
    )
    at = open_page(token)
    assert listed(at) == {known: 9}
    assert any("2 songs" in w.value and "removed" in w.value for w in at.warning)
    again = open_page(token)
    assert listed(again) == {known: 9} and len(again.warning) == 0


@pytest.mark.parametrize("stored", ["garbage{{", '{"version": 0, "songs": [["x", 3]]}'])
def test_a_damaged_or_older_saved_list_is_reset_with_a_notice(page_env, stored):
    token = new_token()
    ListStore(page_env).write_raw(token, stored)
    at = open_page(token)
    assert listed(at) == {}
    assert any("could not be read" in w.value for w in at.warning)
    assert ListStore(page_env).load(token) is None


def test_a_garbage_token_from_the_browser_gets_a_fresh_one(page_env):
    at = open_page("'; DROP TABLE lists; --")
    assert any("could not be read" in w.value for w in at.warning)
    assert len(at.session_state[session.TOKEN]) == 43


def test_the_page_works_without_a_list_store(model_dir, tmp_path, monkeypatch, model):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("SONGREC_MODEL", str(model_dir))
    monkeypatch.setenv("SONGREC_LISTS", str(blocker / "lists.sqlite3"))
    at = open_page()
    artist = at.selectbox(key="artist").options[0]
    add_song(at, artist, songs_of(model, artist)[0], 7)
    assert len(listed(at)) == 1
    assert any("lasts for this visit" in c.value for c in at.caption)


def test_a_tampered_model_shows_a_clear_error(tampered_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SONGREC_MODEL", str(tampered_model_dir))
    monkeypatch.setenv("SONGREC_LISTS", str(tmp_path / "lists.sqlite3"))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert "checksum mismatch for item_factors.npy" in at.error[0].value
    assert len(at.selectbox) == 0


def test_a_missing_model_shows_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("SONGREC_MODEL", str(tmp_path / "nowhere"))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert "does not exist" in at.error[0].value


def test_explore_shows_similar_songs_and_artists(page_env, model):
    at = open_page()
    assert len(at.selectbox) == 2, "the closed Explore tab must not run"
    # AppTest has no tab click; the tabs' widget state is what a click would send.
    at.session_state["view"] = "Explore"
    at.run()
    assert [s.label for s in at.selectbox] == ["Artist to explore", "Song to explore"]
    artist = at.selectbox(key="explore_artist").options[3]
    at.selectbox(key="explore_artist").set_value(artist).run()
    song = at.selectbox(key="explore_song").value
    assert song in songs_of(model, artist)
    tables = {tuple(d.value.columns): d.value for d in at.dataframe}
    songs = tables[("artist", "song", "similarity", "listen")]
    artists = tables[("artist", "similarity", "songs")]
    assert len(songs) == 10 and songs["similarity"].is_monotonic_decreasing
    assert artist not in set(artists["artist"]) and len(artists) >= 3
    assert any(m.value == f"**Artists like {artist}**" for m in at.markdown)


def test_names_from_the_data_are_shown_as_text_not_markdown():
    shown = plain("[click](javascript:alert(1)) **Me** <b>#1</b>")
    assert "[" not in shown.replace("\\[", "") and "*" not in shown.replace("\\*", "")
    assert shown.replace("\\", "") == "[click](javascript:alert(1)) **Me** <b>#1</b>"


def test_a_model_replaced_under_an_open_session_drops_stale_songs(
    model_dir, other_model_dir, model, tmp_path, monkeypatch
):
    live = tmp_path / "live"
    shutil.copytree(model_dir, live)
    monkeypatch.setenv("SONGREC_MODEL", str(live))
    monkeypatch.setenv("SONGREC_LISTS", str(tmp_path / "lists.sqlite3"))
    token = new_token()
    ListStore(tmp_path / "lists.sqlite3").write_raw(
        token, encode(from_pairs([(model.song_ids[0], 9), (model.song_ids[1], 4)]))
    )
    at = open_page(token)
    assert listed(at) == {model.song_ids[0]: 9, model.song_ids[1]: 4}
    button(at, "Recommend songs").click().run()
    assert len(recommended(at)) == 10
    # Retrained on other data (other song ids), swapped in while the page is open.
    replace_folder(live, lambda tmp: shutil.copytree(other_model_dir, tmp, dirs_exist_ok=True))
    at.run()
    assert not at.exception
    assert listed(at) == {}
    assert any("catalogue was updated: 2 songs" in w.value for w in at.warning)
    assert len(recommended(at)) == 0
