"""Stream a synthetic ListenBrainz dump of N listens to disk, in the formats the server writes.

    python tests/bench/scale_dump.py --listens 10M --format spark --out DIR
    python tests/bench/scale_dump.py --listens 10M --format both --out DIR --incremental-days 3

Formats (the layouts of /work/shared/data/listenbrainz-samples/PROVENANCE.md):
- json: `listenbrainz-listens-dump-<id>-<YYYYMMDD-HHMMSS>-full.tar.zst` holding
  `<archive>/SCHEMA_SEQUENCE`, `TIMESTAMP`, `COPYING` and `<archive>/listens/<YYYY>/<M>.listens`
  (one JSON listen per line, key `timestamp`, as a full dump's lines);
- spark: `listenbrainz-spark-dump-<id>-<ts>-full.tar`, an uncompressed tar of `0.parquet`,
  `1.parquet`, ... (about 128 MB each, zstd, columns and types of the real sample) plus
  COPYING, SCHEMA_SEQUENCE, START_TIMESTAMP and END_TIMESTAMP;
- both: the two from one generation pass.
With `--incremental-days D` it also writes the next D days' listens as incremental dumps
(`...-<id+1>-<ts>-incremental.tar.zst` / `.tar`, START_TIMESTAMP and END_TIMESTAMP), for
`songrec etl dump --append`.

The listens have the sample's structure (etl/sample.py) at any size: Zipf-like song
popularity inside genres, listeners who like a few genres (a Dirichlet mix), heavy-tailed
plays per (listener, song) with about half played once, listeners of very different
activity (lognormal, up to 0.5% of all listens for one) who join over the years (more
later: the service grows) and stay a while, plays of a song clustered in time after its
discovery, 3% of listens spelled differently (case, doubled spaces), about 85% of songs
with a canonical lower-case recording MBID derived from the song. Deterministic from
--seed and the sizes.

Memory stays bounded whatever N: pass 1 draws listeners in blocks of about BLOCK_LISTENS
listens and appends (time, user, song) records to one spill file per month in a scratch
folder beside the output (16 bytes a listen); pass 2 reads one month at a time, sorts it by
time and renders it in chunks of CHUNK_ROWS straight into the archives (JSON months go
through a temporary file, as a tar member's size must be known before its bytes). Only
numbers are kept per song (a few bytes); names, MBIDs and lines are made per chunk.
Writes a manifest `scale_dump.json` (sizes, spec, files, generation speed) beside the
dumps; files appear under their final names only once complete.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import zstandard

MANIFEST = "scale_dump.json"
FORMATS = ("spark", "json")
# Listens drawn per block of listeners in pass 1, and rendered per chunk in pass 2.
BLOCK_LISTENS = 2_000_000
CHUNK_ROWS = 200_000
SPARK_FILE_BYTES = 128 * 2**20
SPARK_ROW_GROUP_ROWS = 500_000
ZSTD_LEVEL = 3
# Per-listener mean plays of a song, before the cut at the listener's listen count.
MEAN_PLAYS = 4.2
MAX_PLAYS = 5_000
MBID_SHARE = 0.85
VARIANT_SHARE = 0.03
SONGS_PER_ARTIST = 8
SONGS_PER_RELEASE = 10
ZIPF = 0.8
GROWTH = 2.5  # listeners joining at the end of the span vs the start: e^GROWTH
BURST_DAYS = 45.0  # plays of a song follow its discovery by about this many days
DEFAULT_START = "2010-01-01"
DEFAULT_END = "2025-01-01"
DEFAULT_SEED = 42

_RECORD = np.dtype([("ts", "<i8"), ("user", "<i4"), ("song", "<i4")])
_ADJECTIVES = (
    "Amber Velvet Neon Silver Crimson Hollow Electric Golden Paper Quiet Static Lunar Wild "
    "Glass Copper Midnight Northern Faded Broken Bright Distant Frozen Hidden Restless Scarlet "
    "Wandering Indigo Burning Silent Gentle Cobalt Violet Rusty Marble Solar Drifting Tidal "
    "Sleepy Stormy Crystal Dusty Emerald Ivory Jade Lucky Misty Opal Pale Rapid Secret Tender "
    "Café Señora Dansk Östra Łódzka Ελληνική Тихий 東京"
).split()
_NOUNS = (
    "Harbor Comets Lanterns Foxes Rivers Engines Gardens Echoes Satellites Orchards Tides "
    "Pilots Mirrors Parade Horizon Signals Wolves Meadow Avenue Circuit Canyon Dreamers "
    "Embers Fields Giants Islands Kites Machines Nomads Oceans Poets Ravens Sparrows Thunder "
    "Valley Waves Arcade Bridges Clouds Deserts Forests Galaxies Hearts Motels Rockets "
    "Niños Måne Ритм 夜"
).split()
# Most titles carry no suffix; a few are versions.
_SUFFIXES = [""] * 24 + [" (Live)", " (Remix)", " (Demo)", " - Remastered", " Pt. II", " (Edit)"]
_ARTIST_FORMS = ("{}", "The {}", "{} Trio", "{} Collective", "{} & Friends", "DJ {}")
GENRES = 24


def parse_count(text: str) -> int:
    """'10M', '2.5k', '100000' -> an integer."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgGbB]?)\s*", str(text))
    if not match:
        raise argparse.ArgumentTypeError(f"not a count: {text!r} (e.g. 10M, 250k, 5000)")
    scale = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "b": 10**9}[match.group(2).lower()]
    value = int(round(float(match.group(1)) * scale))
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def count_label(n: int) -> str:
    """10_000_000 -> '10M' (file and folder names)."""
    for unit, scale in (("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if n >= scale and n % (scale // 10) == 0:
            value = n / scale
            return f"{value:g}{unit}"
    return str(n)


@dataclass(frozen=True)
class ScaleSpec:
    """What to generate. Users and songs default to grow with listens (see `sized`)."""

    listens: int
    users: int
    songs: int
    seed: int = DEFAULT_SEED
    start: str = DEFAULT_START
    end: str = DEFAULT_END
    incremental_days: int = 0
    dump_id: int = 1

    @classmethod
    def sized(cls, listens: int, users: int | None = None, songs: int | None = None, **kw):
        """Defaults: a listener per 500 listens (100M: 200k listeners) and a catalogue song
        per 25 listens (100M: 4M songs, of which about 2M get played)."""
        return cls(
            listens=listens,
            users=users or max(20, listens // 500),
            songs=songs or max(1_000, listens // 25),
            **kw,
        )

    @property
    def start_s(self) -> int:
        return int(datetime.fromisoformat(self.start).replace(tzinfo=UTC).timestamp())

    @property
    def end_s(self) -> int:
        return int(datetime.fromisoformat(self.end).replace(tzinfo=UTC).timestamp())


def splitmix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 of each uint64 (a fast, well-mixed hash)."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


# Two hex digits per byte value, as two ASCII bytes.
_HEX_PAIRS = np.frombuffer("".join(f"{value:02x}" for value in range(256)).encode(), np.uint16)
# (text columns, digit columns) of the 8-4-4-4-12 groups.
_GROUPS = ((0, 0, 8), (9, 8, 4), (14, 12, 4), (19, 16, 4), (24, 20, 12))


def uuids(ids: np.ndarray, namespace: int, seed: int) -> pa.StringArray:
    """A canonical lower-case version-4 UUID per id, the same for the same (namespace, id)."""
    base = (ids.astype(np.uint64) << np.uint64(8)) | np.uint64(namespace)
    with np.errstate(over="ignore"):
        high = splitmix(base ^ splitmix(np.array([seed], np.uint64)))
        low = splitmix(high ^ np.uint64(0x5851F42D4C957F2D))
    raw = np.empty((len(ids), 16), np.uint8)
    raw[:, :8] = high.astype(">u8").view(np.uint8).reshape(-1, 8)
    raw[:, 8:] = low.astype(">u8").view(np.uint8).reshape(-1, 8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    digits = _HEX_PAIRS[raw].view(np.uint8)  # (n, 32)
    text = np.full((len(ids), 36), ord("-"), np.uint8)
    for at, start, width in _GROUPS:
        text[:, at : at + width] = digits[:, start : start + width]
    offsets = np.arange(0, 36 * (len(ids) + 1), 36, dtype=np.int32)
    return pa.StringArray.from_buffers(
        len(ids), pa.py_buffer(offsets), pa.py_buffer(text.tobytes())
    )


class Catalog:
    """The songs as numbers: artist, genre, popularity order within the genre.

    Names, MBIDs and other texts come from a song's number when a chunk is rendered."""

    def __init__(self, spec: ScaleSpec) -> None:
        rng = np.random.default_rng([spec.seed, 0])
        self.seed = spec.seed
        n_songs = spec.songs
        # Artists of very different sizes (geometric, mean SONGS_PER_ARTIST), songs contiguous.
        sizes = rng.geometric(1 / SONGS_PER_ARTIST, n_songs // 2 + 10)
        ends = np.cumsum(sizes)
        n_artists = int(np.searchsorted(ends, n_songs)) + 1
        starts = np.concatenate(([0], ends[: n_artists - 1]))
        self.artist_of_song = (np.searchsorted(starts, np.arange(n_songs), "right") - 1).astype(
            np.int32
        )
        self.n_artists = n_artists
        self.genre_of_artist = rng.integers(0, GENRES, n_artists).astype(np.int16)
        genre_of_song = self.genre_of_artist[self.artist_of_song]
        # Within a genre, songs in popularity order (random, so popular songs are spread
        # over artists and numbers); rank r is drawn with P ~ r^-ZIPF.
        order = rng.permutation(n_songs)
        self.by_genre = order[np.argsort(genre_of_song[order], kind="stable")].astype(np.int32)
        counts = np.bincount(genre_of_song, minlength=GENRES)
        self.genre_start = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
        self.genre_size = counts.astype(np.int64)
        self.genre_of_song = genre_of_song
        self.has_mbid = (
            splitmix(np.arange(n_songs, dtype=np.uint64) ^ np.uint64(spec.seed)) % np.uint64(1000)
        ) < np.uint64(int(MBID_SHARE * 1000))
        words = [f"{a} {n}" for a in _ADJECTIVES for n in _NOUNS]
        self._words = pa.array(words)
        # An artist's name: a word pair in one of a few forms, a number past that.
        forms = len(words) * len(_ARTIST_FORMS)
        artists = []
        for a in range(n_artists):
            i = (a * 7919) % forms if n_artists <= forms else a
            pair = words[i % len(words)]
            form = _ARTIST_FORMS[(i // len(words)) % len(_ARTIST_FORMS)]
            name = form.format(pair)
            artists.append(name if i < forms else f"{name} {i // forms + 1}")
        self.artist_names = pa.array(artists)
        self._artist_mbids = None
        self._suffixes = pa.array(_SUFFIXES)

    def pick(self, genre: np.ndarray, uniform: np.ndarray) -> np.ndarray:
        """Songs of `genre` at Zipf-like popularity ranks (inverse CDF of r^-ZIPF)."""
        size = self.genre_size[genre]
        rank = np.minimum((size * uniform ** (1 / (1 - ZIPF))).astype(np.int64), size - 1)
        return self.by_genre[self.genre_start[genre] + rank]

    def track_names(self, song: np.ndarray) -> pa.Array:
        """Titles: songs of one artist are contiguous numbers, so a multiplier coprime to
        the word pairs' count gives each of an artist's songs its own pair."""
        pairs = (song.astype(np.int64) * 104_729) % len(self._words)
        suffix = splitmix(song.astype(np.uint64) ^ np.uint64(77)) % np.uint64(len(_SUFFIXES))
        return pc.binary_join_element_wise(
            self._words.take(pairs), self._suffixes.take(suffix.astype(np.int64)), ""
        )

    def release_names(self, song: np.ndarray) -> pa.Array:
        release = song.astype(np.int64) // SONGS_PER_RELEASE
        return self._words.take((release * 7_927 + 13) % len(self._words))

    def mbids(self, song: np.ndarray) -> pa.Array:
        """The song's recording MBID, null for the songs without one."""
        ids = uuids(song, 1, self.seed)
        return pc.if_else(pa.array(self.has_mbid[song]), ids, pa.scalar(None, pa.string()))

    def msids(self, song: np.ndarray) -> pa.Array:
        return uuids(song, 2, self.seed)

    def duration_ms(self, song: np.ndarray) -> np.ndarray:
        return 120_000 + (splitmix(song.astype(np.uint64)) % np.uint64(240_000)).astype(np.int64)


@dataclass
class Listeners:
    """Per listener: listens in the dump, active window (Unix seconds), taste over genres."""

    listens: np.ndarray
    join: np.ndarray
    leave: np.ndarray
    taste: np.ndarray


def plan_listeners(spec: ScaleSpec) -> Listeners:
    """Listens per listener summing to exactly spec.listens."""
    rng = np.random.default_rng([spec.seed, 1])
    users = spec.users
    start, end = spec.start_s, spec.end_s
    span = end - start
    # Joins grow over the span (density ~ e^(GROWTH t)); stays last a lognormal time.
    t = np.log1p(rng.random(users) * np.expm1(GROWTH)) / GROWTH
    join = start + (t * span).astype(np.int64)
    stay = (rng.lognormal(np.log(540.0), 1.0, users) * 86_400).astype(np.int64)
    leave = np.minimum(end, join + np.maximum(stay, 86_400))
    join = np.minimum(join, leave - 3_600)
    days = (leave - join) / 86_400
    weight = rng.lognormal(0.0, 1.2, users) * np.power(days, 0.7)
    cap = max(1_000, int(spec.listens * 0.005))
    share = weight / weight.sum() * spec.listens
    for _ in range(5):  # cap the busiest, give the rest to the others
        over = share > cap
        if not over.any():
            break
        extra = (share[over] - cap).sum()
        share[over] = cap
        share[~over] += extra * share[~over] / share[~over].sum()
    listens = np.maximum(1, np.floor(share)).astype(np.int64)
    # Exactly spec.listens: the remainder to the largest fractions, or off the busiest.
    gap = spec.listens - int(listens.sum())
    if gap > 0:
        listens[np.argsort(-(share - np.floor(share)))[:gap]] += 1
    while gap < 0:
        top = np.argsort(-listens)[:-gap]
        take = np.minimum(listens[top] - 1, -gap // len(top) + 1)
        for i, n in zip(top, take, strict=True):
            if gap == 0:
                break
            n = min(int(n), -gap)
            listens[i] -= n
            gap += n
    taste = rng.dirichlet(np.full(GENRES, 0.15), users).astype(np.float32)
    return Listeners(listens, join, leave, taste)


def blocks(listens: np.ndarray, per_block: int) -> list[tuple[int, int]]:
    """Consecutive listener ranges of about `per_block` listens each."""
    cuts = np.searchsorted(np.cumsum(listens), np.arange(per_block, listens.sum(), per_block))
    edges = np.unique(np.concatenate(([0], cuts + 1, [len(listens)])))
    edges = edges[edges <= len(listens)]
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def _draw_genres(taste: np.ndarray, row: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A genre per draw from its listener's taste (rows of `taste`), without a big matrix:
    rows of cumulative taste laid end to end, one search."""
    cum = np.cumsum(taste, axis=1, dtype=np.float64)
    cum /= cum[:, -1:]
    flat = (cum + np.arange(len(taste))[:, None]).ravel()
    found = np.searchsorted(flat, row + rng.random(len(row)) * 0.999999, "right")
    return np.minimum(found - row * GENRES, GENRES - 1)


@dataclass
class Stats:
    """What pass 1 made: pairs, single plays, songs played, listens with an MBID."""

    pairs: int = 0
    single: int = 0
    mbid_listens: int = 0
    incremental: int = 0


def draw_block(
    spec: ScaleSpec,
    cat: Catalog,
    people: Listeners,
    first: int,
    last: int,
    block: int,
    stats: Stats,
    played: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Listens (records) of listeners first..last-1, and their incremental listens."""
    rng = np.random.default_rng([spec.seed, 2, block])
    users = np.arange(first, last)
    want = people.listens[first:last]
    taste = people.taste[first:last]
    draws = np.ceil(want / MEAN_PLAYS * 1.6).astype(np.int64) + 4
    row = np.repeat(np.arange(len(users)), draws)
    genre = _draw_genres(taste, row, rng)
    song = cat.pick(genre, rng.random(len(row)))
    # One pair per (listener, song), in draw order.
    _, first_seen = np.unique(row.astype(np.int64) * spec.songs + song, return_index=True)
    first_seen.sort()
    row, song, genre = row[first_seen], song[first_seen], genre[first_seen]
    boost = taste[row, genre] / taste.max(axis=1)[row]
    plays = 1 + np.floor(rng.pareto(1.3, len(row)) * (0.6 + 1.6 * boost)).astype(np.int64)
    plays = np.minimum(plays, MAX_PLAYS)
    # Cut each listener's pairs at their listen count.
    ends = np.cumsum(plays)
    starts_of_row = np.concatenate(([0], np.cumsum(np.bincount(row, minlength=len(users)))))
    base = np.concatenate(([0], ends))[starts_of_row[:-1]]
    before = ends - plays - base[row]
    keep = before < want[row]
    plays = np.minimum(plays, want[row] - before)[keep]
    row, song = row[keep], song[keep]
    short = want - np.bincount(row, weights=plays, minlength=len(users)).astype(np.int64)
    if short.any():  # rare: too few draws; the listener's first song gets the rest
        head = np.unique(row, return_index=True)[1]
        plays[head] += short[row[head]]
    stats.pairs += len(row)
    stats.single += int((plays == 1).sum())
    stats.mbid_listens += int(plays[cat.has_mbid[song]].sum())
    played[song] = True
    # Each play: after the song's discovery (uniform in the window), within the window.
    join, leave = people.join[first:last], people.leave[first:last]
    window = leave - join
    found = join[row] + (rng.random(len(row)) * window[row]).astype(np.int64)
    listen_row = np.repeat(row, plays)
    offset = rng.exponential(BURST_DAYS * 86_400, len(listen_row)).astype(np.int64)
    offset[np.cumsum(plays) - plays] = 0  # the discovery itself
    ts = np.repeat(found, plays) + offset
    ts = join[listen_row] + (ts - join[listen_row]) % window[listen_row]
    records = np.empty(len(ts), _RECORD)
    records["ts"] = ts
    records["user"] = users[listen_row]
    records["song"] = np.repeat(song, plays)
    incremental = _incremental(spec, cat, people, first, last, row, song, plays, rng)
    stats.incremental += len(incremental)
    return records, incremental


def _incremental(spec, cat, people, first, last, row, song, plays, rng) -> np.ndarray:
    """The next days' listens of listeners still active at the end: 80% songs they play
    (by their plays), 20% new picks of their taste."""
    days = spec.incremental_days
    if not days:
        return np.empty(0, _RECORD)
    leave = people.leave[first:last]
    join = people.join[first:last]
    active = leave >= spec.end_s
    rate = people.listens[first:last] / np.maximum(1.0, (leave - join) / 86_400)
    n = np.where(active, rng.poisson(rate * days), 0)
    listen_row = np.repeat(np.arange(last - first), n)
    out = np.empty(len(listen_row), _RECORD)
    if not len(listen_row):
        return out
    # Songs by plays within each listener's pairs: a search in the pairs' cumulative plays.
    cum = np.cumsum(plays)
    counts = np.bincount(row, minlength=last - first)
    first_pair = np.concatenate(([0], np.cumsum(counts)[:-1]))
    before = np.concatenate(([0], cum))[first_pair]
    total = np.concatenate(([0], cum))[first_pair + counts] - before
    target = before[listen_row] + (rng.random(len(listen_row)) * total[listen_row]).astype(np.int64)
    songs = song[np.minimum(np.searchsorted(cum, target, "right"), len(song) - 1)]
    new = rng.random(len(listen_row)) < 0.2
    taste = people.taste[first:last]
    genre = _draw_genres(taste, listen_row[new], rng)
    songs[new] = cat.pick(genre, rng.random(int(new.sum())))
    out["ts"] = spec.end_s + (rng.random(len(listen_row)) * days * 86_400).astype(np.int64)
    out["user"] = first + listen_row
    out["song"] = songs
    return out


class MonthSpill:
    """Pass 1's records, one append-only file per month (key: months since 1970)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.counts: dict[int, int] = {}

    def add(self, records: np.ndarray) -> None:
        if not len(records):
            return
        month = records["ts"].astype("datetime64[s]").astype("datetime64[M]").astype(np.int64)
        order = np.argsort(month, kind="stable")
        month, records = month[order], records[order]
        keys, starts = np.unique(month, return_index=True)
        ends = np.append(starts[1:], len(month))
        for key, a, b in zip(keys.tolist(), starts, ends, strict=True):
            with open(self.folder / f"{key}.bin", "ab") as out:
                records[a:b].tofile(out)
            self.counts[key] = self.counts.get(key, 0) + int(b - a)

    def months(self) -> Iterator[tuple[int, np.ndarray]]:
        """(month key, its records sorted by time, then listener and song), oldest first."""
        for key in sorted(self.counts):
            path = self.folder / f"{key}.bin"
            records = np.fromfile(path, _RECORD)
            path.unlink()
            order = np.lexsort((records["song"], records["user"], records["ts"]))
            yield key, records[order]


def month_name(key: int) -> tuple[int, int]:
    """Months since 1970 -> (year, month 1..12)."""
    return 1970 + key // 12, key % 12 + 1


class Renderer:
    """Columns of one chunk of sorted records: what both formats share."""

    def __init__(self, cat: Catalog, seed: int) -> None:
        self.cat = cat
        self.seed = seed
        words = [f"{a}{n}".lower() for a in _ADJECTIVES[:52] for n in _NOUNS[:47]]
        self._user_words = pa.array(words)
        self._cached: tuple | None = None

    def user_names(self, user: np.ndarray) -> pa.Array:
        word = self._user_words.take((user.astype(np.int64) * 31) % len(self._user_words))
        return pc.binary_join_element_wise(word, pc.cast(pa.array(user), pa.string()), "_")

    def columns(self, rec: np.ndarray, key: tuple) -> dict[str, pa.Array]:
        """The texts both formats write for a chunk (made once per chunk)."""
        if self._cached is not None and self._cached[0] == key:
            return self._cached[1]
        song = rec["song"]
        artist, track = self.names(song, key)
        columns = {
            "artist": artist,
            "track": track,
            "release": self.cat.release_names(song),
            "msid": self.cat.msids(song),
            "mbid": self.cat.mbids(song),
        }
        self._cached = (key, columns)
        return columns

    def names(self, song: np.ndarray, key: tuple) -> tuple[pa.Array, pa.Array]:
        """Artist and track names as submitted: 3% case or spacing variants."""
        artist = self.cat.artist_names.take(self.cat.artist_of_song[song])
        track = self.cat.track_names(song)
        rng = np.random.default_rng([self.seed, 3, *key])
        variant = rng.random(len(song)) < VARIANT_SHARE
        if variant.any():
            kind = rng.integers(0, 3, int(variant.sum()))
            mask = pa.array(variant)
            artist = pc.replace_with_mask(artist, mask, _variants(artist.filter(mask), kind))
            track = pc.replace_with_mask(track, mask, _variants(track.filter(mask), kind))
        return artist, track


def _variants(names: pa.Array, kind: np.ndarray) -> pa.Array:
    lower, upper = pc.utf8_lower(names), pc.utf8_upper(names)
    spaced = pc.binary_join_element_wise("  ", pc.replace_substring(names, " ", "  "), " ", "")
    return pc.if_else(pa.array(kind == 0), lower, pc.if_else(pa.array(kind == 1), upper, spaced))


class JsonDump:
    """listenbrainz-listens-dump-...tar.zst: listens/<YYYY>/<M>.listens, written month by month."""

    def __init__(self, path: Path, name: str, meta: dict[str, str], threads: int) -> None:
        self.path, self.name = path, name
        self.part = path.with_name(path.name + ".part")
        self.raw = self.part.open("wb")
        compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=threads)
        self.writer = compressor.stream_writer(self.raw, closefd=False)
        self.tar = tarfile.open(fileobj=self.writer, mode="w|", bufsize=1 << 20)
        for member, text in meta.items():
            _add_bytes(self.tar, f"{name}/{member}", text.encode())
        self.month_file = self.path.with_name(path.name + ".month")
        self.current: tuple[int, int] | None = None
        self.out = None

    def write(self, month: tuple[int, int], renderer: Renderer, rec: np.ndarray, key) -> None:
        if month != self.current:
            self._close_month()
            self.current = month
            self.out = self.month_file.open("wb")
        self.out.write(_json_lines(renderer, rec, key))

    def _close_month(self) -> None:
        if self.out is None:
            return
        self.out.close()
        year, month = self.current
        info = tarfile.TarInfo(f"{self.name}/listens/{year}/{month}.listens")
        info.size = self.month_file.stat().st_size
        info.mtime = 1735689600
        with self.month_file.open("rb") as data:
            self.tar.addfile(info, data)
        self.month_file.unlink()
        self.out = None

    def close(self) -> None:
        self._close_month()
        self.tar.close()
        self.writer.close()
        self.raw.close()
        self.part.replace(self.path)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    import io

    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 1735689600
    tar.addfile(info, io.BytesIO(data))


def _text(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(values), pa.string())


def _json_lines(renderer: Renderer, rec: np.ndarray, key) -> memoryview:
    """Lines as a full dump holds them (the server's Listen.to_json: key `timestamp`)."""
    cat = renderer.cat
    song, user, ts = rec["song"], rec["user"], rec["ts"]
    columns = renderer.columns(rec, key)
    artist, track, msid, mbid = (columns[c] for c in ("artist", "track", "msid", "mbid"))
    mbid_part = pc.if_else(
        pc.is_null(mbid),
        "",
        pc.binary_join_element_wise('"recording_mbid":"', mbid, '",', ""),
    )
    lines = pc.binary_join_element_wise(
        '{"user_id":',
        _text(user.astype(np.int64) + 1),
        ',"user_name":"',
        renderer.user_names(user),
        '","timestamp":',
        _text(ts),
        ',"track_metadata":{"artist_name":"',
        artist,
        '","track_name":"',
        track,
        '","release_name":"',
        columns["release"],
        '","additional_info":{',
        mbid_part,
        '"recording_msid":"',
        msid,
        '","artist_names":["',
        artist,
        '"],"duration_ms":',
        _text(cat.duration_ms(song)),
        ',"music_service":"spotify.com","submission_client":"songrec-scale-bench",'
        '"submission_client_version":"1.0"}},"recording_msid":"',
        msid,
        '","inserted_timestamp":',
        _text(ts + 5 + user.astype(np.int64) % 600),
        "}\n",
        "",
    )
    offsets = np.frombuffer(lines.buffers()[1], np.int32, len(lines) + 1, lines.offset * 4)
    return memoryview(lines.buffers()[2])[offsets[0] : offsets[-1]]


# Columns and types of the real Spark dump sample (spark-full-dump/N.parquet).
SPARK_SCHEMA = pa.schema(
    [
        pa.field("listened_at", pa.timestamp("ns"), nullable=False),
        pa.field("created", pa.timestamp("ns"), nullable=False),
        pa.field("user_id", pa.int64(), nullable=False),
        pa.field("recording_msid", pa.string(), nullable=False),
        pa.field("artist_name", pa.string(), nullable=False),
        pa.field("artist_credit_id", pa.int64()),
        pa.field("release_name", pa.string()),
        pa.field("release_mbid", pa.string()),
        pa.field("recording_name", pa.string(), nullable=False),
        pa.field("recording_mbid", pa.string()),
        pa.field("artist_credit_mbids", pa.list_(pa.string())),
    ]
)


def _spark_table(renderer: Renderer, rec: np.ndarray, key) -> pa.Table:
    cat = renderer.cat
    song, user, ts = rec["song"], rec["user"], rec["ts"]
    columns = renderer.columns(rec, key)
    artist_id = cat.artist_of_song[song].astype(np.int64)
    release = song.astype(np.int64) // SONGS_PER_RELEASE
    credit = pa.ListArray.from_arrays(
        pa.array(np.arange(len(song) + 1, dtype=np.int32)), uuids(artist_id, 3, cat.seed)
    )
    created = ts + 5 + user.astype(np.int64) % 600
    return pa.Table.from_arrays(
        [
            pa.array(ts * 1_000_000_000, pa.int64()).cast(pa.timestamp("ns")),
            pa.array(created * 1_000_000_000, pa.int64()).cast(pa.timestamp("ns")),
            pa.array(user.astype(np.int64) + 1),
            columns["msid"],
            columns["artist"],
            pa.array(artist_id + 1_000),
            columns["release"],
            pc.if_else(
                pa.array(cat.has_mbid[song]),
                uuids(release, 4, cat.seed),
                pa.scalar(None, pa.string()),
            ),
            columns["track"],
            columns["mbid"],
            credit,
        ],
        schema=SPARK_SCHEMA,
    )


class SparkDump:
    """listenbrainz-spark-dump-...tar: N.parquet files of about SPARK_FILE_BYTES, each made
    in a scratch file and appended to the (uncompressed) tar as soon as it is complete."""

    def __init__(self, path: Path, meta: dict[str, str], row_group_rows: int) -> None:
        self.path = path
        self.part = path.with_name(path.name + ".part")
        self.tar = tarfile.open(self.part, "w")
        for member, text in meta.items():
            _add_bytes(self.tar, member, text.encode())
        self.row_group_rows = row_group_rows
        self.pending: list[pa.Table] = []
        self.pending_rows = 0
        self.files = 0
        self.writer: pq.ParquetWriter | None = None
        self.sink = None
        self.scratch = path.with_name(path.name + ".parquet")
        self.bytes_per_row = 60.0

    def write(self, month, renderer: Renderer, rec: np.ndarray, key) -> None:
        self.pending.append(_spark_table(renderer, rec, key))
        self.pending_rows += len(rec)
        while self.pending_rows >= self._group_rows():
            self._write_group(self._group_rows())

    def _group_rows(self) -> int:
        """Rows of the next row group: a full one, or what still fits the file."""
        if self.sink is None:
            return self.row_group_rows
        room = SPARK_FILE_BYTES - self.sink.tell()
        return max(1_000, min(self.row_group_rows, int(room / self.bytes_per_row)))

    def _write_group(self, rows: int) -> None:
        table = pa.concat_tables(self.pending)
        group, rest = table.slice(0, rows), table.slice(rows)
        self.pending = [rest] if rest.num_rows else []
        self.pending_rows = rest.num_rows
        if self.writer is None:
            self.sink = self.scratch.open("wb")
            self.writer = pq.ParquetWriter(self.sink, SPARK_SCHEMA, compression="zstd")
        before = self.sink.tell()
        self.writer.write_table(group, row_group_size=group.num_rows)
        self.bytes_per_row = max(1.0, (self.sink.tell() - before) / max(1, group.num_rows))
        if self.sink.tell() >= SPARK_FILE_BYTES * 0.99:
            self._close_file()

    def _close_file(self) -> None:
        if self.writer is None:
            return
        self.writer.close()
        self.sink.close()
        info = self.tar.gettarinfo(self.scratch, arcname=f"{self.files}.parquet")
        info.mtime, info.uid, info.gid, info.uname, info.gname = 1735689600, 0, 0, "", ""
        with self.scratch.open("rb") as data:
            self.tar.addfile(info, data)
        self.scratch.unlink()
        self.files += 1
        self.writer = self.sink = None

    def close(self) -> None:
        while self.pending_rows:
            self._write_group(min(self.pending_rows, self._group_rows()))
        self._close_file()
        self.tar.close()
        self.part.replace(self.path)


def stamp(seconds: int, fmt: str = "%Y%m%d-%H%M%S") -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime(fmt)


def dump_names(spec: ScaleSpec) -> dict[str, str]:
    """File names of the dumps (full and, with incremental days, incremental)."""
    end = stamp(spec.end_s)
    names = {
        "json": f"listenbrainz-listens-dump-{spec.dump_id}-{end}-full.tar.zst",
        "spark": f"listenbrainz-spark-dump-{spec.dump_id}-{end}-full.tar",
    }
    if spec.incremental_days:
        later = stamp(spec.end_s + spec.incremental_days * 86_400)
        names["json_incremental"] = (
            f"listenbrainz-listens-dump-{spec.dump_id + 1}-{later}-incremental.tar.zst"
        )
        names["spark_incremental"] = (
            f"listenbrainz-spark-dump-{spec.dump_id + 1}-{later}-incremental.tar"
        )
    return names


COPYING = (
    "Synthetic listens made by songrec's tests/bench/scale_dump.py for benchmarks: no real "
    "listener, artist or recording. ListenBrainz publishes its real listen data under CC0.\n"
)


def _writers(spec, formats, out: Path, incremental: bool, first_ts: int, row_group_rows: int):
    names = dump_names(spec)
    start_s, end_s = first_ts, spec.end_s
    if incremental:
        start_s, end_s = spec.end_s, spec.end_s + spec.incremental_days * 86_400
    suffix = "_incremental" if incremental else ""
    writers = []
    if "json" in formats:
        file = names["json" + suffix]
        archive = file.removesuffix(".tar.zst")
        meta = {"SCHEMA_SEQUENCE": "1\n", "COPYING": COPYING}
        if incremental:
            meta["START_TIMESTAMP"] = stamp(start_s, "%Y-%m-%d %H:%M:%S") + "\n"
            meta["END_TIMESTAMP"] = stamp(end_s, "%Y-%m-%d %H:%M:%S") + "\n"
        else:
            meta["TIMESTAMP"] = stamp(end_s, "%Y-%m-%d %H:%M:%S") + "\n"
        writers.append(JsonDump(out / file, archive, meta, threads=-1))
    if "spark" in formats:
        meta = {
            "COPYING": COPYING,
            "SCHEMA_SEQUENCE": "1",
            "START_TIMESTAMP": stamp(start_s, "%Y-%m-%d %H:%M:%S.%f"),
            "END_TIMESTAMP": stamp(end_s, "%Y-%m-%d %H:%M:%S.%f"),
        }
        writers.append(SparkDump(out / names["spark" + suffix], meta, row_group_rows))
    return writers


def _render(spill: MonthSpill, writers, renderer: Renderer, tag: int, on_rows=None) -> int:
    """Pass 2: every month, sorted, in chunks, to every writer; the first listen's time."""
    first_ts = None
    for key, records in spill.months():
        if first_ts is None and len(records):
            first_ts = int(records["ts"][0])
        for n, at in enumerate(range(0, len(records), CHUNK_ROWS)):
            rec = records[at : at + CHUNK_ROWS]
            for writer in writers:
                writer.write(month_name(key), renderer, rec, (tag, key, n))
            if on_rows is not None:
                on_rows(len(rec))
    for writer in writers:
        writer.close()
    return first_ts or 0


def generate(
    spec: ScaleSpec,
    formats: tuple[str, ...],
    out: Path,
    row_group_rows: int = SPARK_ROW_GROUP_ROWS,
    quiet: bool = False,
) -> dict:
    """Write the dumps of `spec` into `out`; returns (and writes) the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    scratch = out / ".scale-dump-scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    started = time.perf_counter()
    say = (lambda *a: None) if quiet else (lambda text: print(text, file=sys.stderr, flush=True))
    cat = Catalog(spec)
    people = plan_listeners(spec)
    spill = MonthSpill(scratch / "full")
    later = MonthSpill(scratch / "incremental")
    stats = Stats()
    played = np.zeros(spec.songs, bool)
    parts = blocks(people.listens, BLOCK_LISTENS)
    for number, (first, last) in enumerate(parts):
        records, incremental = draw_block(spec, cat, people, first, last, number, stats, played)
        spill.add(records)
        later.add(incremental)
        say(f"pass 1 (draw): listeners {last:,} of {spec.users:,}")
    drawn = time.perf_counter() - started
    say(f"pass 1: {spec.listens:,} listens drawn in {drawn:.0f} s; pass 2 (write {formats})")
    done = [0]
    last_said = [time.perf_counter()]

    def on_rows(rows: int) -> None:
        done[0] += rows
        if time.perf_counter() - last_said[0] > 15:
            last_said[0] = time.perf_counter()
            rate = done[0] / (time.perf_counter() - started - drawn)
            say(f"pass 2: {done[0]:,} of {spec.listens:,} listens written ({rate:,.0f}/s)")

    renderer = Renderer(cat, spec.seed)
    # The full dump's start time is its first listen's; the writers need it before the
    # first month is read: it is the earliest spill month's first record.
    first_key = min(spill.counts)
    first_month = np.fromfile(spill.folder / f"{first_key}.bin", _RECORD)
    first_ts = int(first_month["ts"].min())
    del first_month
    writers = _writers(spec, formats, out, False, first_ts, row_group_rows)
    _render(spill, writers, renderer, 0, on_rows)
    if spec.incremental_days:
        writers = _writers(spec, formats, out, True, spec.end_s, row_group_rows)
        _render(later, writers, renderer, 1)
    shutil.rmtree(scratch, ignore_errors=True)
    seconds = time.perf_counter() - started
    names = {k: v for k, v in dump_names(spec).items() if k.split("_")[0] in formats}
    manifest = {
        "spec": asdict(spec),
        "formats": sorted(formats),
        "files": names,
        "bytes": {k: (out / v).stat().st_size for k, v in names.items()},
        "listens": spec.listens,
        "incremental_listens": stats.incremental,
        "users": int((people.listens > 0).sum()),
        "pairs": stats.pairs,
        "single_play_share": round(stats.single / max(1, stats.pairs), 4),
        "songs_played": int(played.sum()),
        "mbid_listen_share": round(stats.mbid_listens / spec.listens, 4),
        "listens_per_user": {
            q: int(np.percentile(people.listens, p))
            for q, p in (("median", 50), ("p90", 90), ("p99", 99), ("max", 100))
        },
        "seconds": round(seconds, 1),
        "draw_seconds": round(drawn, 1),
        "listens_per_s": int(spec.listens / seconds),
        "row_group_rows": row_group_rows,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def matches(out: Path, spec: ScaleSpec, formats: tuple[str, ...]) -> dict | None:
    """The manifest of `out` when it already holds these dumps (same spec, files there)."""
    try:
        manifest = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("spec") != asdict(spec) or not set(formats) <= set(manifest["formats"]):
        return None
    if not all((out / name).is_file() for name in manifest["files"].values()):
        return None
    return manifest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listens", type=parse_count, required=True, help="e.g. 10M")
    parser.add_argument("--format", choices=(*FORMATS, "both"), default="both")
    parser.add_argument("--out", type=Path, required=True, help="folder for the dump(s)")
    parser.add_argument("--users", type=parse_count, help="listeners (default listens/500)")
    parser.add_argument("--songs", type=parse_count, help="catalogue songs (default listens/25)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--start", default=DEFAULT_START, help="first day of listens")
    parser.add_argument("--end", default=DEFAULT_END, help="the full dump's end (exclusive)")
    parser.add_argument(
        "--incremental-days",
        type=int,
        default=0,
        help="also write an incremental dump of the D days after --end (for --append)",
    )
    parser.add_argument("--dump-id", type=int, default=1)
    parser.add_argument(
        "--row-group-rows", type=int, default=SPARK_ROW_GROUP_ROWS, help="Parquet row group"
    )
    parser.add_argument("--force", action="store_true", help="rebuild even if already there")
    args = parser.parse_args(argv)
    spec = ScaleSpec.sized(
        args.listens,
        args.users,
        args.songs,
        seed=args.seed,
        start=args.start,
        end=args.end,
        incremental_days=args.incremental_days,
        dump_id=args.dump_id,
    )
    formats = FORMATS if args.format == "both" else (args.format,)
    manifest = None if args.force else matches(args.out, spec, formats)
    if manifest is not None:
        print(f"{args.out} already holds these dumps (--force to rebuild)", file=sys.stderr)
    else:
        manifest = generate(spec, formats, args.out, args.row_group_rows)
    print(json.dumps(manifest, indent=2))
    print(
        f"{manifest['listens']:,} listens in {manifest['seconds']} s "
        f"({manifest['listens_per_s']:,} listens/s): "
        + ", ".join(f"{name} {size / 2**20:,.0f} MB" for name, size in manifest["bytes"].items()),
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
