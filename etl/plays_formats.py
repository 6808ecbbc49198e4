"""Play counts that other public music datasets already aggregate -> partial plays.

HetRec last.fm-2k and Last.fm 360K count plays per (user, artist): their "song" is the
artist, with the track name ARTIST_LEVEL_TRACK. The Million Song Dataset taste profile
counts plays per (user, MSD song id); names come from `unique_tracks.txt` when given.
None of them has listen times, so first/last_listened_at stay empty.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from songrec.etl.dumps.parquet import GLOB_CHARACTERS
from songrec.etl.errors import EtlError
from songrec.etl.listens import Rejects
from songrec.etl.songs import normalize_array

log = logging.getLogger(__name__)

FORMATS = ("hetrec", "lastfm-360k", "msd-triplets")
ARTIST_LEVEL_TRACK = "(all tracks)"
UNKNOWN_ARTIST = "(unknown artist)"


def _read(con: duckdb.DuckDBPyConnection, sql: str, path: Path, files: dict) -> pa.Table:
    """Run one DuckDB reader query, turning parse failures into a one-line error.

    `files` maps the query's $parameters to paths: paths never enter the SQL text.
    """
    con.execute("SET enable_progress_bar = false")  # songrec has its own
    with tempfile.TemporaryDirectory(prefix="songrec-paths-") as links:
        params = {}
        for name, file in files.items():
            if GLOB_CHARACTERS & set(str(file)):
                # DuckDB takes these characters for a pattern even in a parameter: read the
                # file through a link with a plain name instead.
                link = Path(links) / f"{name}{file.suffix}"
                link.symlink_to(Path(file).resolve())
                file = link
            params[name] = file.as_posix()
        return _run(con, sql, path, params)


def _run(con: duckdb.DuckDBPyConnection, sql: str, path: Path, params: dict) -> pa.Table:
    try:
        return con.sql(sql, params=params).to_arrow_table()
    except duckdb.Error as exc:
        first_line = str(exc).strip().splitlines()[0]
        raise EtlError(f"{path} is not in the expected format: {first_line}") from None


def _csv(param: str, columns: dict[str, str], header: bool, delim: str = "\\t") -> str:
    """A read_csv call on the file given as query parameter `$param` (constants only)."""
    cols = ", ".join(f"'{name}': '{kind}'" for name, kind in columns.items())
    return (
        f"read_csv(${param}, delim='{delim}', header={str(header).lower()}, "
        f"columns={{{cols}}}, quote='', escape='', ignore_errors=false, strict_mode=false)"
    )


def read_hetrec(user_artists: Path, artists: Path | None = None) -> pa.Table:
    """HetRec last.fm-2k `user_artists.dat` (+ `artists.dat` beside it) -> counted rows."""
    artists = artists or user_artists.with_name("artists.dat")
    if not artists.is_file():
        raise EtlError(f"HetRec needs artists.dat beside {user_artists} (or pass --names)")
    con = duckdb.connect()
    counts = _csv("counts", {"user_id": "VARCHAR", "artist_id": "VARCHAR", "w": "VARCHAR"}, True)
    names = _csv(
        "names", {"id": "VARCHAR", "name": "VARCHAR", "url": "VARCHAR", "pic": "VARCHAR"}, True
    )
    return _read(
        con,
        f"""
        SELECT trim(c.user_id) AS user_name, n.name AS artist_name,
               '{ARTIST_LEVEL_TRACK}' AS track_name, TRY_CAST(trim(c.w) AS BIGINT) AS plays
        FROM {counts} c LEFT JOIN {names} n ON trim(c.artist_id) = trim(n.id)
        """,
        user_artists,
        {"counts": user_artists, "names": artists},
    )


def read_lastfm_360k(path: Path) -> pa.Table:
    """Last.fm 360K `usersha1-artmbid-artname-plays.tsv` -> counted rows."""
    con = duckdb.connect()
    cols = {"user": "VARCHAR", "mbid": "VARCHAR", "artist": "VARCHAR", "plays": "VARCHAR"}
    return _read(
        con,
        f"""
        SELECT user AS user_name, artist AS artist_name, '{ARTIST_LEVEL_TRACK}' AS track_name,
               TRY_CAST(plays AS BIGINT) AS plays
        FROM {_csv("plays", cols, False)}
        """,
        path,
        {"plays": path},
    )


def read_msd_triplets(path: Path, names: Path | None = None) -> pa.Table:
    """MSD taste-profile `train_triplets.txt` (+ optional `unique_tracks.txt`) -> counted rows."""
    con = duckdb.connect()
    triplets = _csv("plays", {"user": "VARCHAR", "song": "VARCHAR", "plays": "VARCHAR"}, False)
    if names is None:
        return _read(
            con,
            f"""SELECT user AS user_name, '{UNKNOWN_ARTIST}' AS artist_name, song AS track_name,
                       TRY_CAST(plays AS BIGINT) AS plays FROM {triplets}""",
            path,
            {"plays": path},
        )
    # unique_tracks.txt: track_id<SEP>song_id<SEP>artist<SEP>title; one song may have
    # several tracks, any one's names will do.
    # DuckDB delimiters are at most 4 bytes: read whole lines and split on <SEP>.
    lines = _csv("names", {"line": "VARCHAR"}, False, delim="\x01")
    tracks = (
        f"(SELECT split_part(line, '<SEP>', 2) AS song, split_part(line, '<SEP>', 3) AS artist, "
        f"split_part(line, '<SEP>', 4) AS title FROM {lines})"
    )
    return _read(
        con,
        f"""
        WITH n AS (SELECT song, any_value(artist) AS artist, any_value(title) AS title
                   FROM {tracks} GROUP BY song)
        SELECT t.user AS user_name, coalesce(n.artist, '{UNKNOWN_ARTIST}') AS artist_name,
               coalesce(n.title, t.song) AS track_name, TRY_CAST(t.plays AS BIGINT) AS plays
        FROM {triplets} t LEFT JOIN n ON t.song = n.song
        """,
        path,
        {"plays": path, "names": names},
    )


def _blank(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.or_kleene(pc.is_null(column), pc.equal(normalize_array(column.fill_null("")), ""))


def to_partial_plays(rows: pa.Table, rejects: Rejects, source: str) -> pa.Table:
    """Counted rows (user, artist, track, plays) -> partial plays; bad rows counted by reason."""
    checks = [
        ("bad_user_name", _blank(rows.column("user_name"))),
        ("bad_artist_name", _blank(rows.column("artist_name"))),
        ("bad_track_name", _blank(rows.column("track_name"))),
        ("bad_plays", pc.invert(pc.fill_null(pc.greater(rows.column("plays"), 0), False))),
    ]
    keep = pa.chunked_array([pa.array([True] * rows.num_rows, pa.bool_())])
    for reason, bad in checks:
        # Each row is counted once, under the first reason it fails.
        new = pc.and_(keep, bad)
        count = pc.sum(new).as_py() or 0
        if count:
            first = pc.index(new, True).as_py()
            rejects.add(reason, f"{source}:row {first + 1}", count)
        keep = pc.and_(keep, pc.invert(bad))
    good = rows.filter(keep)
    log.info("%s: %d rows kept, %d rejected", source, good.num_rows, rejects.total)
    none = pa.nulls(good.num_rows, pa.timestamp("us", tz="UTC"))
    return pa.table(
        {
            "user_name": good.column("user_name"),
            "artist_key": normalize_array(good.column("artist_name")),
            "track_key": normalize_array(good.column("track_name")),
            "artist_spelling": good.column("artist_name"),
            "track_spelling": good.column("track_name"),
            "plays": good.column("plays"),
            "first_listened_at": none,
            "last_listened_at": none,
            # These datasets name no MusicBrainz recording per row (360K's is an artist's).
            "recording_mbid": pa.nulls(good.num_rows, pa.string()),
        }
    )


def read_counted(path: Path, fmt: str, names: Path | None = None) -> pa.Table:
    """Read one already-counted dataset file in the named format."""
    if fmt not in FORMATS:
        raise EtlError(f"unknown plays format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if not path.is_file():
        raise EtlError(f"{path}: no such file")
    if fmt == "hetrec":
        return read_hetrec(path, names)
    if fmt == "lastfm-360k":
        return read_lastfm_360k(path)
    return read_msd_triplets(path, names)
