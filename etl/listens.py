"""ListenBrainz listens as JSON lines -> validated Arrow batches, bad lines counted by reason.

A listen line is one JSON object. Full dumps carry `user_name` and `timestamp`; user
exports and the API carry `listened_at` and no user name (the caller supplies one).
Anything else is rejected under a named reason and never stops the run. A listen's
MusicBrainz recording id comes from track_metadata.mbid_mapping.recording_mbid (the
server's mapping, in exports), else track_metadata.additional_info.recording_mbid (what
the client submitted): the first that is a JSON string, passed on as is; the listens ->
plays query keeps only canonical ids (etl.mbids). It never rejects a listen.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import orjson
import pyarrow as pa

LISTEN_SCHEMA = pa.schema(
    [
        ("user_name", pa.string()),
        ("artist_name", pa.string()),
        ("track_name", pa.string()),
        ("listened_at", pa.timestamp("s", tz="UTC")),
        # Raw, unchecked; null when the listen carries none (see etl.mbids).
        ("recording_mbid", pa.string()),
    ]
)
BATCH_ROWS = 500_000
EXAMPLES_PER_REASON = 5
REASONS = (
    "invalid_json",
    "not_an_object",
    "bad_track_metadata",
    "bad_user_name",
    "bad_artist_name",
    "bad_track_name",
    "missing_timestamp",
    "bad_timestamp",
)
# Unix seconds outside this window are not real listens (and would overflow timestamps).
MIN_TS, MAX_TS = 0, 253402300799


@dataclass
class Rejects:
    """Rejected lines counted by reason, with a few `file:line` examples of each."""

    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    # A dump reader's thread and the aggregator's (a staged block parsed again) both count.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, reason: str, where: str, n: int = 1) -> None:
        """Count `n` rejected lines under `reason`, remembering the first few places."""
        with self._lock:
            self.counts[reason] = self.counts.get(reason, 0) + n
            kept = self.examples.setdefault(reason, [])
            if len(kept) < EXAMPLES_PER_REASON:
                kept.append(where)

    @property
    def total(self) -> int:
        """All rejected lines."""
        return sum(self.counts.values())


def _without_bom(line: bytes | str) -> bytes | str:
    """The first line of a file without the byte-order mark some editors write."""
    if isinstance(line, bytes):
        return line.removeprefix(b"\xef\xbb\xbf")
    return line.removeprefix("\ufeff")


def _text(value: object) -> str | None:
    """A usable name: a string that is not blank."""
    if isinstance(value, str) and value.strip():
        return value
    return None


def _timestamp(value: object) -> int | None | bool:
    """Unix seconds from an int/float/numeric string; False when present but not numeric."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        seconds = int(value)
    elif isinstance(value, str):
        try:
            seconds = int(float(value))
        except (ValueError, OverflowError):  # "abc", "inf"
            return False
    else:
        return False
    return seconds if MIN_TS <= seconds <= MAX_TS else False


def raw_mbid(meta: dict) -> str | None:
    """The recording MBID a listen's track_metadata carries, unchecked: mbid_mapping's,
    else additional_info's, whichever is first a string."""
    for part in ("mbid_mapping", "additional_info"):
        inner = meta.get(part)
        if isinstance(inner, dict):
            value = inner.get("recording_mbid")
            if isinstance(value, str):
                return value
    return None


def parse_listen(
    line: bytes | str, user: str | None
) -> tuple[str, str, str, int, str | None] | str:
    """One line -> (user_name, artist_name, track_name, unix_seconds, raw recording_mbid),
    or a reject reason."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return "invalid_json"
    if not isinstance(obj, dict):
        return "not_an_object"
    meta = obj.get("track_metadata")
    if not isinstance(meta, dict):
        return "bad_track_metadata"
    user_name = user if user is not None else _text(obj.get("user_name"))
    if user_name is None:
        return "bad_user_name"
    artist = _text(meta.get("artist_name"))
    if artist is None:
        return "bad_artist_name"
    track = _text(meta.get("track_name"))
    if track is None:
        return "bad_track_name"
    # Either key may carry the time; a null listened_at falls back to timestamp.
    raw_ts = obj.get("listened_at")
    if raw_ts is None:
        raw_ts = obj.get("timestamp")
    if raw_ts is None:
        return "missing_timestamp"
    seconds = _timestamp(raw_ts)
    if seconds is False:
        return "bad_timestamp"
    return user_name, artist, track, seconds, raw_mbid(meta)


def listens_table(rows: list[tuple[str, str, str, int, str | None]]) -> pa.Table:
    """Parsed listens (parse_listen's tuples) as one Arrow table in LISTEN_SCHEMA."""
    columns = list(zip(*rows, strict=True)) if rows else [(), (), (), (), ()]
    return pa.Table.from_arrays(
        [
            pa.array(columns[0], pa.string()),
            pa.array(columns[1], pa.string()),
            pa.array(columns[2], pa.string()),
            pa.array(columns[3], pa.int64()).cast(pa.timestamp("s", tz="UTC")),
            pa.array(columns[4], pa.string()),
        ],
        schema=LISTEN_SCHEMA,
    )


def parse_lines(
    lines: Iterable[bytes | str],
    rejects: Rejects,
    source: str,
    user: str | None = None,
    batch_rows: int = BATCH_ROWS,
) -> Iterator[pa.Table]:
    """Stream JSON lines into Arrow batches of valid listens; bad lines go to `rejects`.

    `user` names the listener for formats without a user_name (a user export).
    Blank lines are ignored, as JSON-lines readers do.
    """
    rows: list[tuple[str, str, str, int, str | None]] = []
    for number, line in enumerate(lines, start=1):
        if number == 1:
            line = _without_bom(line)
        if not line.strip():
            continue
        parsed = parse_listen(line, user)
        if isinstance(parsed, str):
            rejects.add(parsed, f"{source}:{number}")
            continue
        rows.append(parsed)
        if len(rows) >= batch_rows:
            yield listens_table(rows)
            rows = []
    if rows:
        yield listens_table(rows)
