"""Deterministic synthetic ListenBrainz listens with real taste structure.

Songs belong to genres and have long-tailed popularity; each listener likes a few genres
(a Dirichlet mix), so listeners who share tastes play the same songs; play counts are
heavy-tailed with about half of user-song pairs played once, as in the reference data,
and a listener plays songs of their favourite genres more. A few percent of listens carry
case/space spelling variants so song identity is exercised. Names are plausible but
clearly synthetic. The batches feed the same listens -> plays path as a real dump.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from songrec.etl.listens import LISTEN_SCHEMA

_ADJECTIVES = (
    "Amber Velvet Neon Silver Crimson Hollow Electric Golden Paper Quiet Static Lunar Wild "
    "Glass Copper Midnight Northern Faded Broken Bright Distant Frozen Hidden Restless Scarlet "
    "Wandering Indigo Burning Silent Gentle Cobalt Violet Rusty Marble Solar Drifting Tidal "
    "Sleepy Stormy Crystal Dusty Emerald Ivory Jade Lucky Misty Opal Pale Rapid Secret Tender"
).split()
_NOUNS = (
    "Harbor Comets Lanterns Foxes Rivers Engines Gardens Echoes Satellites Orchards Tides "
    "Pilots Mirrors Parade Horizon Signals Wolves Meadow Avenue Circuit Canyon Dreamers "
    "Embers Fields Giants Islands Kites Machines Nomads Oceans Poets Ravens Sparrows Thunder "
    "Valley Waves Arcade Bridges Clouds Deserts Forests Galaxies Hearts Motels Rockets"
).split()
_GENRES = (
    "indie rock|synthpop|hip hop|jazz|techno|folk|metal|soul|ambient|punk|house|country|"
    "classical|reggae|drum and bass|blues|dream pop|trap|shoegaze|afrobeat|disco|grunge|"
    "bossa nova|post-rock"
).split("|")
DEFAULT_USERS = 2_500
DEFAULT_SONGS = 12_000
DEFAULT_LISTENS = 1_500_000
DEFAULT_SEED = 42
SONGS_PER_ARTIST = 8
# Share of listens spelled differently (case, doubled spaces) from the canonical names.
VARIANT_SHARE = 0.03
# The reference's largest raw count was 5,874; keep the tail in that range.
MAX_PLAYS = 5_000
_SPAN = (datetime(2018, 1, 1, tzinfo=UTC), datetime(2020, 8, 1, tzinfo=UTC))


@dataclass(frozen=True)
class SampleSpec:
    """Size and seed of a synthetic sample."""

    users: int = DEFAULT_USERS
    songs: int = DEFAULT_SONGS
    listens: int = DEFAULT_LISTENS
    seed: int = DEFAULT_SEED
    genres: int = 20
    users_per_batch: int = 500


@dataclass(frozen=True)
class Catalog:
    """The synthetic songs: names, genre and popularity weight of each."""

    artist_of_song: np.ndarray
    artist_names: list[str]
    track_names: list[str]
    genre_of_song: np.ndarray
    weight: np.ndarray


def _catalog(spec: SampleSpec, rng: np.random.Generator) -> Catalog:
    n_artists = max(1, spec.songs // SONGS_PER_ARTIST)
    names = [f"{a} {n}" for a in _ADJECTIVES for n in _NOUNS]
    # Enough spellings for every artist (4 for up to 9,180 artists: the default sample).
    forms = max(4, -(-n_artists // len(names)))
    artist_idx = rng.permutation(len(names) * forms)[:n_artists]
    # Past the plain word pairs, names gain "The", a genre-free suffix or a number to stay
    # unique.
    artist_names = [
        [
            names[i % len(names)],
            f"The {names[i % len(names)]}",
            f"{names[i % len(names)]} Trio",
            f"{names[i % len(names)]} Collective",
        ][i // len(names)]
        if i // len(names) < 4
        else f"{names[i % len(names)]} {i // len(names) - 2}"
        for i in artist_idx
    ]
    artist_genre = rng.integers(0, spec.genres, n_artists)
    artist_of_song = np.sort(rng.integers(0, n_artists, spec.songs))
    track_names: list[str] = []
    seen: set[tuple[int, str]] = set()
    for artist in artist_of_song:
        title = names[rng.integers(len(names))]
        tries = 0
        while (int(artist), title) in seen:
            tries += 1
            title = names[rng.integers(len(names))] if tries < 5 else f"{title} {tries}"
        seen.add((int(artist), title))
        track_names.append(title)
    # Zipf-like popularity: a few hits, a long tail.
    weight = 1.0 / np.power(rng.permutation(spec.songs) + 1.0, 0.8)
    return Catalog(artist_of_song, artist_names, track_names, artist_genre[artist_of_song], weight)


def _variants(names: list[str], rng: np.random.Generator) -> list[str]:
    """Case and whitespace variants that normalize back to the same name."""
    out = []
    for name in names:
        kind = rng.integers(3)
        out.append(
            name.lower()
            if kind == 0
            else name.upper()
            if kind == 1
            else "  " + name.replace(" ", "  ") + " "
        )
    return out


def sample_listens(spec: SampleSpec = SampleSpec()) -> Iterator[pa.Table]:
    """Yield Arrow batches of synthetic listens in LISTEN_SCHEMA, a block of users at a time."""
    rng = np.random.default_rng(spec.seed)
    cat = _catalog(spec, rng)
    artists = pa.array(cat.artist_names + _variants(cat.artist_names, rng), pa.string())
    tracks = pa.array(cat.track_names + _variants(cat.track_names, rng), pa.string())
    n_artists, n_songs = len(cat.artist_names), spec.songs
    taste = rng.dirichlet(np.full(spec.genres, 0.15), spec.users)
    activity = rng.lognormal(0.0, 0.8, spec.users)
    listens_per_user = np.maximum(10, activity / activity.sum() * spec.listens).astype(np.int64)
    # Plays per pair average about 4 with the curve below; sizes the distinct songs.
    mean_plays = 4.2
    start, span = int(_SPAN[0].timestamp()), int((_SPAN[1] - _SPAN[0]).total_seconds())
    log_weight = np.log(cat.weight)
    for first in range(0, spec.users, spec.users_per_batch):
        users, song_parts, counts = [], [], []
        for u in range(first, min(first + spec.users_per_batch, spec.users)):
            affinity = taste[u, cat.genre_of_song]
            distinct = int(min(n_songs, max(5, listens_per_user[u] / mean_plays)))
            # Gumbel top-k: `distinct` songs without replacement, p ~ popularity x taste.
            keys = log_weight + np.log(affinity + 1e-4) + rng.gumbel(size=n_songs)
            chosen = np.argpartition(-keys, distinct - 1)[:distinct]
            # Heavy-tailed plays, larger for songs of the listener's favourite genres.
            boost = affinity[chosen] / affinity[chosen].max()
            plays = 1 + np.floor(rng.pareto(1.3, distinct) * (0.35 + 1.3 * boost)).astype(np.int64)
            plays = np.minimum(plays, MAX_PLAYS)
            song_parts.append(np.repeat(chosen, plays))
            users.append(np.full(int(plays.sum()), u, dtype=np.int64))
            counts.append(int(plays.sum()))
        song = np.concatenate(song_parts)
        user = np.concatenate(users)
        n = len(song)
        variant = rng.random(n) < VARIANT_SHARE
        artist_index = cat.artist_of_song[song] + n_artists * variant
        track_index = song + n_songs * variant
        seconds = start + rng.integers(0, span, n)
        user_names = pa.array([f"synth_user_{u:05d}" for u in range(spec.users)], pa.string())
        yield pa.Table.from_arrays(
            [
                user_names.take(pa.array(user)),
                artists.take(pa.array(artist_index)),
                tracks.take(pa.array(track_index)),
                pa.array(seconds, pa.int64()).cast(pa.timestamp("s", tz="UTC")),
                # Synthetic songs are no MusicBrainz recordings.
                pa.nulls(n, pa.string()),
            ],
            schema=LISTEN_SCHEMA,
        )


def genre_names(spec: SampleSpec) -> list[str]:
    """Human names of the sample's genres (for docs and tests)."""
    return [_GENRES[g % len(_GENRES)] for g in range(spec.genres)]
