"""Small listens and ListenBrainz dump files in the server's real layouts, built per test."""

from __future__ import annotations

import io
import lzma
import subprocess
import sys
import tarfile
import zipfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from songrec.app.cli import cli
from songrec.app.cli.errors import run_cli
from songrec.etl.mbids import valid_mbid
from songrec.etl.songs import song_id

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "listenbrainz-samples"
DUMP_NAME = "listenbrainz-listens-dump-7-20250301-000000-full"
SPARK_NAME = "listenbrainz-spark-dump-7-20250301-000000-full"
BASE_TS = 1_700_000_000  # 2023-11-14
# MusicBrainz recording ids of the small listens (real ones, of real recordings).
GOLDEN_BROWN = "c7d0bf6e-b2aa-4ffa-bded-2448415b39b0"
GOLDEN_BROWN_2 = "2d6f51c6-afc5-457e-9c58-689679c08d30"
ALTERED_STATE = "899a043d-67bc-420c-85ea-6fee705baeb3"
JOGA = "52534f30-d1c6-4313-b7e5-d58a171c7036"


@dataclass(frozen=True)
class Listen:
    """One listen as a test writes it."""

    user: str
    artist: str
    track: str
    ts: int
    mbid: str | None = None  # the recording MBID the listen carries, raw (may be invalid)


def small_listens() -> list[Listen]:
    """Three listeners, songs with case/space spelling variants, repeated plays, and
    recording MBIDs: some absent, some invalid, one song with two (the most played wins)."""
    plays = [
        # alice: "Golden Brown" four times in three spellings, the canonical one most often.
        # Its MBIDs: GOLDEN_BROWN 3 + 1 (upper-cased) = 4 plays, GOLDEN_BROWN_2 1 + 2 (bob).
        ("alice", "The Stranglers", "Golden Brown", 4, [GOLDEN_BROWN] * 3 + [GOLDEN_BROWN_2]),
        ("alice", "the stranglers", "golden brown", 1, [GOLDEN_BROWN.upper()]),
        ("alice", "  The  Stranglers ", "Golden   Brown", 1, ["not-an-mbid"]),
        ("alice", "Sweet Garden", "Altered State", 12, [None]),
        ("alice", "The Mamas & The Papas", "California Dreamin'", 1, [""]),
        ("bob", "THE STRANGLERS", "GOLDEN BROWN", 2, [GOLDEN_BROWN_2]),
        ("bob", "Sweet Garden", "Altered State", 1, [f"{{{ALTERED_STATE}}}"]),  # braces
        ("bob", "Björk", "Jóga", 3, [JOGA]),
        ("carol", "Björk", "Jóga", 1, [f" {JOGA}"]),  # a space: not an id
        ("carol", "björk", "jóga", 1, [None]),
        ("carol", "Sweet Garden", "Altered\tState", 2, [ALTERED_STATE, None]),
    ]
    listens = []
    for user, artist, track, count, mbids in plays:
        for n in range(count):
            # Three days apart: the listens span several months (several dump members).
            when = BASE_TS + 3 * 86_400 * len(listens)
            listens.append(Listen(user, artist, track, when, mbids[n % len(mbids)]))
    return listens


def dump_line(listen: Listen, user_id: int = 1) -> bytes:
    """A listen as the server writes it into a full dump (Listen.to_json())."""
    return orjson.dumps(
        {
            "user_id": user_id,
            "user_name": listen.user,
            "timestamp": listen.ts,
            "track_metadata": {
                "artist_name": listen.artist,
                "track_name": listen.track,
                "release_name": "Some Release",
                "additional_info": {
                    "recording_msid": "03dcc65c-0e01-4f25-aa1f-0f469d10e2ad",
                    "duration_ms": 206760,
                    "music_service": "spotify.com",
                    # What a client submitted (dumps have no server mapping).
                    **({"recording_mbid": listen.mbid} if listen.mbid is not None else {}),
                },
            },
            "recording_msid": "03dcc65c-0e01-4f25-aa1f-0f469d10e2ad",
            "inserted_timestamp": listen.ts + 5,
        }
    )


def export_line(listen: Listen) -> bytes:
    """A listen as a user export writes it: listened_at, no user name; the MBID in the
    server's mbid_mapping (absent: mbid_mapping null, as for an unmapped listen)."""
    mapping = None
    if listen.mbid is not None:
        mapping = {"recording_mbid": listen.mbid, "recording_name": listen.track}
    return orjson.dumps(
        {
            "listened_at": listen.ts,
            "inserted_at": listen.ts + 0.5,
            "track_metadata": {
                "artist_name": listen.artist,
                "track_name": listen.track,
                "release_name": "Some Release",
                "recording_msid": "23417b11-6914-4339-991c-bdfc3e120678",
                "additional_info": {"duration_ms": 162373},
                "mbid_mapping": mapping,
            },
        }
    )


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_listens_dump(
    path: Path,
    members: dict[str, Iterable[bytes]],
    compression: str = "zst",
    incremental: bool = False,
) -> Path:
    """A listens dump as the server streams it: metadata files, then listens/<YYYY>/<M>.listens.

    `members` maps "2023/11" -> lines; written in the server's order, through zstd or xz.
    """
    name = path.name.split(".tar")[0]
    raw = path.open("wb")
    if compression == "zst":
        sink = zstandard.ZstdCompressor().stream_writer(raw)
    else:
        sink = lzma.open(raw, "wb")
    with tarfile.open(fileobj=sink, mode="w|") as tar:
        if incremental:
            _add(tar, f"{name}/START_TIMESTAMP", b"2025-02-28 00:00:00")
            _add(tar, f"{name}/END_TIMESTAMP", b"2025-03-01 00:00:00")
        else:
            _add(tar, f"{name}/TIMESTAMP", b"2025-03-01 00:00:00")
        _add(tar, f"{name}/SCHEMA_SEQUENCE", b"1")
        _add(tar, f"{name}/COPYING", b"CC0 1.0 Universal")
        for month, lines in members.items():
            year, number = month.split("/")
            body = b"".join(line + b"\n" for line in lines)
            _add(tar, f"{name}/listens/{year}/{int(number)}.listens", body)
    sink.close()
    raw.close()
    return path


def by_month(listens: Iterable[Listen]) -> dict[str, list[bytes]]:
    """Dump lines grouped by the month of their listen, as the server splits them."""
    from datetime import UTC, datetime

    months: dict[str, list[bytes]] = {}
    ids = {}
    for listen in listens:
        when = datetime.fromtimestamp(listen.ts, UTC)
        user_id = ids.setdefault(listen.user, len(ids) + 1)
        months.setdefault(f"{when.year}/{when.month}", []).append(dump_line(listen, user_id))
    return months


def spark_table(listens: list[Listen], user_ids: dict[str, int]) -> pa.Table:
    """Listens in the Spark dump's columns (listened_at ms, user_id, recording_name, ...)."""
    n = len(listens)
    return pa.table(
        {
            "listened_at": pa.array([x.ts * 1000 for x in listens], pa.timestamp("ms")),
            "created": pa.array([x.ts * 1000 for x in listens], pa.timestamp("ms")),
            "user_id": pa.array([user_ids[x.user] for x in listens], pa.int64()),
            "recording_msid": pa.array(["03dcc65c-0e01-4f25-aa1f-0f469d10e2ad"] * n),
            "artist_name": pa.array([x.artist for x in listens]),
            "artist_credit_id": pa.nulls(n, pa.int64()),
            "release_name": pa.array(["Some Release"] * n),
            "release_mbid": pa.nulls(n, pa.string()),
            "recording_name": pa.array([x.track for x in listens]),
            "recording_mbid": pa.array([x.mbid for x in listens], pa.string()),
            "artist_credit_mbids": pa.nulls(n, pa.list_(pa.string())),
        }
    )


def write_spark_dump(path: Path, tables: list[pa.Table]) -> Path:
    """A Spark dump: `path` ending in .tar -> an uncompressed tar, else a folder of N.parquet."""
    files = {}
    for n, table in enumerate(tables):
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="zstd")
        files[f"{n}.parquet"] = sink.getvalue()
    files["SCHEMA_SEQUENCE"] = b"1"
    files["COPYING"] = b"CC0 1.0 Universal"
    if path.name.endswith(".tar"):
        with tarfile.open(path, "w") as tar:
            for name, data in files.items():
                _add(tar, name, data)
    else:
        path.mkdir()
        for name, data in files.items():
            (path / name).write_bytes(data)
    return path


def write_export_zip(path: Path, user: str | None, months: dict[str, list[bytes]]) -> Path:
    """A user export zip: user.json (if `user`), listens/<YYYY>/<M>.jsonl, feedback.jsonl."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        if user is not None:
            archive.writestr("user.json", orjson.dumps({"user_id": 7, "username": user}) + b"\n")
        for month, lines in months.items():
            year, number = month.split("/")
            archive.writestr(
                f"listens/{year}/{int(number)}.jsonl", b"".join(x + b"\n" for x in lines)
            )
        archive.writestr("feedback.jsonl", b'{"recording_msid": "x", "score": 1}\n')
    return path


def expected_plays(listens: Iterable[Listen]) -> dict[tuple[str, str], int]:
    """Plays per (user, song_id), counted here in plain Python."""
    return dict(Counter((x.user, song_id(x.artist, x.track)) for x in listens))


def expected_songs(listens: Iterable[Listen]) -> dict[str, dict]:
    """Per song: displayed spelling (most played; ties to the greatest), plays, listeners,
    and the valid recording MBID played most (ties to the greatest; None if none)."""
    listens = list(listens)
    plays = expected_plays(listens)
    spellings: dict[str, Counter] = {}
    mbids: dict[str, Counter] = {}
    for x in listens:
        spellings.setdefault(song_id(x.artist, x.track), Counter())[(x.artist, x.track)] += 1
        mbid = valid_mbid(x.mbid)
        if mbid is not None:
            mbids.setdefault(song_id(x.artist, x.track), Counter())[mbid] += 1
    songs = {}
    for sid, counts in spellings.items():
        artist, track = max(counts, key=lambda s: (counts[s], s))
        by_mbid = mbids.get(sid, Counter())
        per_user = [n for (_, s), n in plays.items() if s == sid]
        songs[sid] = {
            "artist_name": artist,
            "track_name": track,
            "plays": sum(min(n, 10) for n in per_user),
            "raw_plays": sum(per_user),
            "listeners": len(per_user),
            "recording_mbid": max(by_mbid, key=lambda m: (by_mbid[m], m)) if by_mbid else None,
        }
    return songs


def songs_of(folder: Path) -> dict[str, dict]:
    """songs.parquet of a ratings folder as song_id -> row (nulls as None, not NaN)."""
    rows = pq.read_table(folder / "songs.parquet").to_pylist()
    return {row.pop("song_id"): row for row in rows}


def songrec(*args: str) -> subprocess.CompletedProcess:
    """The songrec console entry point in a subprocess (exit codes, stderr, no traceback)."""
    return subprocess.run(
        [sys.executable, "-c", "from songrec.app.cli import main; main()", *args],
        capture_output=True,
        text=True,
    )


@pytest.fixture
def cli_error(capsys, monkeypatch):
    """Run songrec in-process as the console script does (`args` after `songrec`); return
    its one error line, after checking it is the only line and no traceback came out."""

    def run(*args: str) -> str:
        monkeypatch.setattr(sys, "argv", ["songrec", *args])
        assert run_cli(cli) == 2
        err = capsys.readouterr().err
        lines = [x for x in err.splitlines() if x.strip() and "%|" not in x]  # not the bar
        assert len(lines) == 1 and lines[0].startswith("error: "), err
        assert "Traceback" not in err
        return lines[0]

    return run


@pytest.fixture
def listens() -> list[Listen]:
    """The small listens of `small_listens`."""
    return small_listens()


@pytest.fixture(scope="session")
def lb() -> SimpleNamespace:
    """The builders and expectation helpers above, for tests (conftest is not importable)."""
    return SimpleNamespace(
        Listen=Listen,
        SAMPLES=SAMPLES,
        DUMP_NAME=DUMP_NAME,
        SPARK_NAME=SPARK_NAME,
        GOLDEN_BROWN=GOLDEN_BROWN,
        GOLDEN_BROWN_2=GOLDEN_BROWN_2,
        ALTERED_STATE=ALTERED_STATE,
        JOGA=JOGA,
        small_listens=small_listens,
        dump_line=dump_line,
        export_line=export_line,
        by_month=by_month,
        write_listens_dump=write_listens_dump,
        spark_table=spark_table,
        write_spark_dump=write_spark_dump,
        write_export_zip=write_export_zip,
        expected_plays=expected_plays,
        expected_songs=expected_songs,
        songs_of=songs_of,
        songrec=songrec,
    )
