"""Take a list away: the listener's songs and recommendations as a JSPF or CSV playlist.

JSPF is the JSON form of XSPF that ListenBrainz imports (https://xspf.org/jspf/): a
`playlist` with a title, a creator, a date and `track` objects (title, creator, album
left out, `identifier` a list of URIs). ListenBrainz accepts a track only when one of its
identifiers is a MusicBrainz recording URL, so songs without a known recording id carry
none and `Playlist.importable` says how many ListenBrainz will take. songrec's own fields
(song id, rating, why) sit in each track's `extension`, keyed by a URI as JSPF asks.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from songrec.etl.mbids import is_mbid, recording_url
from songrec.models.artifact import TrainedModel
from songrec.models.recommend import Recommendation

# JSPF keys an application's extension by a URI of its own; songrec has no web address.
EXTENSION = "urn:songrec:track"
FORMATS = ("jspf", "csv")
CSV_COLUMNS = [
    *("position", "section", "artist", "title", "rating", "why", "song_id", "recording_mbid")
]
MEDIA_TYPES = {"jspf": "application/jspf+json", "csv": "text/csv"}


@dataclass(frozen=True)
class PlaylistTrack:
    """One song of a playlist; `rating` is the listener's own or the predicted one."""

    artist: str
    title: str
    song_id: str
    section: str  # "your list" or "recommended"
    rating: float | None = None
    why: str | None = None
    recording_mbid: str | None = None


def listed_tracks(pairs: Sequence[tuple[str, int]], model: TrainedModel) -> list[PlaylistTrack]:
    """A listener's rated songs (song id, rating) as playlist tracks."""
    tracks = []
    for song_id, rating in pairs:
        index = model.index_of(song_id)
        tracks.append(
            PlaylistTrack(
                str(model.artist_names[index]),
                str(model.track_names[index]),
                song_id,
                "your list",
                float(rating),
                recording_mbid=model.recording_mbid(index),
            )
        )
    return tracks


def recommended_tracks(items: Sequence[Recommendation], model: TrainedModel) -> list[PlaylistTrack]:
    """Recommendations as playlist tracks (the predicted rating, the reason)."""
    return [
        PlaylistTrack(
            item.artist_name,
            item.track_name,
            item.song_id,
            "recommended",
            round(float(item.predicted_rating), 1),
            item.because,
            model.recording_mbid(model.index_of(item.song_id)),
        )
        for item in items
    ]


def importable(tracks: Sequence[PlaylistTrack]) -> int:
    """How many tracks carry a MusicBrainz recording id (ListenBrainz imports only those)."""
    return sum(is_mbid(track.recording_mbid) for track in tracks)


def to_jspf(tracks: Sequence[PlaylistTrack], title: str, when: datetime | None = None) -> str:
    """The tracks as a JSPF document (text)."""
    date = (when or datetime.now(UTC)).isoformat(timespec="seconds")
    items = []
    for track in tracks:
        item: dict = {"title": track.title, "creator": track.artist}
        url = recording_url(track.recording_mbid)
        if url:
            item["identifier"] = [url]
        extra = {"song_id": track.song_id, "section": track.section}
        if track.rating is not None:
            extra["rating"] = track.rating
        if track.why:
            extra["why"] = track.why
        item["extension"] = {EXTENSION: extra}
        items.append(item)
    playlist = {
        "title": title,
        "creator": "songrec",
        "date": date,
        "annotation": f"{len(items)} songs from songrec",
        "track": items,
    }
    return json.dumps({"playlist": playlist}, ensure_ascii=False, indent=2)


def to_csv(tracks: Sequence[PlaylistTrack]) -> str:
    """The tracks as CSV with a header row (spreadsheet-safe: see `_cell`)."""
    out = io.StringIO()
    # RFC 4180 line ends: with them the writer quotes every field holding \r or \n too.
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for position, track in enumerate(tracks, 1):
        row = [
            position,
            track.section,
            track.artist,
            track.title,
            "" if track.rating is None else track.rating,
            track.why or "",
            track.song_id,
            track.recording_mbid if is_mbid(track.recording_mbid) else "",
        ]
        writer.writerow([_cell(value) for value in row])
    return out.getvalue()


def _cell(value: object) -> object:
    # A name starting with = + - @ would run as a formula when the CSV opens in a
    # spreadsheet; a leading apostrophe keeps it text (OWASP's CSV injection advice).
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def render(tracks: Sequence[PlaylistTrack], fmt: str, title: str = "songrec") -> str:
    """The tracks in format `fmt` (one of FORMATS)."""
    if fmt == "jspf":
        return to_jspf(tracks, title)
    if fmt == "csv":
        return to_csv(tracks)
    raise ValueError(f"unknown playlist format {fmt!r}; choose one of {', '.join(FORMATS)}")
