"""Listen links: built safely from any name, a recording page only for a real MBID."""

from __future__ import annotations

import re
import uuid
from urllib.parse import parse_qs, urlsplit

from hypothesis import given
from hypothesis import strategies as st

from songrec.app.listen_links import best_link, listen_links
from songrec.app.page.text import links_markdown
from songrec.etl.mbids import is_mbid, recording_url

HOSTS = {"musicbrainz.org", "listenbrainz.org", "www.youtube.com"}


@given(artist=st.text(max_size=30), title=st.text(max_size=30))
def test_links_from_any_name_stay_on_their_site_and_carry_the_name(artist, title):
    for link in listen_links(artist, title):
        parts = urlsplit(link.url)
        assert parts.scheme == "https" and parts.netloc in HOSTS and not parts.fragment
        query = parse_qs(parts.query, keep_blank_values=True)
        searched = query.get("query") or query.get("search_query")
        # The name comes back whole (parse_qs drops a lone blank, so compare stripped).
        assert searched is None or searched[0].strip() == f"{artist} {title}".strip()
        assert not re.search(r"[\s()<>\[\]\"'`]", link.url), "nothing may end a link early"
    markdown = links_markdown(artist, title)
    assert markdown.count("](https://") == len(listen_links(artist, title))


def test_a_recording_id_gives_the_recording_and_the_player():
    mbid = str(uuid.uuid4())
    links = dict(listen_links("A", "B", mbid))
    assert links["MusicBrainz"] == f"https://musicbrainz.org/recording/{mbid}"
    assert links["ListenBrainz"].endswith(f"recording_mbids={mbid}")
    assert best_link("A", "B", mbid) == links["ListenBrainz"]
    assert recording_url(mbid) == links["MusicBrainz"]


@given(st.one_of(st.none(), st.text(max_size=40), st.integers()))
def test_anything_but_a_canonical_id_falls_back_to_searches(value):
    if is_mbid(value):
        return
    labels = [link.label for link in listen_links("A", "B", value)]
    assert labels == ["MusicBrainz", "YouTube"] and recording_url(value) is None
    assert best_link("A", "B", value).startswith("https://www.youtube.com/results?")


def test_upper_case_or_braced_ids_get_no_recording_link():
    mbid = str(uuid.uuid4())
    for bad in (mbid.upper(), "{" + mbid + "}", mbid + "/../x", mbid.replace("-", "")):
        assert [link.label for link in listen_links("A", "B", bad)] == ["MusicBrainz", "YouTube"]
