"""Playlists: JSPF as ListenBrainz documents it, and CSV that round-trips and cannot inject."""

from __future__ import annotations

import csv
import io
import json
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from songrec.app.playlist import (
    CSV_COLUMNS,
    EXTENSION,
    PlaylistTrack,
    importable,
    render,
    to_csv,
    to_jspf,
)
from songrec.etl.mbids import is_mbid

_names = st.text(min_size=1, max_size=20)
_tracks = st.lists(
    st.builds(
        PlaylistTrack,
        artist=_names,
        title=_names,
        song_id=st.from_regex(r"[0-9a-f]{16}", fullmatch=True),
        section=st.sampled_from(["your list", "recommended"]),
        rating=st.one_of(st.none(), st.integers(1, 10).map(float)),
        why=st.one_of(st.none(), _names),
        recording_mbid=st.one_of(st.none(), st.uuids().map(str), _names),
    ),
    max_size=12,
)


def check_jspf(text: str) -> dict:
    """The JSPF structure ListenBrainz documents: a playlist with a title and a track list
    of objects with title, creator and (where known) a MusicBrainz recording identifier."""
    document = json.loads(text)
    assert set(document) == {"playlist"}
    playlist = document["playlist"]
    assert isinstance(playlist["title"], str) and playlist["title"]
    assert isinstance(playlist["creator"], str) and isinstance(playlist["date"], str)
    assert isinstance(playlist["track"], list)
    for track in playlist["track"]:
        assert isinstance(track["title"], str) and isinstance(track["creator"], str)
        for uri in track.get("identifier", []):
            assert uri.startswith("https://musicbrainz.org/recording/")
            assert is_mbid(uri.rsplit("/", 1)[1])
        assert set(track.get("extension", {})) <= {EXTENSION}
    return playlist


@given(_tracks)
def test_jspf_names_every_track_and_identifies_those_with_ids(tracks):
    playlist = check_jspf(to_jspf(tracks, "my songs"))
    assert [(t["creator"], t["title"]) for t in playlist["track"]] == [
        (t.artist, t.title) for t in tracks
    ]
    identified = sum("identifier" in t for t in playlist["track"])
    assert identified == importable(tracks)
    ids = [t["extension"][EXTENSION]["song_id"] for t in playlist["track"]]
    assert ids == [t.song_id for t in tracks]


@given(_tracks)
def test_csv_round_trips_and_keeps_formulas_inert(tracks):
    rows = list(csv.DictReader(io.StringIO(to_csv(tracks), newline="")))
    assert len(rows) == len(tracks)
    for row, track in zip(rows, tracks, strict=True):
        assert list(row) == CSV_COLUMNS
        for column, value in (("artist", track.artist), ("title", track.title)):
            shown = row[column]
            assert shown[:1] not in ("=", "+", "-", "@", "\t", "\r")
            assert shown in (value, "'" + value)
        assert row["song_id"] == track.song_id
        mbid = track.recording_mbid
        assert row["recording_mbid"] == (mbid if is_mbid(mbid) else "")


def test_render_names_its_formats():
    track = PlaylistTrack("A", "B", "0" * 16, "recommended", 7.0, None, str(uuid.uuid4()))
    assert json.loads(render([track], "jspf"))["playlist"]["track"][0]["identifier"]
    assert render([track], "csv").startswith("position,")
    with pytest.raises(ValueError, match="jspf, csv"):
        render([track], "xspf")
