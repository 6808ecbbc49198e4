"""The trained model on disk: plain arrays and tables, every file checksummed.

Layout of MODEL_DIR: the rating model's `item_factors.npy` and `item_bias.npy` (Surprise
SVD), the ranking model's `rank_vectors.npy` (float16) and `rank_listeners.npy`
(models.ranking; the rest float32; all saved without pickle), `songs.parquet` (row i
describes row i of every array; its optional `recording_mbid`, a nullable string, is each
song's MusicBrainz recording id, checked on load), `ratings.parquet` (the kept ratings,
read only to retrain exactly), `params.json` (global mean, both models' parameters,
training report), optional extra files such as `gscv_results.csv` and
`rank_validation.csv`, and `manifest.json`: sha256 and size of every file, library
versions, a fingerprint of the training data and `data_source` (what the training data
was: {"kind", "synthetic", "description"}; also in the checksummed params.json, and
loading checks both agree).
The folder is written to a temporary sibling and renamed into place, and loading checks
every checksum before it reads anything.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from songrec.etl.mbids import is_mbid
from songrec.etl.output import replace_folder
from songrec.models.data import MBID_COLUMN, SONG_COLUMNS, mbid_values
from songrec.models.errors import ModelError
from songrec.models.ranking.puresvd import RankingModel, RankingParams

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FACTORS = "item_factors.npy"
BIAS = "item_bias.npy"
SONGS = "songs.parquet"
RATINGS = "ratings.parquet"
PARAMS = "params.json"
RANK_VECTORS = "rank_vectors.npy"
RANK_LISTENERS = "rank_listeners.npy"
REQUIRED = (FACTORS, BIAS, SONGS, RATINGS, PARAMS, RANK_VECTORS, RANK_LISTENERS)
# 2: the ranking model joined the rating model.
FORMAT = 2
_LIBRARIES = ("songrec", "numpy", "pandas", "pyarrow", "scikit-surprise")
DATA_SOURCE = "data_source"
# What a model trained before the data source was recorded says of it.
UNKNOWN_SOURCE = {"kind": "unknown", "synthetic": False, "description": None}


def song_mbids(songs: pd.DataFrame) -> np.ndarray:
    """The songs' recording MBIDs as an object array of str or None (all None without the
    column); ModelError when a value is neither null nor a canonical MusicBrainz id."""
    if MBID_COLUMN not in songs.columns:
        return np.full(len(songs), None, dtype=object)
    values = mbid_values(songs[MBID_COLUMN])
    bad = [v for v in values if v is not None and not is_mbid(v)]
    if bad:
        raise ModelError(
            f"{SONGS}: {len(bad)} {MBID_COLUMN} value(s) are not MusicBrainz recording ids "
            f"(lower-case 8-4-4-4-12 hex), e.g. {bad[0]!r}"
        )
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def data_source_of(params: dict) -> dict:
    """params' data_source as {"kind": str, "synthetic": bool, "description": str | None};
    UNKNOWN_SOURCE's values for whatever it lacks."""
    found = params.get(DATA_SOURCE) if isinstance(params, dict) else None
    found = found if isinstance(found, dict) else {}
    kind = found.get("kind")
    description = found.get("description")
    return {
        "kind": kind if isinstance(kind, str) and kind else UNKNOWN_SOURCE["kind"],
        "synthetic": found.get("synthetic") is True,
        "description": description if isinstance(description, str) else None,
    }


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


@dataclass(frozen=True, eq=False)
class TrainedModel:
    """A loaded (or freshly trained) model: the rating SVD's item factors and biases, the
    ranking model, and the songs.

    Per song (row i of every array): `song_ids`, `artist_names`, `track_names` and
    `recording_mbids` (the MusicBrainz recording id, str or None; `recording_mbid(i)`).
    `data_source` and `synthetic` say what it was trained on.
    Shared by every listener: its arrays are read-only and nothing in songrec changes it.
    """

    song_ids: np.ndarray
    item_factors: np.ndarray
    item_bias: np.ndarray
    global_mean: float
    params: dict
    songs: pd.DataFrame
    ranking: RankingModel | None = None
    ratings_path: Path | None = None
    manifest: dict = field(default_factory=dict, repr=False)
    _index: dict = field(init=False, repr=False)

    def __post_init__(self) -> None:
        n = len(self.song_ids)
        ranked = self.ranking.vectors.shape[0] if self.ranking is not None else n
        if (
            self.item_factors.shape[0] != n
            or self.item_bias.shape != (n,)
            or len(self.songs) != n
            or ranked != n
        ):
            raise ModelError(
                f"inconsistent model: {n} song ids, factors {self.item_factors.shape}, "
                f"biases {self.item_bias.shape}, {len(self.songs)} song rows, "
                f"{ranked} ranking vectors"
            )
        for array in (self.song_ids, self.item_factors, self.item_bias):
            _read_only(array)
        object.__setattr__(self, "_index", {sid: i for i, sid in enumerate(self.song_ids)})
        # Plain arrays of names: a pandas lookup per cell cost more than ranking itself.
        for column in ("artist_name", "track_name"):
            names = self.songs[column].astype(str).to_numpy(dtype=object)
            object.__setattr__(self, f"{column}s", _read_only(names))
        object.__setattr__(self, "recording_mbids", _read_only(song_mbids(self.songs)))

    def recording_mbid(self, index: int) -> str | None:
        """The MusicBrainz recording id of the song in row `index`, or None."""
        return self.recording_mbids[index]

    @property
    def data_source(self) -> dict:
        """What the model was trained on: {"kind": "sample" | "listenbrainz-dump" |
        "spark-dump" | "user-export" | "mixed" | "bigquery" | "hetrec" | "lastfm-360k" |
        "msd-triplets" | "unknown", "synthetic": bool, "description": the ETL's source
        text or None}. "unknown" (not synthetic) for models trained before it was kept."""
        return data_source_of(self.params)

    @property
    def synthetic(self) -> bool:
        """Whether the model was trained on the made-up sample (`songrec etl sample`)."""
        return self.data_source["synthetic"]

    @property
    def n_songs(self) -> int:
        """Number of songs the model knows."""
        return len(self.song_ids)

    @property
    def n_factors(self) -> int:
        """Length of each factor vector."""
        return int(self.item_factors.shape[1])

    def has_song(self, song_id: str) -> bool:
        """Whether `song_id` is one of the model's songs."""
        return song_id in self._index

    def index_of(self, song_id: str) -> int:
        """Row of `song_id` in the factor arrays; ModelError if the model does not know it."""
        try:
            return self._index[song_id]
        except KeyError:
            raise ModelError(
                f"unknown song id {song_id!r}: not among the model's {self.n_songs:,} songs "
                "(find ids with `songrec songs --search`)"
            ) from None

    def read_ratings(self) -> pd.DataFrame:
        """The kept training ratings, after re-checking their checksum."""
        return pd.read_parquet(self._checked_ratings())

    def read_ratings_table(self) -> pa.Table:
        """The kept training ratings as an Arrow table, after re-checking their checksum."""
        return pq.read_table(self._checked_ratings())

    def _checked_ratings(self) -> Path:
        if self.ratings_path is None:
            raise ModelError("this model has no ratings file (it was never saved)")
        entry = self.manifest.get("files", {}).get(RATINGS)
        if entry is not None:
            _verify(self.ratings_path, entry)
        return self.ratings_path


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verify(path: Path, entry: dict) -> None:
    if not path.is_file():
        raise ModelError(f"model file {path.name} is missing from {path.parent}")
    if path.stat().st_size != entry.get("bytes") or file_sha256(path) != entry.get("sha256"):
        raise ModelError(
            f"checksum mismatch for {path.name} in {path.parent}: the file changed since "
            "training; retrain with `songrec train`"
        )


def _versions() -> dict:
    versions = {"python": platform.python_version()}
    for lib in _LIBRARIES:
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            versions[lib] = None
    return versions


def _write_files(
    model: TrainedModel,
    folder: Path,
    ratings: pd.DataFrame | None,
    extra_files: dict[str, bytes],
    fingerprint: str | None,
) -> None:
    np.save(folder / FACTORS, np.ascontiguousarray(model.item_factors, dtype=np.float32))
    np.save(folder / BIAS, np.ascontiguousarray(model.item_bias, dtype=np.float32))
    if model.ranking is None:
        raise ModelError("cannot save a model without its ranking model")
    np.save(folder / RANK_VECTORS, np.ascontiguousarray(model.ranking.vectors, dtype=np.float16))
    np.save(folder / RANK_LISTENERS, np.ascontiguousarray(model.ranking.listeners, np.float32))
    songs = model.songs.reset_index(drop=True)
    if MBID_COLUMN in songs.columns:
        # Checked ids, and a string column even when every value is null.
        table = pa.Table.from_pandas(songs.drop(columns=MBID_COLUMN), preserve_index=False)
        mbids = pa.array(model.recording_mbids.tolist(), pa.string())
        table = table.add_column(songs.columns.get_loc(MBID_COLUMN), MBID_COLUMN, mbids)
        pq.write_table(table, folder / SONGS, compression="zstd")
    else:
        songs.to_parquet(folder / SONGS, compression="zstd", index=False)
    if ratings is not None:
        ratings.to_parquet(folder / RATINGS, compression="zstd", index=False)
    elif model.ratings_path is not None:
        entry = model.manifest.get("files", {}).get(RATINGS)
        if entry is not None:
            _verify(model.ratings_path, entry)
        shutil.copyfile(model.ratings_path, folder / RATINGS)
    else:
        raise ModelError("cannot save a model without its ratings")
    ranking = {
        **model.params.get("ranking", {}),
        **model.ranking.params.as_dict(),
        "singular_values": [float(v) for v in model.ranking.singular_values],
    }
    params = {**model.params, "global_mean": float(model.global_mean), "ranking": ranking}
    params[DATA_SOURCE] = model.data_source
    (folder / PARAMS).write_text(json.dumps(params, indent=2, sort_keys=True) + "\n")
    for name, content in extra_files.items():
        (folder / name).write_bytes(content)
    files = {
        path.name: {"sha256": file_sha256(path), "bytes": path.stat().st_size}
        for path in sorted(folder.iterdir())
    }
    manifest = {
        "format": FORMAT,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": files,
        "versions": _versions(),
        "training_data": {"sha256": fingerprint, "songs": model.n_songs},
        DATA_SOURCE: model.data_source,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def save_model(
    model: TrainedModel,
    out_dir: Path,
    *,
    ratings: pd.DataFrame | None = None,
    extra_files: dict[str, bytes] | None = None,
    fingerprint: str | None = None,
    force: bool = False,
) -> Path:
    """Write the model folder atomically; replace an existing one only with `force`."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not force:
        raise ModelError(f"{out_dir} already exists; pass --force to replace it")
    if out_dir.exists() and not out_dir.is_dir():
        raise ModelError(f"{out_dir} exists and is not a folder")
    extra = extra_files or {}
    for name in extra:
        if name in (*REQUIRED, MANIFEST) or Path(name).name != name:
            raise ModelError(f"cannot add a file named {name!r} to a model folder")
    replace_folder(out_dir, lambda tmp: _write_files(model, tmp, ratings, extra, fingerprint))
    log.info("saved model to %s", out_dir)
    return out_dir


def read_manifest(model_dir: Path) -> dict:
    """The manifest of a model folder; ModelError if it is absent or unreadable."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelError(f"model folder {model_dir} does not exist; train one with `songrec train`")
    path = model_dir / MANIFEST
    if not path.is_file():
        raise ModelError(f"{model_dir} is not a songrec model folder (no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text())
        files = manifest["files"]
        assert isinstance(files, dict)
    except (ValueError, KeyError, TypeError, AssertionError):
        raise ModelError(f"{path} is not a valid songrec manifest") from None
    return manifest


def verify_model(model_dir: Path) -> dict:
    """Check every file listed in the manifest (size and sha256); returns the manifest."""
    model_dir = Path(model_dir)
    manifest = read_manifest(model_dir)
    files = manifest["files"]
    for name in REQUIRED:
        if name not in files:
            raise ModelError(f"{MANIFEST} in {model_dir} does not list {name}")
    for name in files:
        if Path(name).name != name or name == MANIFEST:
            raise ModelError(f"{MANIFEST} in {model_dir} lists a bad file name {name!r}")
    for name, entry in files.items():
        _verify(model_dir / name, entry)
    return manifest


def load_model(model_dir: Path) -> TrainedModel:
    """Verify every checksum of `model_dir`, then load it (no pickle anywhere)."""
    model_dir = Path(model_dir)
    manifest = read_manifest(model_dir)
    if manifest.get("format") != FORMAT:
        raise ModelError(
            f"{model_dir} was written by another songrec version (model format "
            f"{manifest.get('format')}, this one reads {FORMAT}); retrain with `songrec train`"
        )
    manifest = verify_model(model_dir)
    try:
        factors = np.load(model_dir / FACTORS, allow_pickle=False)
        bias = np.load(model_dir / BIAS, allow_pickle=False)
        vectors = np.load(model_dir / RANK_VECTORS, allow_pickle=False)
        listeners = np.load(model_dir / RANK_LISTENERS, allow_pickle=False)
        songs = pd.read_parquet(model_dir / SONGS)
        params = json.loads((model_dir / PARAMS).read_text())
    except Exception as exc:  # numpy, pyarrow and json raise many types for a damaged file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot read model in {model_dir}: {first}") from None
    _check_arrays(model_dir, {FACTORS: (factors, 2), BIAS: (bias, 1)})
    _check_arrays(model_dir, {RANK_VECTORS: (vectors, 2)}, np.float16)
    _check_arrays(model_dir, {RANK_LISTENERS: (listeners, 1)})
    vectors = vectors.astype(np.float32)
    missing = [c for c in SONG_COLUMNS if c not in songs.columns]
    if missing:
        raise ModelError(f"{model_dir}: {SONGS} lacks column(s) {', '.join(missing)}")
    if not isinstance(params, dict):
        raise ModelError(f"{model_dir}: {PARAMS} is not a mapping of parameters")
    # The manifest's copy is not checksummed: it must say what the checksummed params say.
    if DATA_SOURCE in manifest and manifest[DATA_SOURCE] != data_source_of(params):
        raise ModelError(
            f"{model_dir}: {MANIFEST}'s {DATA_SOURCE} differs from {PARAMS}'s; "
            "retrain with `songrec train`"
        )
    try:
        global_mean = float(params["global_mean"])
        ranking_params = params["ranking"]
        singular = np.asarray(ranking_params["singular_values"], dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        raise ModelError(f"{model_dir}: {PARAMS} lacks global_mean or ranking values") from None
    if not np.isfinite(global_mean) or not np.isfinite(singular).all():
        raise ModelError(f"{model_dir}: {PARAMS} holds values that are not finite")
    ranking = RankingModel(vectors, listeners, RankingParams.from_dict(ranking_params), singular)
    try:
        # TrainedModel checks the shapes and the recording ids (once, as it keeps them).
        return TrainedModel(
            song_ids=songs["song_id"].to_numpy(dtype=object),
            item_factors=factors,
            item_bias=bias,
            global_mean=global_mean,
            params=params,
            songs=songs,
            ranking=ranking,
            ratings_path=model_dir / RATINGS,
            manifest=manifest,
        )
    except ModelError as exc:
        raise ModelError(f"{model_dir}: {exc}") from None


def _check_arrays(
    model_dir: Path, arrays: dict[str, tuple[np.ndarray, int]], dtype: type = np.float32
) -> None:
    """Arrays of `dtype` with the expected number of dimensions, every value finite."""
    for name, (array, ndim) in arrays.items():
        if not isinstance(array, np.ndarray):  # an .npz archive saved under an .npy name
            raise ModelError(f"{model_dir}: {name} is not a single array")
        if array.dtype != dtype or array.ndim != ndim:
            kind = np.dtype(dtype).name
            raise ModelError(f"{model_dir}: {name} is not a {kind} array of {ndim} dimension(s)")
        if not np.isfinite(array).all():
            raise ModelError(f"{model_dir}: {name} holds values that are not finite")
