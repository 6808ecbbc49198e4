"""Where to hear a song: links built from its MusicBrainz id, or searches by artist and title.

Every part taken from the data is percent-encoded (nothing left "safe"), so a name cannot
end a link early, add a query parameter or smuggle in a scheme; an id is used only when it
is a canonical MusicBrainz id.
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import quote

from songrec.etl.mbids import is_mbid, recording_url


class Link(NamedTuple):
    """One place to hear (or look up) a song."""

    label: str
    url: str


def listen_links(artist: str, title: str, mbid: object = None) -> list[Link]:
    """Links to hear `artist` – `title`: the best first."""
    query = quote(f"{artist} {title}", safe="")
    links = []
    if is_mbid(mbid):
        # ListenBrainz's player streams a recording from the listener's connected services.
        links.append(
            Link("ListenBrainz", f"https://listenbrainz.org/player/?recording_mbids={mbid}")
        )
        links.append(Link("MusicBrainz", str(recording_url(mbid))))
    else:
        links.append(
            Link("MusicBrainz", f"https://musicbrainz.org/search?query={query}&type=recording")
        )
    links.append(Link("YouTube", f"https://www.youtube.com/results?search_query={query}"))
    return links


def best_link(artist: str, title: str, mbid: object = None) -> str:
    """The one link a table cell shows: ListenBrainz's player, else a YouTube search."""
    return listen_links(artist, title, mbid)[0 if is_mbid(mbid) else -1].url
