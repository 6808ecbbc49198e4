"""Acting on the page: search any song, and act on each recommendation in place."""

from __future__ import annotations

from page_helpers import add_song, button, listed, open_page, recommended, songs_of

from songrec.app.page import session
from songrec.app.page.song_rows import NOT_FOR_ME, stars_to_rating
from songrec.models.recommender import Recommender
from songrec.models.search import search_songs


def _recommend_for(at, model, ratings: int = 3) -> None:
    artist = at.selectbox(key="artist").options[0]
    for song in songs_of(model, artist)[:ratings]:
        add_song(at, artist, song, 9)
    button(at, "Recommend songs").click().run()
    assert not at.exception and len(recommended(at)) == 10


def test_search_finds_songs_of_any_artist_and_adds_them(page_env, model):
    at = open_page()
    artists = at.selectbox(key="artist").options
    assert artists == sorted(artists, key=str.casefold), "artists are listed by name"
    target = artists[-1]
    at.text_input(key="search").set_value(f"  {target.upper()}  song ").run()
    found = at.selectbox(key="found_song")
    assert found.label == "Matching songs" and found.options
    assert all(label.startswith(f"{target} – ") for label in found.options)
    expected = search_songs(model, target, limit=len(found.options))
    assert found.value == expected["song_id"].iloc[0], "the best match comes first"
    assert "artist" not in [s.key for s in at.selectbox], "search replaces the artist picker"
    choice = expected["song_id"].iloc[1]
    found.set_value(choice)
    at.slider(key="rating").set_value(7)
    button(at, "Add to list").click().run()
    assert listed(at) == {choice: 7}

    at.text_input(key="search").set_value("no such song anywhere").run()
    assert any(c.value.startswith("No song matches") for c in at.caption)
    assert next(b for b in at.button if b.label == "Add to list").disabled
    at.text_input(key="search").set_value("").run()
    assert at.selectbox(key="artist").options == artists


def test_adding_a_recommended_song_updates_both_lists_in_place(page_env, model):
    at = open_page()
    _recommend_for(at, model)
    before = recommended(at)
    pick = before["song_id"].iloc[2]
    at.feedback(key=f"rec_rate_{pick}").set_value(3).run()  # four stars
    assert not at.exception
    assert listed(at)[pick] == stars_to_rating(3) == 8
    after = recommended(at)
    assert len(after) == 10 and pick not in set(after["song_id"])
    assert list(after["rank"]) == list(range(1, 11)), "the visitor stays on the same ten"
    expected = Recommender(model).recommend(sorted(listed(at).items()), n=10)
    assert set(after["song_id"]) == {i.song_id for i in expected.items}


def test_not_for_me_leaves_this_and_later_lists_as_a_low_rating(page_env, model):
    at = open_page()
    _recommend_for(at, model)
    gone = recommended(at)["song_id"].iloc[0]
    next(b for b in at.button if b.key == f"rec_no_{gone}").click().run()
    assert listed(at)[gone] == NOT_FOR_ME
    flags = at.data_editor[0].value["not for me"]
    assert flags[gone] and not flags.drop(gone).any()
    assert gone not in set(recommended(at)["song_id"])
    button(at, "Next ten").click().run()
    assert gone not in set(recommended(at)["song_id"])
    # The same browser later: still "not for me" (saved with the list).
    again = open_page(at.session_state[session.TOKEN])
    assert again.data_editor[0].value["not for me"][gone]


def test_more_like_this_shows_similar_unrated_songs(page_env, model):
    at = open_page()
    _recommend_for(at, model)
    seed = recommended(at)["song_id"].iloc[1]
    next(b for b in at.button if b.key == f"rec_more_{seed}").click().run()
    assert not at.exception
    index = model.index_of(seed)
    title = f"**More like {model.artist_names[index]} – {model.track_names[index]}**"
    assert any(m.value.replace("\\", "") == title for m in at.markdown)
    more = recommended(at, "more")
    rated = set(listed(at))
    similar = [s.song_id for s in Recommender(model).similar_songs(seed, 40)]
    assert len(more) == 10 and not set(more["song_id"]) & rated
    assert list(more["song_id"]) == [s for s in similar if s not in rated][:10]
    # Its rows act like the recommendations' rows.
    first = more["song_id"].iloc[0]
    at.feedback(key=f"more_rate_{first}").set_value(4).run()  # five stars
    assert listed(at)[first] == 10
    button(at, "Close").click().run()
    assert len(recommended(at, "more")) == 0


def test_next_ten_shows_the_following_ten_then_wraps(page_env, model):
    at = open_page()
    _recommend_for(at, model)
    first = recommended(at)
    button(at, "Next ten").click().run()
    second = recommended(at)
    assert list(second["rank"]) == list(range(11, 21))
    assert not set(first["song_id"]) & set(second["song_id"])
    full = Recommender(model).recommend(sorted(listed(at).items()), n=20)
    assert list(second["song_id"]) == [i.song_id for i in full.items[10:]]
    for _ in range(model.n_songs // 10 + 1):  # past the last page, back to the first
        button(at, "Next ten").click().run()
        if recommended(at)["rank"].iloc[0] == 1:
            break
    assert recommended(at)["rank"].iloc[0] == 1


def test_the_page_offers_the_playlist_downloads(page_env, model):
    at = open_page()
    _recommend_for(at, model)
    downloads = at.get("download_button")
    assert len(downloads) == 2
    assert {d.proto.label for d in downloads} == {"Download JSPF", "Download CSV"}
    assert at.selectbox(key="takeaway_choice").options[0].startswith("Your list and")
    assert session.SHOWN in at.session_state


def test_a_synthetic_catalogue_says_so_and_a_real_one_does_not(
    page_env, synthetic_model_dir, monkeypatch
):
    assert not any("synthetic" in i.value for i in open_page().info)
    monkeypatch.setenv("SONGREC_MODEL", str(synthetic_model_dir))
    notes = [i.value for i in open_page().info if "synthetic" in i.value]
    assert len(notes) == 1 and "songrec etl sample" in notes[0]
