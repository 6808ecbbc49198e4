"""A listener's own history file -> plays per song: ListenBrainz exports, Last.fm CSVs, bad files.

Real format samples (../shared/data/listenbrainz-samples) and files built here in the
layouts the real tools write; the counts are checked against the ETL's own run on the same
export (`songrec etl dump --user`) and across formats on generated listens.
"""

from __future__ import annotations

import csv
import io
import struct
import zipfile
import zlib
from collections import Counter

import orjson
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from songrec.etl.dumps.formats import plan_inputs
from songrec.etl.dumps.reader import read_inputs
from songrec.etl.errors import EtlError
from songrec.etl.history import (
    BLOCK_BYTES,
    LASTFM_CSV,
    LISTENBRAINZ_JSON,
    LISTENBRAINZ_JSONL,
    LISTENBRAINZ_ZIP,
    MAX_INPUT_BYTES,
    MAX_LINE_BYTES,
    MAX_UNPACKED_BYTES,
    SMALL_BYTES,
    History,
    HistoryError,
    read_history,
    read_history_file,
)
from songrec.etl.pipeline import EtlRun, run_listens
from songrec.etl.songs import song_id

GOLDEN = song_id("The Stranglers", "Golden Brown")
DREAMIN = song_id("The Mamas & The Papas", "California Dreamin'")
GHAN_HEADER = "uts,utc_time,artist,artist_mbid,album,album_mbid,track,track_mbid"
MBID = "c7d0bf6e-b2aa-4ffa-bded-2448415b39b0"


def per_song(history: History) -> dict[str, int]:
    return {p.song_id: p.plays for p in history.plays}


def export_zip(months: dict[str, bytes], user: str = "rob", extra: dict | None = None) -> bytes:
    """A ListenBrainz user export zip as the server writes it, in memory."""
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("user.json", orjson.dumps({"user_id": 7, "username": user}) + b"\n")
        for month, body in months.items():
            year, number = month.split("/")
            archive.writestr(f"listens/{year}/{int(number)}.jsonl", body)
        archive.writestr("feedback.jsonl", b'{"recording_msid": "x", "score": 1}\n')
        archive.writestr("pinned_recording.jsonl", b'{"recording_msid": "x", "blurb": "hi"}\n')
        for name, body in (extra or {}).items():
            archive.writestr(name, body)
    return sink.getvalue()


def lastfm_csv(rows: list[tuple[str, str, str, str]], header: str | None, bom: bool) -> bytes:
    """Scrobbles as lastfm-to-csv writes them (no header: artist, album, track, date) or
    under a header; csv quotes commas, quotes and newlines."""
    sink = io.StringIO(newline="")
    writer = csv.writer(sink, lineterminator="\r\n")
    if header is None:
        writer.writerows(rows)
    elif header == GHAN_HEADER:
        writer.writerow(header.split(","))
        for n, (artist, album, track, date) in enumerate(rows):
            writer.writerow([1_600_000_000 + n, date, artist, "", album, "", track, ""])
    else:
        writer.writerow(header.split(","))
        writer.writerows(rows)
    return (b"\xef\xbb\xbf" if bom else b"") + sink.getvalue().encode("utf-8")


# --- ListenBrainz exports --------------------------------------------------------------


@pytest.mark.realdata
def test_real_user_export_lines_as_jsonl_and_as_the_export_zip(lb):
    lines = (lb.SAMPLES / "user_export.jsonl").read_bytes()
    history = read_history(lines, "user_export.jsonl")
    assert history.format == LISTENBRAINZ_JSONL
    assert per_song(history) == {GOLDEN: 1, DREAMIN: 1}
    assert (history.listens_read, history.listens_kept, history.rejected_by_reason) == (2, 2, {})
    golden = next(p for p in history.plays if p.song_id == GOLDEN)
    assert (golden.artist_name, golden.track_name) == ("The Stranglers", "Golden Brown")
    assert golden.recording_mbid == MBID  # from track_metadata.mbid_mapping

    zipped = read_history(export_zip({"2025/6": lines}), "listenbrainz_rob_1749000000.zip")
    assert zipped.format == LISTENBRAINZ_ZIP
    # user.json, feedback.jsonl and pinned_recording.jsonl are no listens.
    assert zipped.plays == history.plays and zipped.listens_read == 2


@pytest.mark.realdata
def test_counts_equal_the_etl_dump_of_the_same_export(tmp_path, lb, listens):
    """The ETL's `dump --user` and the history reader: same plays, spellings, rejects."""
    lines = [lb.export_line(x) for x in listens]
    lines[3:3] = [b"{not json", b"[1]", lb.export_line(lb.Listen("x", " ", "Song", 5))]
    # A carriage return between JSON tokens is whitespace: one line, one listen.
    lines[5:5] = [lb.export_line(lb.Listen("x", "CR", "Song", 6)).replace(b",", b",\r", 1)]
    lines += (lb.SAMPLES / "mixed_validity.jsonl").read_bytes().splitlines()
    lines += (lb.SAMPLES / "user_export.jsonl").read_bytes().splitlines()  # with MBIDs
    body = b"".join(line + b"\n" for line in lines)
    path = tmp_path / "listens.jsonl"
    path.write_bytes(body)
    run = EtlRun(source=str(path), out_dir=tmp_path / "out")
    batches = read_inputs(plan_inputs([path], user="you"), run.rejects, {}, prefetch=0)
    report = run_listens(run, batches)
    plays = pd.read_parquet(tmp_path / "out" / "plays.parquet")
    songs = pd.read_parquet(tmp_path / "out" / "songs.parquet").set_index("song_id")

    history = read_history(body, "listens.jsonl")
    assert per_song(history) == dict(zip(plays.song_id, plays.plays, strict=True))
    for song in history.plays:  # the spelling and recording the ETL shows
        etl_song = songs.loc[song.song_id]
        assert (song.artist_name, song.track_name) == (etl_song.artist_name, etl_song.track_name)
        etl_mbid = None if pd.isna(etl_song.recording_mbid) else etl_song.recording_mbid
        assert song.recording_mbid == etl_mbid
    assert MBID in {p.recording_mbid for p in history.plays}
    assert history.listens_read == report["listens_read"]
    assert history.rejected_by_reason == report["rejected_by_reason"]
    assert history.rejected_examples == report["rejected_examples"]
    assert history.rejected_by_reason == {
        "bad_artist_name": 2,
        "invalid_json": 1,
        "not_an_object": 1,
        "bad_track_name": 1,
    }
    assert read_history_file(path) == history


def test_a_json_array_and_the_api_payload(lb, listens):
    objects = [orjson.loads(lb.export_line(x)) for x in listens]
    expected = Counter(song_id(x.artist, x.track) for x in listens)
    for document in (objects, {"payload": {"count": len(objects), "listens": objects}}):
        history = read_history(orjson.dumps(document, option=orjson.OPT_INDENT_2), "old.json")
        assert history.format == LISTENBRAINZ_JSON
        assert per_song(history) == expected
    # Inside a zip too (older exports held one .json array).
    zipped = read_history(export_zip({}, extra={"rob_lb.json": orjson.dumps(objects)}), "e.zip")
    assert per_song(zipped) == expected


def test_recording_mbid_from_the_mapping_else_additional_info():
    def line(meta: dict) -> bytes:
        base = {"artist_name": "A", "track_name": "T"}
        return orjson.dumps({"listened_at": 1_700_000_000, "track_metadata": {**base, **meta}})

    other = "20ddea3a-1ad2-4036-9ca7-5f3383ad31c1"
    lines = [
        line({"mbid_mapping": {"recording_mbid": MBID}, "additional_info": {"x": 1}}),
        line({"mbid_mapping": None, "additional_info": {"recording_mbid": other.upper()}}),
        line({"additional_info": {"recording_mbid": other}}),
        line({"additional_info": {"recording_mbid": "not-an-mbid"}}),
    ]
    (song,) = read_history(b"\n".join(lines), "l.jsonl").plays
    assert (song.plays, song.recording_mbid) == (4, other)  # the most common one


# --- Last.fm CSVs ----------------------------------------------------------------------

ROWS = [
    ("The Stranglers", "La Folie", "Golden Brown", "31 Jan 2021 12:34"),
    ("the stranglers", "La Folie", "golden  brown", "31 Jan 2021 12:40"),
    ("Crosby, Stills & Nash", "CSN", 'Suite: "Judy Blue Eyes"', "1 Feb 2021 09:05"),
    ("Björk", "Post", "Army of Me\nlive", "2 Feb 2021 23:59"),
]
ROW_SONGS = Counter(song_id(a, t) for a, _, t, _ in ROWS)


@pytest.mark.parametrize(
    "header", [None, GHAN_HEADER, "artist,album,track,date", "Artist,Album,Track Name,Date"]
)
@pytest.mark.parametrize("bom", [False, True])
def test_lastfm_csv_layouts(header, bom):
    history = read_history(lastfm_csv(ROWS, header, bom), "scrobbles.csv")
    assert history.format == LASTFM_CSV
    assert per_song(history) == ROW_SONGS
    assert (history.listens_read, history.listens_kept) == (4, 4)
    names = {(p.artist_name, p.track_name) for p in history.plays}
    assert ("Crosby, Stills & Nash", 'Suite: "Judy Blue Eyes"') in names
    assert ("Björk", "Army of Me\nlive") in names


def test_lastfm_csv_semicolons_mbids_and_a_first_artist_in_brackets():
    text = "Track;Artist;track_mbid\nGolden Brown;The Stranglers;" + MBID.upper() + "\n"
    (song,) = read_history(text.encode(), "export.txt").plays
    assert (song.song_id, song.recording_mbid) == (GOLDEN, MBID)
    # Starts like JSON, is a header-less CSV: read as CSV, not rejected line by line.
    rows = [("[unknown]", "x", "Track", "1 Jan 2020 10:00"), *ROWS]
    history = read_history(lastfm_csv(rows, None, False), "s.csv")
    assert history.format == LASTFM_CSV and history.listens_kept == 5
    # A first scrobble of the songs "artist" by "track" is a row, not a header.
    rows = [("track", "album", "artist", "1 Jan 2020 10:00"), *ROWS]
    assert read_history(lastfm_csv(rows, None, False), "s.csv").listens_kept == 5


def test_bad_rows_are_counted_and_every_good_row_kept():
    body = lastfm_csv(ROWS, "artist,album,track,date", False) + (
        b"  ,Album,Track,1 Jan 2020 10:00\r\n"
        b"Artist,Album,\t,1 Jan 2020 10:00\r\n"
        b"only one field\r\n"
        b"\r\n"  # a blank line is nothing, not a bad row
    )
    history = read_history(body, "s.csv")
    assert per_song(history) == ROW_SONGS
    assert history.rejected_by_reason == {
        "bad_artist_name": 1,
        "bad_track_name": 1,
        "wrong_field_count": 1,
    }
    assert (history.listens_read, history.listens_kept, history.listens_rejected) == (7, 4, 3)
    assert history.rejected_examples["wrong_field_count"] == [
        "s.csv:9"
    ]  # the quoted newline is line 6

    headerless = lastfm_csv(ROWS, None, False) + b"a,b,c\r\na,b,c,d,e\r\n"
    assert read_history(headerless, "s.csv").rejected_by_reason == {"wrong_field_count": 2}


def test_a_line_past_the_limit_is_skipped_and_counted(lb, listens):
    good = [lb.export_line(x) for x in listens]
    huge = b'{"listened_at": 1, "x": "' + b"a" * (MAX_LINE_BYTES + 10) + b'"}'
    body = b"\n".join([good[0], huge, *good[1:]]) + b"\n"
    for data, name in ((body, "l.jsonl"), (export_zip({"2024/1": body}), "e.zip")):
        history = read_history(data, name)
        assert history.rejected_by_reason == {"line_too_long": 1}
        assert history.listens_kept == len(listens)


# --- the same listens in every format ----------------------------------------------------

names = st.one_of(
    st.sampled_from(["The Stranglers", "the  stranglers", "Artist", "track", "a,b", 'say "hi"']),
    st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufeff"),
        min_size=0,
        max_size=10,
    ),
    st.text(alphabet=" \t\u00a0\u3000", max_size=3),  # blank to Python: rejected by both
)


@given(
    listens=st.lists(st.tuples(names, names), min_size=1, max_size=25),
    bom=st.booleans(),
)
# A quoted line break in the first row once broke the CSV layout's detection.
@example(listens=[("The Stranglers", "\r")], bom=False)
@example(listens=[("A", "line\nbreak")], bom=False)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_jsonl_zip_and_csv_of_the_same_listens_agree(listens, bom):
    """Generated listens written as a ListenBrainz export and as Last.fm CSVs (both
    layouts): the same plays per song (those of etl.songs.song_id) and the same rejects."""
    lines = b"".join(
        orjson.dumps(
            {
                "listened_at": 1_600_000_000 + n,
                "track_metadata": {"artist_name": a, "track_name": t},
            }
        )
        + b"\n"
        for n, (a, t) in enumerate(listens)
    )
    rows = [(a, "Album", t, "31 Jan 2021 12:34") for a, t in listens]
    files = {
        "listens.jsonl": (b"\xef\xbb\xbf" if bom else b"") + lines,
        "export.zip": export_zip({"2020/9": lines}),
        "scrobbles.csv": lastfm_csv(rows, None, bom),
        "lastfm.csv": lastfm_csv(rows, GHAN_HEADER, bom),
    }
    valid = [(a, t) for a, t in listens if a.strip() and t.strip()]
    expected = Counter(song_id(a, t) for a, t in valid)
    for name, data in files.items():
        if not valid:
            with pytest.raises(HistoryError, match="no valid listens"):
                read_history(data, name)
            continue
        history = read_history(data, name)
        assert per_song(history) == expected, name
        assert history.listens_read == len(listens), name
        rejected = Counter(
            "bad_artist_name" if not a.strip() else "bad_track_name"
            for a, t in listens
            if not (a.strip() and t.strip())
        )
        assert history.rejected_by_reason == dict(rejected), name


# --- files that are no history ----------------------------------------------------------


def _one_line_error(data: bytes, name: str, match: str) -> str:
    with pytest.raises(HistoryError, match=match) as caught:
        read_history(data, name)
    message = str(caught.value)
    assert "\n" not in message and isinstance(caught.value, EtlError)
    return message


def _truncated_zip(lb) -> bytes:
    lines = (lb.SAMPLES / "user_export.jsonl").read_bytes()
    whole = export_zip({"2025/6": lines * 50})
    return whole[: len(whole) // 2]


@pytest.mark.realdata
def test_files_that_are_no_history_fail_on_one_line(lb):
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
    assert "PNG image" in _one_line_error(png, "me.jsonl", "not a listening history")
    _one_line_error(b"", "empty.csv", "empty")
    _one_line_error(b" \n\r\n", "blank.jsonl", "empty")
    message = _one_line_error(b"id,name,price\n1,chair,20\n", "shop.csv", "artist and track")
    assert "expected a ListenBrainz export" in message
    _one_line_error(_truncated_zip(lb), "export.zip", "corrupt or truncated zip")
    _one_line_error(b"\x00\x01\x02binary", "x.bin", "binary")
    _one_line_error("caf\xe9,x\n".encode("latin-1"), "s.csv", "UTF-8")
    _one_line_error(b"not a zip at all", "export.zip", "not a zip")
    _one_line_error(export_zip({}), "export.zip", "no listens files")
    _one_line_error(b'{"recording_msid": "x", "score": 1}\n', "feedback.jsonl", "no valid listens")
    _one_line_error(b"[]", "old.json", "no valid listens")
    gz = b"\x1f\x8b\x08\x00" + bytes(20)
    assert "unpack it first" in _one_line_error(gz, "listens.jsonl.gz", "gzip")


def test_oversized_input_fails_before_it_is_read(tmp_path):
    big = b"a,b,c,d\n" * (MAX_INPUT_BYTES // 8 + 1)
    _one_line_error(big, "huge.csv", "more than the 50 MB")
    path = tmp_path / "huge.csv"
    path.write_bytes(big)
    with pytest.raises(HistoryError, match="more than the 50 MB"):
        read_history_file(path)


def _lying_sizes(data: bytes, size: int) -> bytes:
    """The zip with every central-directory entry claiming `size` unpacked bytes."""
    out = bytearray(data)
    start = out.find(b"PK\x01\x02")
    while start != -1:
        out[start + 24 : start + 28] = struct.pack("<I", size)
        start = out.find(b"PK\x01\x02", start + 4)
    return bytes(out)


def test_zip_bombs_stop_at_the_unpacked_limit(lb, listens):
    lines = b"".join(lb.export_line(x) + b"\n" for x in listens)
    claims = _lying_sizes(export_zip({"2024/1": lines, "2024/2": lines}), 2**32 - 1)
    _one_line_error(claims, "bomb.zip", "unpacks to more than 500 MB")
    # A member that declares little but unpacks to more (a .gz inside the zip).
    packer = zlib.compressobj(1, zlib.DEFLATED, 31)
    chunk = b" " * 2**20
    bomb = b"".join(packer.compress(chunk) for _ in range(MAX_UNPACKED_BYTES // 2**20 + 1))
    bomb += packer.flush()
    data = export_zip({"2024/1": lines}, extra={"listens/2024/2.jsonl.gz": bomb})
    assert len(data) < 5 * 2**20
    _one_line_error(data, "bomb.zip", "unpacks to more than 500 MB")


def test_large_files_take_the_etls_block_parser_with_the_same_counts(lb, listens):
    """Past SMALL_BYTES the lines go to the ETL's block parser (DuckDB): the same plays,
    rejects and line numbers as the line parser gives a small file."""
    lines = [lb.export_line(x) for x in listens] + [b"{bad", b'{"track_metadata": 5}']
    lines.append(lb.export_line(lb.Listen("x", "CR", "Song", 6)).replace(b",", b",\r", 1))
    small = b"".join(line + b"\n" for line in lines)
    copies = SMALL_BYTES // len(small) + 2
    large = small * copies
    assert len(small) < SMALL_BYTES < len(large) < BLOCK_BYTES * 2
    one, many = read_history(small, "l.jsonl"), read_history(large, "l.jsonl")
    assert per_song(many) == {sid: n * copies for sid, n in per_song(one).items()}
    assert one.rejected_by_reason == {"bad_track_metadata": 1, "invalid_json": 1}
    assert many.rejected_by_reason == {r: n * copies for r, n in one.rejected_by_reason.items()}
    assert many.rejected_examples["invalid_json"][:2] == [
        f"l.jsonl:{len(lines) - 2}",
        f"l.jsonl:{2 * len(lines) - 2}",
    ]
    assert [(p.artist_name, p.track_name) for p in many.plays] == [
        (p.artist_name, p.track_name) for p in one.plays
    ]
