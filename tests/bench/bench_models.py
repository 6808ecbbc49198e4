"""Models benchmark: fold-in vs retrain, grid search wall time, artifact size, peak memory.

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

from etl.pipeline import EtlRun, run_listens  # noqa: E402
from etl.sample import SampleSpec, sample_listens  # noqa: E402
from models.artifact import TrainedModel, load_model, save_model  # noqa: E402
from models.data import load_ratings, ratings_fingerprint, trim_top_songs  # noqa: E402
from models.recommend import recommend  # noqa: E402
from models.train import fit_final, train  # noqa: E402

SCALES = {
    # users, songs, listens (about 4.3 listens per user-song pair in the sample generator)
    "reference": dict(users=2_458, songs=10_000, listens=5_600_000, retrain_listeners=4),
    "small": dict(users=600, songs=3_000, listens=400_000, retrain_listeners=3),
}
REFERENCE_SVD = {"n_factors": 150, "reg_all": 0.1, "lr_all": 0.005, "n_epochs": 20}
HELD_OUT = 50
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
        save_model(
            result.model, out, ratings=result.ratings, fingerprint=result.fingerprint, force=True
        )
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
    trained = TrainedModel(
        kept_songs["song_id"].to_numpy(dtype=object),
        factors,
        bias,
        mean,
        {**REFERENCE_SVD, "seed": SEED},
        kept_songs,
    )
    out = work / "model-150"
    save_model(
        trained, out, ratings=train_rows, fingerprint=ratings_fingerprint(train_rows), force=True
    )
    started = time.perf_counter()
    model = load_model(out)
    load_ms = 1000 * (time.perf_counter() - started)
    print(
        f"SVD 150 factors on {len(train_rows):,} ratings: fit {fit_seconds:.1f} s; "
        f"artifact {folder_mb(out):.1f} MB ({(out / 'item_factors.npy').stat().st_size / 2**20:.1f}"
        f" MB factors, {(out / 'ratings.parquet').stat().st_size / 2**20:.1f} MB ratings); "
        f"load with checksums {load_ms:.0f} ms"
    )

    listeners, hidden = [], []
    for user in held:
        rows = kept[kept["user_name"] == user]
        pick = rows.sample(min(RATED_PER_LISTENER, len(rows)), random_state=SEED)
        listeners.append(list(zip(pick["song_id"], pick["rating"].astype(int), strict=True)))
        hidden.append(set(rows["song_id"]) - set(pick["song_id"]))
    latencies = []
    for _ in range(5):
        for rated in listeners:
            started = time.perf_counter()
            recommend(model, rated, 10)
            latencies.append(1000 * (time.perf_counter() - started))
    p50 = statistics.median(latencies)
    p95 = float(np.percentile(latencies, 95))
    print(
        f"fold-in latency ({len(latencies)} calls, {RATED_PER_LISTENER} ratings each): "
        f"p50 {p50:.2f} ms, p95 {p95:.2f} ms"
    )

    # Quality next to agreement: how many of the top 10 are among the listener's other songs.
    popular = ids(recommend(model, [], 10 + RATED_PER_LISTENER))
    hits = {"fold-in": [], "retrain": [], "popular": []}
    for rated, rest in zip(listeners, hidden, strict=True):
        hits["fold-in"].append(len(set(ids(recommend(model, rated, 10))) & rest))
        seen = {song for song, _ in rated}
        hits["popular"].append(len(set([s for s in popular if s not in seen][:10]) & rest))
    retrain_times, fold_vs_retrain, retrain_vs_retrain = [], [], []
    retrained = scale["retrain_listeners"]
    for rated, rest in zip(listeners[:retrained], hidden[:retrained], strict=True):
        fold = ids(recommend(model, rated, 10))
        started = time.perf_counter()
        first = ids(recommend(model, rated, 10, mode="retrain", seed=1))
        retrain_times.append(time.perf_counter() - started)
        second = ids(recommend(model, rated, 10, mode="retrain", seed=2))
        fold_vs_retrain.append(overlap(fold, first))
        retrain_vs_retrain.append(overlap(first, second))
        hits["retrain"].append(len(set(first) & rest))
    retrain = statistics.median(retrain_times)
    print(
        f"retrain (kept ratings + 1 listener, {REFERENCE_SVD['n_factors']} factors): median "
        f"{retrain:.1f} s over {len(retrain_times)}; retrain / fold-in p50 = "
        f"{1000 * retrain / p50:,.0f}x"
    )
    print(
        f"top-10 overlap: fold-in vs retrain {np.mean(fold_vs_retrain):.1f}/10 "
        f"{fold_vs_retrain}; retrain vs retrain (seeds 1, 2) "
        f"{np.mean(retrain_vs_retrain):.1f}/10 {retrain_vs_retrain}"
    )
    print(
        "hits@10 among the listener's other songs: "
        + ", ".join(f"{k} {np.mean(v):.2f} ({len(v)} listeners)" for k, v in hits.items())
    )
    print(f"peak memory: {peak_rss()}")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
