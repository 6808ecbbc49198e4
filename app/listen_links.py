"""Where to hear a song: links built from its MusicBrainz id, or searches by artist and title.

Every part taken from the data is percent-encoded (nothing left "safe"), so a name cannot
end a link early, add a query parameter or smuggle in a scheme; an id is used only when it
is a canonical MusicBrainz id.
"""

from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import quote

MBID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
RECORDING_URL = "https://musicbrainz.org/recording/"


class Link(NamedTuple):
    """One place to hear (or look up) a song."""

    label: str
    url: str


def valid_mbid(mbid: object) -> str | None:
    """`mbid` when it is a canonical MusicBrainz id (lower-case UUID), else None."""
    return mbid if isinstance(mbid, str) and MBID.fullmatch(mbid) else None


def recording_url(mbid: object) -> str | None:
    """The MusicBrainz page of a recording, or None without a valid id."""
    mbid = valid_mbid(mbid)
    return f"{RECORDING_URL}{mbid}" if mbid else None


def listen_links(artist: str, title: str, mbid: object = None) -> list[Link]:
    """Links to hear `artist` – `title`: the best first."""
    query = quote(f"{artist} {title}", safe="")
    links = []
    mbid = valid_mbid(mbid)
    if mbid:
        # ListenBrainz's player streams a recording from the listener's connected services.
        links.append(
            Link("ListenBrainz", f"https://listenbrainz.org/player/?recording_mbids={mbid}")
        )
        links.append(Link("MusicBrainz", f"{RECORDING_URL}{mbid}"))
    else:
        links.append(
            Link("MusicBrainz", f"https://musicbrainz.org/search?query={query}&type=recording")
        )
    links.append(Link("YouTube", f"https://www.youtube.com/results?search_query={query}"))
    return links


def best_link(artist: str, title: str, mbid: object = None) -> str:
    """The one link a table cell shows: ListenBrainz's player, else a YouTube search."""
    return listen_links(artist, title, mbid)[0 if valid_mbid(mbid) else -1].url
