"""A listener's own history file (an upload, or `songrec recommend --history`) -> plays per song.

The file arrives as bytes plus its name (uploads stay in memory; nothing is written to
disk). Its format is recognised from the content; the name only names it in messages:

- a ListenBrainz user export: the zip (`listens/<YYYY>/<M>.jsonl`; user.json,
  feedback.jsonl and pinned_recording.jsonl are ignored), one of its `.jsonl` files, or a
  JSON array of listens (older exports; also the API's `{"payload": {"listens": [...]}}`).
  Listen lines go through the ETL's own parser (etl.listen_blocks.BlockParser, which
  leaves every line it cannot vouch for to etl.listens.parse_listen), so a listen is kept
  or rejected (under the same reason, with the same line numbers) exactly as `songrec etl
  dump --user` would, with the recording MBID that parser reads.
- a Last.fm scrobbles CSV: without a header, the columns artist, album, track, date
  (lastfm-to-csv, "31 Jan 2021 12:34"); or with a header naming an artist and a track
  column, in any order and case (`uts,utc_time,artist,artist_mbid,album,album_mbid,track,
  track_mbid`, `artist,album,track,date`...). UTF-8 with or without a byte-order mark;
  fields may be quoted and hold commas or newlines; `,`, `;` or tab separated (with a header).

Bad rows (a blank artist or track, a line that is not JSON, a row with too few fields)
are counted by reason and skipped; every good row is kept. A file that is no supported
format, holds no listen at all, or is too large raises `HistoryError` on one line.

Memory is bounded: the input may be at most MAX_INPUT_BYTES; a zip's members are read as
streams, MAX_UNPACKED_BYTES in all (a zip bomb stops there), one line at a time, a line
at most MAX_LINE_BYTES. Plays are counted per raw spelling, then per song: the song id
is `etl.songs.song_id`, the twin of the ETL's key, so it matches a model's catalogue; the
spelling shown and the MBID are the ones played most (ties to the greatest), as the ETL's
aggregation picks them.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import itertools
import lzma
import os
import re
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, NamedTuple

import orjson
import pyarrow as pa

from songrec.etl.aggregate import MBID_COLUMN
from songrec.etl.dumps.formats import decompressed, kind_of_name, uncompressed_name
from songrec.etl.errors import EtlError
from songrec.etl.listen_blocks import BlockParser
from songrec.etl.listens import Rejects, parse_lines
from songrec.etl.mbids import valid_mbid
from songrec.etl.songs import song_id

MAX_INPUT_BYTES = 50 * 2**20
MAX_UNPACKED_BYTES = 500 * 2**20
MAX_LINE_BYTES = 2**20  # a real listen line is about 1 KB
MAX_ZIP_MEMBERS = 100_000
BLOCK_BYTES = 8 * 2**20  # JSON lines handed to the ETL's block parser at once
SMALL_BYTES = 2**20  # a file this small is parsed line by line (no DuckDB start-up)
# The ETL's parser needs a user name; an export's lines carry none (one listener's file).
HISTORY_USER = "you"
BOM = b"\xef\xbb\xbf"

LISTENBRAINZ_ZIP = "listenbrainz-zip"
LISTENBRAINZ_JSONL = "listenbrainz-jsonl"
LISTENBRAINZ_JSON = "listenbrainz-json"
LASTFM_CSV = "lastfm-csv"
FORMAT_LABELS = {
    LISTENBRAINZ_ZIP: "ListenBrainz export (zip)",
    LISTENBRAINZ_JSONL: "ListenBrainz listens (JSON lines)",
    LISTENBRAINZ_JSON: "ListenBrainz listens (JSON array)",
    LASTFM_CSV: "Last.fm scrobbles (CSV)",
}
EXPECTED = (
    "a ListenBrainz export (.zip, or its listens as .jsonl/.json) or a Last.fm scrobbles "
    "CSV (artist, album, track, date; or a header naming artist and track columns)"
)

# Reasons of rows this module rejects itself (JSON listens use parse_listen's REASONS).
LINE_TOO_LONG = "line_too_long"
WRONG_FIELD_COUNT = "wrong_field_count"
BAD_CSV_ROW = "bad_csv_row"
BAD_ARTIST = "bad_artist_name"  # the ETL's names for a blank artist/track
BAD_TRACK = "bad_track_name"

# Header names (compared lower-cased, trimmed) of the columns a scrobbles CSV needs.
ARTIST_COLUMNS = ("artist", "artist_name", "artist name", "artistname")
TRACK_COLUMNS = ("track", "track_name", "track name", "trackname", "title", "song")
MBID_COLUMNS = ("track_mbid", "recording_mbid", "mbid")
# lastfm-to-csv's date: "31 Jan 2021 12:34" (a comma after the year is tolerated).
_LASTFM_DATE = re.compile(r"^\s*\d{1,2} [A-Za-z]{3,9} \d{4},? \d{1,2}:\d{2}(:\d{2})?\s*$")
# Leading bytes of files that are certainly no history, for a message that says what it is.
_MAGIC = (
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "gzip-compressed data (unpack it first)"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed data (unpack it first)"),
    (b"\xfd7zXZ", "xz-compressed data (unpack it first)"),
    (b"BZh", "bzip2-compressed data (unpack it first)"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"\xff\xfe", "UTF-16 text (save it as UTF-8)"),
    (b"\xfe\xff", "UTF-16 text (save it as UTF-8)"),
)
# What a damaged zip (or a compressed member inside it) raises while being read.
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    NotImplementedError,  # a compression method zipfile lacks
    RuntimeError,  # an encrypted member
    lzma.LZMAError,
    gzip.BadGzipFile,
    ValueError,
)


class HistoryError(EtlError):
    """A history file that cannot be read: no supported format, too large, or no listens."""


class SongPlays(NamedTuple):
    """One song of a history: its id, the spelling played most, its plays and MBID."""

    song_id: str
    artist_name: str
    track_name: str
    plays: int
    recording_mbid: str | None = None


@dataclass(frozen=True)
class History:
    """Plays per song of one listener's history (most played first), and what was read."""

    plays: tuple[SongPlays, ...]
    listens_read: int
    listens_kept: int
    rejected_by_reason: dict[str, int]
    format: str
    rejected_examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def songs(self) -> int:
        """Distinct songs."""
        return len(self.plays)

    @property
    def listens_rejected(self) -> int:
        """Listens (lines, rows) read but not kept."""
        return self.listens_read - self.listens_kept

    @property
    def format_label(self) -> str:
        """The format in words."""
        return FORMAT_LABELS.get(self.format, self.format)

    def plays_table(self, user_name: str = HISTORY_USER) -> pa.Table:
        """(user_name, song_id, plays): the table `etl.ratings.transform_ratings` takes."""
        return pa.table(
            {
                "user_name": pa.array([user_name] * len(self.plays), pa.string()),
                "song_id": pa.array([p.song_id for p in self.plays], pa.string()),
                "plays": pa.array([p.plays for p in self.plays], pa.int64()),
            }
        )


class _Reader:
    """Kept listens counted per (artist, track, raw MBID) spelling, then merged per song.

    JSON listens are parsed by the ETL's own parsers: in blocks by BlockParser (DuckDB's
    JSON reader, with `parse_listen` deciding every line it cannot vouch for), as `etl
    dump` does; a file under SMALL_BYTES by `parse_lines`, line by line.
    """

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str, str | None]] = Counter()
        self.rejects = Rejects()
        self._parser: BlockParser | None = None

    @property
    def kept(self) -> int:
        return self.counts.total()

    def close(self) -> None:
        if self._parser is not None:
            self._parser.close()
            self._parser = None

    def add(self, artist: str, track: str, mbid: str | None) -> None:
        """One kept listen (a CSV row)."""
        self.counts[(artist, track, mbid)] += 1

    def json_lines(self, numbered: Iterator[tuple[int, bytes]], source: str) -> None:
        """Numbered JSON lines (each ending in a newline but maybe the last), in blocks."""
        block, first = bytearray(), 1
        for number, line in numbered:
            if not block:
                first = number
            block += line
            if len(block) >= BLOCK_BYTES:
                self._parse(block, source, first)
                block = bytearray()
        if block:
            self._parse(block, source, first)

    def _parse(self, block: bytearray, source: str, first_line: int) -> None:
        if first_line == 1 and len(block) < SMALL_BYTES and self._parser is None:
            # A small file whole: the ETL's line parser, without the block parser's start-up
            # (a DuckDB connection); etl's twin tests hold the two to the same verdicts.
            lines = bytes(block).split(b"\n")  # newlines only, as the block parser splits
            tables = list(parse_lines(lines, self.rejects, source, HISTORY_USER))
        else:
            if self._parser is None:
                self._parser = BlockParser(self.rejects)
            tables = [self._parser.parse(bytes(block), source, first_line, HISTORY_USER)[0]]
        for table in tables:
            self._count(table)

    def _count(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        counted = table.group_by(["artist_name", "track_name", MBID_COLUMN]).aggregate(
            [([], "count_all")]
        )
        columns = [counted.column(c).to_pylist() for c in counted.column_names]
        for artist, track, mbid, n in zip(*columns, strict=True):
            self.counts[(artist, track, mbid)] += n

    def songs(self) -> tuple[SongPlays, ...]:
        """Plays per song, most played first: the spelling played most and the valid
        MBID played most, ties to the greatest (as etl.aggregate picks them)."""
        ids: dict[tuple[str, str], str] = {}
        # song id -> [plays, {spelling: plays}, {mbid: plays}]
        by_song: dict[str, list] = {}
        for (artist, track, raw), n in self.counts.items():
            form = (artist, track)
            sid = ids.get(form)
            if sid is None:
                sid = ids[form] = song_id(artist, track)
            entry = by_song.get(sid)
            if entry is None:
                entry = by_song[sid] = [0, {}, {}]
            entry[0] += n
            entry[1][form] = entry[1].get(form, 0) + n
            mbid = valid_mbid(raw) if raw is not None else None
            if mbid is not None:
                entry[2][mbid] = entry[2].get(mbid, 0) + n
        songs = []
        for sid, (plays, forms, mbids) in by_song.items():
            form = next(iter(forms)) if len(forms) == 1 else max(forms, key=_most(forms))
            mbid = max(mbids, key=_most(mbids)) if mbids else None
            songs.append(SongPlays(sid, form[0], form[1], plays, mbid))
        songs.sort(key=lambda s: (-s.plays, s.song_id))
        return tuple(songs)


def _most(counts: dict):
    """The key of `max` that picks the most counted, ties to the greatest."""
    return lambda key: (counts[key], key)


class _Budget:
    """Bytes a zip may still unpack; HistoryError once they run out."""

    def __init__(self, name: str, limit: int) -> None:
        self.name, self.limit, self.left = name, limit, limit

    def spend(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise HistoryError(
                f"{self.name}: unpacks to more than {_mb(self.limit)}; "
                "upload a smaller export (a zip bomb stops here too)"
            )


class _Capped(io.RawIOBase):
    """A stream that spends every byte read from it out of a shared budget."""

    def __init__(self, raw: BinaryIO, budget: _Budget) -> None:
        self.raw, self.budget = raw, budget

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        with memoryview(buffer) as view:
            data = self.raw.read(len(view))
            view[: len(data)] = data
        self.budget.spend(len(data))
        return len(data)


def _mb(n: int) -> str:
    return f"{n / 2**20:,.0f} MB"


def _not_history(name: str, what: str) -> HistoryError:
    return HistoryError(f"{name}: {what}, not a listening history; expected {EXPECTED}")


def _lines(stream: BinaryIO, rejects: Rejects, source: str) -> Iterator[tuple[int, bytes]]:
    """(number, line) of a binary stream, its byte-order mark dropped. A line past
    MAX_LINE_BYTES is counted, never held whole, and passed on blank (the numbers of the
    lines after it stay right; a blank line is no listen)."""
    number = 0
    while True:
        line = stream.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        number += 1
        if number == 1:
            line = line.removeprefix(BOM)
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while True:  # read on to the end of this line, a piece at a time
                more = stream.readline(MAX_LINE_BYTES)
                if not more or more.endswith(b"\n"):
                    break
            rejects.add(LINE_TOO_LONG, f"{source}:{number}")
            line = b"\n"
        yield number, line


def _items(items: list) -> Iterator[tuple[int, bytes]]:
    """A JSON array's items as numbered lines (as etl.dumps.reader reads a .json)."""
    for number, item in enumerate(items, start=1):
        yield number, orjson.dumps(item) + b"\n"


def _listens_array(document: object) -> list | None:
    """The listens of a JSON document: an array, or the API's payload.listens."""
    if isinstance(document, list):
        return document
    if isinstance(document, dict) and isinstance(document.get("payload"), dict):
        listens = document["payload"].get("listens")
        if isinstance(listens, list):
            return listens
    return None


def _read_json(data: bytes, name: str, reader: _Reader) -> str:
    """A text file starting with `{` or `[`: JSON lines, or one JSON array of listens."""
    body = memoryview(data)[len(BOM) :] if data.startswith(BOM) else data
    try:
        # JSON lines fail here at the second line, after one small object: cheap.
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        document = None
    items = _listens_array(document)
    if items is not None:
        reader.json_lines(_items(items), name)
        return LISTENBRAINZ_JSON
    # One listen object, or JSON lines (the ETL's parser judges each, whatever it holds).
    reader.json_lines(_lines(io.BytesIO(data), reader.rejects, name), name)
    return LISTENBRAINZ_JSONL


def _is_listens_member(info: zipfile.ZipInfo) -> bool:
    base = Path(info.filename).name
    if info.is_dir() or info.filename.startswith("__MACOSX/") or base.startswith("._"):
        return False  # a Mac's resource forks when a user re-zips the folder
    return kind_of_name(info.filename) == "export"


def _read_zip(data: bytes, name: str, reader: _Reader) -> str:
    budget = _Budget(name, MAX_UNPACKED_BYTES)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            if len(infos) > MAX_ZIP_MEMBERS:
                raise _not_history(name, f"a zip of {len(infos):,} files")
            members = sorted((i for i in infos if _is_listens_member(i)), key=lambda i: i.filename)
            if not members:
                raise HistoryError(
                    f"{name}: this zip holds no listens files (listens/<YYYY>/<M>.jsonl); "
                    f"expected {EXPECTED}"
                )
            declared = sum(i.file_size for i in members)
            if declared > MAX_UNPACKED_BYTES:
                budget.spend(declared)  # fails before reading anything
            for info in members:
                _read_member(archive, info, budget, reader)
    except _ZIP_ERRORS as exc:
        raise HistoryError(f"{name}: a corrupt or truncated zip ({_first_line(exc)})") from None
    return LISTENBRAINZ_ZIP


def _read_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: _Budget, reader: _Reader
) -> None:
    source = info.filename
    with archive.open(info) as raw:
        stream = io.BufferedReader(_Capped(decompressed(raw, source), budget), 1 << 20)
        head = stream.peek(64).removeprefix(BOM).lstrip()
        if uncompressed_name(source).endswith(".json") and head.startswith(b"["):
            # An older export's one array: read whole (within the budget), else as lines.
            content = stream.read()
            try:
                items = _listens_array(orjson.loads(content.removeprefix(BOM)))
            except orjson.JSONDecodeError:
                items = None
            if items is not None:
                reader.json_lines(_items(items), source)
                return
            stream = io.BytesIO(content)
        reader.json_lines(_lines(stream, reader.rejects, source), source)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _cells(row: list[str]) -> list[str]:
    return [cell.strip().strip('"').strip().lower() for cell in row]


def _find(columns: list[str], names: tuple[str, ...]) -> int | None:
    return next((i for i, column in enumerate(columns) if column in names), None)


@dataclass(frozen=True)
class _CsvLayout:
    delimiter: str
    header: bool
    artist: int
    track: int
    mbid: int | None
    fields: int | None  # the exact number of fields of a header-less row


def _csv_layout(text_head: str, name: str) -> _CsvLayout:
    """Which columns hold the artist and track: a header naming them, or lastfm-to-csv's
    header-less artist, album, track, date."""
    first = text_head.split("\n", 1)[0].rstrip("\r")
    for delimiter in (",", ";", "\t"):
        row = _first_row(text_head, delimiter)
        header = _cells(row)
        artist, track = _find(header, ARTIST_COLUMNS), _find(header, TRACK_COLUMNS)
        dated = len(row) == 4 and _LASTFM_DATE.match(row[3])  # a scrobble of "Artist - Track"
        if artist is not None and track is not None and not dated:
            mbid = _find(header, MBID_COLUMNS)
            return _CsvLayout(delimiter, True, artist, track, mbid, None)
    try:
        rows = list(itertools.islice(csv.reader(io.StringIO(text_head, newline="")), 50))
    except csv.Error:  # the head cut inside a quoted field, say
        rows = []
    if rows and len(rows[0]) == 4 and any(len(r) == 4 and _LASTFM_DATE.match(r[3]) for r in rows):
        return _CsvLayout(",", False, 0, 2, None, 4)
    shown = first[:80] + ("…" if len(first) > 80 else "")
    raise _not_history(name, f"a table without artist and track columns (first line {shown!r})")


def _first_row(text: str, delimiter: str) -> list[str]:
    """The first record of `text` (a quoted field may hold a line break), [] if none."""
    try:
        return next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), [])
    except csv.Error:
        return []


def _read_csv(data: bytes, head: str, name: str, reader: _Reader) -> str:
    layout = _csv_layout(head, name)
    text = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline="")
    rows = csv.reader(text, delimiter=layout.delimiter)
    rejects = reader.rejects
    need = max(layout.artist, layout.track) + 1
    try:
        if layout.header:
            next(rows, None)
        while True:
            try:
                row = next(rows)
            except StopIteration:
                break
            except csv.Error:  # a field past csv's size limit, say: this row only
                rejects.add(BAD_CSV_ROW, f"{name}:{rows.line_num}")
                continue
            if not row:
                continue  # a blank line
            where = f"{name}:{rows.line_num}"
            if len(row) < need or (layout.fields is not None and len(row) != layout.fields):
                rejects.add(WRONG_FIELD_COUNT, where)
                continue
            artist, track = row[layout.artist], row[layout.track]
            if not artist.strip():
                rejects.add(BAD_ARTIST, where)
                continue
            if not track.strip():
                rejects.add(BAD_TRACK, where)
                continue
            mbid = None
            if layout.mbid is not None and layout.mbid < len(row):
                mbid = row[layout.mbid].strip()
            reader.add(artist, track, mbid)
    except UnicodeDecodeError:
        raise _not_history(name, "text that is not UTF-8 (save it as UTF-8)") from None
    return LASTFM_CSV


def _text_head(data: bytes, name: str) -> str:
    """The first 64 KB as text; HistoryError for binary or non-UTF-8 content."""
    if b"\x00" in data[:8192]:
        raise _not_history(name, "a binary file")
    try:
        head = codecs.getincrementaldecoder("utf-8")().decode(data[: 1 << 16], final=False)
    except UnicodeDecodeError:
        raise _not_history(name, "neither a zip nor UTF-8 text") from None
    return head.removeprefix("\ufeff")


def _read_text(data: bytes, head: str, name: str) -> tuple[str, _Reader]:
    """JSON when it starts like JSON, else CSV; a "JSON" file none of whose lines is
    JSON is tried as CSV too (a header-less CSV whose first artist is "[Unknown]")."""
    if head.lstrip().startswith(("{", "[")):
        reader = _Reader()
        try:
            fmt = _read_json(data, name, reader)
        finally:
            reader.close()
        if reader.kept or set(reader.rejects.counts) != {"invalid_json"}:
            return fmt, reader
        as_csv = _Reader()
        try:
            return _read_csv(data, head, name, as_csv), as_csv
        except HistoryError:
            return fmt, reader
    reader = _Reader()
    return _read_csv(data, head, name, reader), reader


def read_history(data: bytes, name: str) -> History:
    """Plays per song of one history file given as bytes; `name` is its file name.

    Raises HistoryError (an EtlError) on one line for a file that is too large, of no
    supported format, or without a single valid listen.
    """
    name = Path(name or "history").name or "history"
    if len(data) > MAX_INPUT_BYTES:
        raise HistoryError(
            f"{name}: {_mb(len(data))} is more than the {_mb(MAX_INPUT_BYTES)} a history may be"
        )
    if not data.strip():
        raise HistoryError(f"{name} is empty; expected {EXPECTED}")
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        reader = _Reader()
        try:
            fmt = _read_zip(data, name, reader)
        finally:
            reader.close()
    else:
        for magic, what in _MAGIC:
            if data.startswith(magic):
                raise _not_history(name, f"this is {what}")
        if name.lower().endswith(".zip"):
            raise HistoryError(f"{name}: not a zip (corrupt, or renamed); expected {EXPECTED}")
        fmt, reader = _read_text(data, _text_head(data, name), name)
    kept, rejects = reader.kept, reader.rejects
    if not kept:
        reasons = ", ".join(f"{r} {n:,}" for r, n in sorted(rejects.counts.items()))
        detail = f"{rejects.total:,} rejected: {reasons}" if reasons else "nothing to read"
        raise HistoryError(f"{name}: no valid listens ({detail}); expected {EXPECTED}")
    return History(
        plays=reader.songs(),
        listens_read=kept + rejects.total,
        listens_kept=kept,
        rejected_by_reason=dict(sorted(rejects.counts.items())),
        format=fmt,
        rejected_examples=dict(sorted(rejects.examples.items())),
    )


def read_history_file(path: Path) -> History:
    """`read_history` of a file on disk, its size checked before it is read."""
    path = Path(path)
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        raise HistoryError(f"no such file: {path}") from None
    if size > MAX_INPUT_BYTES:
        raise HistoryError(
            f"{path.name}: {_mb(size)} is more than the {_mb(MAX_INPUT_BYTES)} a history may be"
        )
    with open(path, "rb") as handle:
        data = handle.read(MAX_INPUT_BYTES + 1)  # a file still growing is cut off
    return read_history(data, path.name)
