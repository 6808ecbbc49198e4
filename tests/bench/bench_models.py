"""Models benchmark: instant vs exact retrain, latency, artifact size, planted taste, memory.

At the reference's scale (`--scale reference`: 2,458 users x 10,000 songs, about 1.28M
ratings, SVD with 150 factors) or a small one for a quick look (`--scale small`). The data
comes from the ETL's synthetic sample generator (listens with taste structure) through the
real listens -> plays -> ratings path. A few listeners are held out of training: they are
the "new listeners", each giving 20 of their real ratings. Prints numbers, asserts nothing.

    python tests/bench/bench_models.py --scale reference [--full-grid | --no-grid] [--work DIR]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from songrec.etl.pipeline import EtlRun, run_listens  # noqa: E402
from songrec.etl.sample import SampleSpec, sample_listens  # noqa: E402
from songrec.etl.sample import _catalog as sample_catalog  # noqa: E402
from songrec.etl.songs import song_id  # noqa: E402
from songrec.models.artifact import TrainedModel, save_model  # noqa: E402
from songrec.models.data import load_ratings, ratings_fingerprint, trim_top_songs  # noqa: E402
from songrec.models.ranking.train import train_ranking  # noqa: E402
from songrec.models.rating.foldin import one_blas_thread  # noqa: E402
from songrec.models.recommend import listener_ratings  # noqa: E402
from songrec.models.recommender import Recommender  # noqa: E402
from songrec.models.similar import top_indices  # noqa: E402
from songrec.models.train import fit_final, save_result, train  # noqa: E402

SCALES = {
    # users, songs, listens (about 4.3 listens per user-song pair in the sample generator)
    "reference": dict(
        users=2_458, songs=10_000, listens=5_600_000, retrain_listeners=2, exact_listeners=10
    ),
    "small": dict(users=600, songs=3_000, listens=400_000, retrain_listeners=2, exact_listeners=5),
}
REFERENCE_SVD = {"n_factors": 150, "reg_all": 0.1, "lr_all": 0.005, "n_epochs": 20}
HELD_OUT = 50
PLANTED_LISTENERS = 100
MODEL_FILES = ("item_factors.npy", "rank_vectors.npy", "rank_listeners.npy", "ratings.parquet")
RATED_PER_LISTENER = 20
SEED = 42


def build_data(work: Path, scale: dict) -> Path:
    """The synthetic sample through the ETL (reused if `work/data` already exists)."""
    data = work / "data"
    if (data / "ratings.parquet").exists():
        return data
    spec = SampleSpec(users=scale["users"], songs=scale["songs"], listens=scale["listens"])
    started = time.perf_counter()
    run_listens(EtlRun(source="bench sample", out_dir=data, force=True), sample_listens(spec))
    print(f"data: built in {time.perf_counter() - started:.1f} s")
    return data


def overlap(a: list[str], b: list[str]) -> int:
    """Songs two top-10 lists share."""
    return len(set(a) & set(b))


def ids(result) -> list[str]:
    """The song ids of a RecommendationResult."""
    return [item.song_id for item in result.items]


def peak_rss() -> str:
    """Peak resident memory of this process and of its (joblib) children."""
    from joblib.externals.loky import get_reusable_executor

    # Children count once they have exited: stop the grid search's worker processes.
    get_reusable_executor().shutdown(wait=True)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**10
    return f"{own:,.0f} MB (this process), {children:,.0f} MB (largest child)"


def folder_mb(folder: Path) -> float:
    """Size of a folder's files in MB."""
    return sum(p.stat().st_size for p in folder.iterdir()) / 2**20


def genre_of_songs(scale: dict) -> dict[str, int]:
    """The sample generator's genre of every song id (the generator's own catalogue)."""
    spec = SampleSpec(users=scale["users"], songs=scale["songs"], listens=scale["listens"])
    catalog = sample_catalog(spec, np.random.default_rng(spec.seed))
    names = zip(catalog.artist_of_song, catalog.track_names, strict=True)
    return {
        song_id(catalog.artist_names[artist], track): int(catalog.genre_of_song[i])
        for i, (artist, track) in enumerate(names)
    }


def planted_taste(recommender: Recommender, scale: dict) -> None:
    """Five songs of one genre rated 10, two of another rated 2; similar songs and artists."""
    model = recommender.model
    genre = genre_of_songs(scale)
    by_genre: dict[int, list[str]] = {}
    for sid in model.song_ids:
        by_genre.setdefault(genre[sid], []).append(sid)
    rng = np.random.default_rng(SEED)
    genres = [g for g, songs in by_genre.items() if len(songs) >= 40]
    liked_counts, disliked_counts = [], []
    for _ in range(PLANTED_LISTENERS):
        liked, disliked = rng.choice(genres, 2, replace=False)
        # Songs a fan would know: among the genre's 40 most played in the model.
        rated = [(s, 10) for s in rng.choice(by_genre[liked][:40], 5, replace=False)]
        rated += [(s, 2) for s in rng.choice(by_genre[disliked][:40], 2, replace=False)]
        picks = [genre[i.song_id] for i in recommender.recommend(rated, 10).items]
        liked_counts.append(picks.count(liked))
        disliked_counts.append(picks.count(disliked))
    print(
        f"planted taste ({PLANTED_LISTENERS} listeners: 5 songs of a genre rated 10, 2 of "
        f"another rated 2): liked genre {np.mean(liked_counts):.2f}/10 on average, worst "
        f"{min(liked_counts)}; disliked genre {np.mean(disliked_counts):.2f}/10"
    )
    songs = rng.choice(model.song_ids[:2000], 100, replace=False)
    same = [
        sum(genre[i.song_id] == genre[s] for i in recommender.similar_songs(s, 10)) for s in songs
    ]
    artist_genre = {
        a: genre[s] for a, s in zip(model.songs["artist_name"], model.song_ids, strict=True)
    }
    artists = rng.choice(list(model.songs["artist_name"].unique()[:500]), 50, replace=False)
    near = [
        sum(artist_genre[n.artist_name] == artist_genre[a] for n in recommender.similar_artists(a))
        for a in artists
    ]
    print(
        f"similar songs, same genre: {np.mean(same):.2f}/10 (100 songs); similar artists, "
        f"same genre: {np.mean(near):.2f}/10 (50 artists)"
    )


def main() -> None:
    """Run the benchmark and print its numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="reference")
    parser.add_argument("--work", type=Path, help="Folder to keep the data in (default: temp).")
    parser.add_argument("--full-grid", action="store_true", help="Also time the full grid (long).")
    parser.add_argument("--no-grid", action="store_true", help="Skip the grid search timing.")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    scale = SCALES[args.scale]
    work = args.work or Path(tempfile.mkdtemp(prefix="songrec-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    data = build_data(work, scale)
    ratings, songs = load_ratings(data)
    kept, kept_songs, trim = trim_top_songs(ratings, songs, 10_000)
    print(
        f"scale {args.scale}: {trim.users_kept:,} users x {trim.songs_kept:,} songs, "
        f"{trim.ratings_kept:,} ratings ({100 * trim.density:.1f}% dense)"
    )

    grids = [] if args.no_grid else ["quick"]
    for grid in grids + (["full"] if args.full_grid else []):
        started = time.perf_counter()
        result = train(data, grid=grid, jobs=args.jobs, seed=SEED)
        total = time.perf_counter() - started
        out = work / f"model-{grid}"
        save_result(result, out, force=True)
        rep = result.report
        print(
            f"grid {grid} --jobs {args.jobs}: GridSearchCV {rep['grid_seconds']:.1f} s, "
            f"whole train {total:.1f} s; best SVD {rep['n_factors']} factors reg "
            f"{rep['reg_all']}; 80/20 RMSE {rep['holdout']['rmse']:.4f} "
            f"MAE {rep['holdout']['mae']:.4f}; artifact {folder_mb(out):.1f} MB"
        )
        print(
            result.results[["algorithm", "params", "rmse", "mae", "fit_time", "status"]].to_string(
                index=False
            )
        )

    # New listeners: held out of training, each rating 20 of their real songs.
    rng = np.random.default_rng(SEED)
    users = np.sort(kept["user_name"].unique())
    held = rng.choice(users, HELD_OUT, replace=False)
    train_rows = kept[~kept["user_name"].isin(held)].reset_index(drop=True)
    started = time.perf_counter()
    factors, bias, mean = fit_final(train_rows, kept_songs, REFERENCE_SVD, SEED)
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    ranking = train_ranking(train_rows, kept_songs, data, None, SEED)
    rank_seconds = time.perf_counter() - started
    trained = TrainedModel(
        kept_songs["song_id"].to_numpy(dtype=object),
        factors,
        bias,
        mean,
        {**REFERENCE_SVD, "seed": SEED, "ranking": ranking.report},
        kept_songs,
        ranking=ranking.model,
    )
    out = work / "model-150"
    save_model(
        trained, out, ratings=train_rows, fingerprint=ratings_fingerprint(train_rows), force=True
    )
    started = time.perf_counter()
    recommender = Recommender.load(out)
    load_ms = 1000 * (time.perf_counter() - started)
    model = recommender.model
    mb = {name: (out / name).stat().st_size / 2**20 for name in MODEL_FILES}
    print(
        f"rating SVD 150 factors on {len(train_rows):,} ratings: fit {fit_seconds:.1f} s; "
        f"ranking model (validation + fit): {rank_seconds:.1f} s, {ranking.model.params}"
    )
    print(
        f"artifact {folder_mb(out):.1f} MB ("
        + ", ".join(f"{name} {size:.1f} MB" for name, size in mb.items())
        + f"); ranking model alone {mb['rank_vectors.npy'] + mb['rank_listeners.npy']:.1f} MB; "
        f"load with checksums {load_ms:.0f} ms"
    )

    listeners, hidden = [], []
    for user in held:
        rows = kept[kept["user_name"] == user]
        pick = rows.sample(min(RATED_PER_LISTENER, len(rows)), random_state=SEED)
        listeners.append(list(zip(pick["song_id"], pick["rating"].astype(int), strict=True)))
        hidden.append(set(rows["song_id"]) - set(pick["song_id"]))

    def timed(call, repeat: int = 5) -> list[float]:
        times = []
        for _ in range(repeat):
            for rated in listeners:
                started = time.perf_counter()
                call(rated)
                times.append(1000 * (time.perf_counter() - started))
        return times

    def floor(rated) -> None:
        # The numpy floor: the listener's row times the song vectors, and the top 10.
        idx, values = listener_ratings(model, rated)
        top_indices(ranking.model.score(idx, values), idx, 10)

    with one_blas_thread():
        floor_ms = timed(floor)
    instant_ms = timed(lambda rated: recommender.recommend(rated, 10))
    rating_ms = timed(lambda rated: recommender.recommend(rated, 10, rank_by="rating"))
    p95 = {
        name: float(np.percentile(t, 95))
        for name, t in (("floor", floor_ms), ("instant", instant_ms), ("rating", rating_ms))
    }
    print(
        f"instant recommendation ({len(instant_ms)} calls, {RATED_PER_LISTENER} ratings each): "
        f"p50 {statistics.median(instant_ms):.2f} ms, p95 {p95['instant']:.2f} ms; numpy floor "
        f"p95 {p95['floor']:.3f} ms (served / floor {p95['instant'] / p95['floor']:.1f}x); "
        f"--rank-by rating p95 {p95['rating']:.2f} ms"
    )

    popular = ids(recommender.recommend([], 10 + RATED_PER_LISTENER))
    hits = {"instant": [], "exact retrain": [], "rank by rating": [], "popular": []}
    for rated, rest in zip(listeners, hidden, strict=True):
        hits["instant"].append(len(set(ids(recommender.recommend(rated, 10))) & rest))
        by_rating = recommender.recommend(rated, 10, rank_by="rating")
        hits["rank by rating"].append(len(set(ids(by_rating)) & rest))
        seen = {song for song, _ in rated}
        hits["popular"].append(len(set([s for s in popular if s not in seen][:10]) & rest))
    exact_times, instant_vs_exact = [], []
    for rated, rest in zip(listeners[: scale["exact_listeners"]], hidden, strict=False):
        started = time.perf_counter()
        exact = ids(recommender.recommend(rated, 10, mode="retrain"))
        exact_times.append(time.perf_counter() - started)
        instant_vs_exact.append(overlap(ids(recommender.recommend(rated, 10)), exact))
        hits["exact retrain"].append(len(set(exact) & rest))
    refit_times = []
    for rated in listeners[: scale["retrain_listeners"]]:
        started = time.perf_counter()
        recommender.recommend(rated, 10, mode="retrain", rank_by="rating", seed=1)
        refit_times.append(time.perf_counter() - started)
    exact, refit = statistics.median(exact_times), statistics.median(refit_times)
    print(
        f"exact retrain (ranking SVD recomputed with the listener): median {exact:.2f} s, "
        f"max {max(exact_times):.2f} s over {len(exact_times)}; Surprise refit (the reference's "
        "retrain) median "
        f"{refit:.1f} s over {len(refit_times)}: exact / Surprise refit = {exact / refit:.2f}"
    )
    print(
        f"top-10 overlap, instant vs exact retrain: {np.mean(instant_vs_exact):.1f}/10 "
        f"{instant_vs_exact}"
    )
    print(
        "hits@10 among the listener's other songs: "
        + ", ".join(f"{k} {np.mean(v):.2f} ({len(v)} listeners)" for k, v in hits.items())
    )
    planted_taste(recommender, scale)
    print(f"peak memory: {peak_rss()}")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
