"""Scale benchmark: `songrec etl dump` at 10M and 100M listens, then training and the app.

Steps (each command in its own process, so its memory is its own):
1. dumps: tests/bench/scale_dump.py streams a synthetic dump of each size to disk in both
   real formats (Spark Parquet .tar, JSON-lines .tar.zst); kept in the work folder and
   reused when a later run asks for the same size;
2. ETL: `songrec etl dump <dump> --out ...` per size and format: listens/s, CPU seconds,
   peak memory (the process's maxrss, and the sampled resident memory of it and its
   children), DuckDB's disk spill (the peak size of the temp folder the run is given:
   TMPDIR and working directory point there; the dump files staged for DuckDB to read,
   etl/dumps/staged.py, counted apart), the result's pairs and songs. Then the time
   per listen at the largest size over the smallest (target: within 1.2x);
3. training: `songrec train --grid quick --top-songs K` on the largest size's ratings for
   each K (from 500k songs `--grid tests/bench/grid_scale.json`: quick's algorithms and one
   ranking setting, as the full ranking grid would take hours; `--grid` sets it for all):
   fit time, peak memory, artifact size. Both grids score their algorithms on a fixed-seed
   subsample of whole users (about 80k ratings, whatever the size); the 80/20 holdout, the
   final SVD and the ranking model use every kept rating;
4. the app, per trained model, in a fresh process: load time (load_model with checksums,
   Recommender, its training matrix, the search index: what the page does under its
   loading spinner) and recommendation latency (20 ratings, instant fold-in, 100 listeners).
A step that fails (memory, time limit, an error) is recorded with its one-line error and the
benchmark goes on. Results: a Markdown table printed and written with the JSON to the work
folder (results.md, results.json).

    python tests/bench/bench_scale.py            # 10M and 100M listens; 10k, 100k, 1M songs
    python tests/bench/bench_scale.py --quick    # 1M and 10M; 10k and 100k songs (~30 min)
    python tests/bench/bench_scale.py --sizes 2M 5M --top-songs 10k --formats spark
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

from scale_dump import FORMATS, ScaleSpec, count_label, matches, parse_count  # noqa: E402

SONGREC = [sys.executable, "-c", "from songrec.app.cli import main; main()"]
DEFAULT_WORK = REPO / ".songrec" / "bench-scale"
# A grid for the largest catalogues: quick's Surprise algorithms, and one ranking setting
# (the one validation picked at 352k songs) instead of 45 per fit over 15 fits, which at
# 1M songs would take hours (docs/scale.md).
SCALE_GRID = Path(__file__).with_name("grid_scale.json")
SCALE_GRID_FROM = 500_000  # top songs from which the default grid is SCALE_GRID
SIZES = ["10M", "100M"]
QUICK_SIZES = ["1M", "10M"]
TOP_SONGS = ["10k", "100k", "1M"]
QUICK_TOP_SONGS = ["10k", "100k"]
RATED = 20
LISTENERS = 100
POLL_S = 0.25
TARGET_RATIO = 1.2


def folder_bytes(path: Path) -> tuple[int, int]:
    """Disk space used under `path` (allocated blocks: a sparse file counts what it uses):
    (DuckDB's spill, the ETL's staged dump files: what lies in folders named `staged`)."""
    totals = [0, 0]
    stack = [(path, 0)]
    while stack:
        folder, staged = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append((Path(entry.path), 1 if entry.name == "staged" else staged))
                else:
                    totals[staged] += entry.stat(follow_symlinks=False).st_blocks * 512
            except OSError:
                continue
    return totals[0], totals[1]


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants (from /proc)."""
    total, stack, page = 0, [pid], os.sysconf("SC_PAGE_SIZE")
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/statm") as handle:
                total += int(handle.read().split()[1]) * page
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    stack.extend(int(c) for c in handle.read().split())
        except (OSError, ValueError):
            continue
    return total


def run_measured(
    command: list[str],
    log: Path,
    timeout: float | None = None,
    spill: Path | None = None,
    env: dict | None = None,
    cwd: Path | None = None,
) -> dict:
    """Run `command` (stdout+stderr to `log`), sampling memory and `spill`'s size.

    Returns seconds, CPU seconds, maxrss (the largest single process of the run), peak
    sampled resident memory of the whole process tree, peak spill bytes, the exit status
    and, on failure, the last line of the output."""
    started = time.perf_counter()
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
        peak_rss = peak_spill = peak_staged = 0
        timed_out = False
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            peak_rss = max(peak_rss, tree_rss(process.pid))
            if spill is not None:
                spilled, staged = folder_bytes(spill)
                peak_spill, peak_staged = max(peak_spill, spilled), max(peak_staged, staged)
            if timeout and time.perf_counter() - started > timeout and not timed_out:
                timed_out = True
                os.killpg(process.pid, signal.SIGKILL)
            time.sleep(POLL_S)
        process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    result = {
        "seconds": round(seconds, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "maxrss_mb": int(usage.ru_maxrss / 1024),
        "peak_tree_rss_mb": int(peak_rss / 2**20),
        "status": "ok" if process.returncode == 0 else "failed",
    }
    if spill is not None:
        result["peak_spill_mb"] = int(peak_spill / 2**20)
        result["peak_staged_mb"] = int(peak_staged / 2**20)
    if timed_out:
        result["status"] = "failed"
        result["error"] = f"stopped after the {timeout:.0f} s limit"
    elif process.returncode != 0:
        result["error"] = last_line(log) or f"exit status {process.returncode}"
    return result


def last_line(log: Path) -> str:
    """The last non-blank line of a log (the one-line error of a failed command)."""
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines()]
    lines = [line for line in lines if line]
    return lines[-1][:300] if lines else ""


def build_dumps(n: int, work: Path, formats: tuple[str, ...]) -> dict:
    """The dumps of `n` listens (made once, then reused); the generator's manifest."""
    out = work / f"dumps-{count_label(n)}"
    spec = ScaleSpec.sized(n)
    manifest = matches(out, spec, formats)
    if manifest is not None:
        print(f"dumps of {n:,} listens: reusing {out}", flush=True)
        manifest["reused"] = True
        return manifest
    print(f"dumps of {n:,} listens: generating into {out} ...", flush=True)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    fmt = formats[0] if len(formats) == 1 else "both"
    command = [sys.executable, str(HERE / "scale_dump.py"), "--listens", str(n)]
    run = run_measured([*command, "--format", fmt, "--out", str(out)], work / "generate.log")
    if run["status"] != "ok":
        raise SystemExit(f"generating {n:,} listens failed: {run.get('error')}")
    manifest = json.loads((out / "scale_dump.json").read_text())
    manifest.update(reused=False, maxrss_mb=run["maxrss_mb"])
    print(
        f"  {manifest['listens_per_s']:,} listens/s, {run['maxrss_mb']:,} MB peak; "
        + ", ".join(f"{k} {v / 2**20:,.0f} MB" for k, v in manifest["bytes"].items()),
        flush=True,
    )
    return manifest


def run_etl(n: int, fmt: str, dump: Path, work: Path, etl_args: list[str]) -> dict:
    """`songrec etl dump` on one dump, its spill folder watched."""
    label = f"{count_label(n)}-{fmt}"
    out = work / f"data-{label}"
    tmp = work / f"tmp-{label}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    command = [*SONGREC, "etl", "dump", str(dump), "--out", str(out), "--force", *etl_args]
    print(f"etl dump {fmt} ({n:,} listens) ...", flush=True)
    run = run_measured(
        command, work / f"etl-{label}.log", spill=tmp, env={"TMPDIR": str(tmp)}, cwd=tmp
    )
    shutil.rmtree(tmp, ignore_errors=True)
    row = {"step": "etl", "format": fmt, "listens": n, "data": str(out), **run}
    if run["status"] == "ok":
        report = json.loads((out / "etl_report.json").read_text())
        row.update(
            listens_per_s=int(n / run["seconds"]),
            us_per_listen=round(1e6 * run["seconds"] / n, 3),
            users=report["users"],
            songs=report["songs"],
            pairs=report["pairs"],
            out_mb=round(sum(folder_bytes(out)) / 2**20, 1),
        )
        spilled = (report.get("duckdb") or {}).get("spilled_bytes")
        if spilled is not None:  # what the ETL says it spilled, where it reports that
            row["reported_spill_mb"] = int(spilled / 2**20)
    print("  " + json.dumps(row), flush=True)
    return row


def run_train(
    data: Path, top: int, work: Path, label: str, timeout: float, jobs: int, grid: str
) -> dict:
    """`songrec train --grid GRID --top-songs top`, measured; the model's numbers."""
    model = work / f"model-{label}-{count_label(top)}"
    command = [
        *SONGREC,
        "train",
        "--data",
        str(data),
        "--out",
        str(model),
        "--grid",
        grid,
        "--top-songs",
        str(top),
        "--jobs",
        str(jobs),
        "--force",
    ]
    print(f"train --top-songs {top:,} on {data.name} ...", flush=True)
    log = work / f"train-{label}-{count_label(top)}.log"
    run = run_measured(command, log, timeout=timeout)
    row = {"step": "train", "top_songs": top, "data": str(data), "model": str(model), **run}
    if run["status"] == "ok":
        params = json.loads((model / "params.json").read_text())
        trim = params["trim"]
        row.update(
            songs_kept=trim["songs_kept"],
            users_kept=trim["users_kept"],
            ratings_kept=trim["ratings_kept"],
            grid_seconds=params.get("grid_seconds"),
            artifact_mb=round(sum(folder_bytes(model)) / 2**20, 1),
            grid_data=f"{Path(grid).stem}: {grid_note(model)}",
        )
    print("  " + json.dumps(row), flush=True)
    return row


def train_grid(given: str | None, top: int) -> str:
    """The grid `train` gets: the one given (a file by its absolute path, so the logged
    command names it wherever it is rerun), else quick, or SCALE_GRID from SCALE_GRID_FROM
    songs."""
    if given is None:
        return "quick" if top < SCALE_GRID_FROM else str(SCALE_GRID)
    return str(Path(given).resolve()) if Path(given).is_file() else given


def grid_note(model: Path) -> str:
    """What the grid search scored on (its subsample), from the saved grid results."""
    try:
        import pandas as pd

        first = pd.read_csv(model / "gscv_results.csv").iloc[0]
        return f"{int(first['ratings']):,} ratings: {first['data']}"
    except (OSError, KeyError, ValueError, IndexError):
        return ""


def run_app(model: Path, work: Path, label: str) -> dict:
    """Load time and recommendation latency of a model, in a fresh process."""
    log = work / f"app-{label}.log"
    run = run_measured([sys.executable, __file__, "--app-child", str(model)], log)
    row = {"step": "app", "model": str(model), **run}
    if run["status"] == "ok":
        lines = log.read_text().strip().splitlines()
        row.update(json.loads(lines[-1]))
    print("  " + json.dumps(row), flush=True)
    return row


def app_child(model_dir: Path) -> None:
    """Child process: what the page does on load, then LISTENERS instant recommendations."""
    import numpy as np

    from songrec.models.artifact import load_model
    from songrec.models.recommender import Recommender
    from songrec.models.search import song_index

    started = time.perf_counter()
    model = load_model(model_dir)
    loaded = time.perf_counter()
    recommender = Recommender(model)
    recommender.training_matrix()  # the page reads it under its loading spinner
    matrix = time.perf_counter()
    index = song_index(model)
    indexed = time.perf_counter()
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rng = np.random.default_rng(7)
    pool = min(2_000, model.n_songs)
    times = []
    for k in range(LISTENERS + 1):
        rows = rng.choice(pool, min(RATED, pool), replace=False)
        rated = [(str(model.song_ids[i]), int(rng.integers(1, 11))) for i in rows]
        begun = time.perf_counter()
        recommender.recommend(rated, 10, mode="foldin")
        if k:  # the first call warms caches up
            times.append(1000 * (time.perf_counter() - begun))
    searches = []
    for word in ("amber", "the harbor", "electric circuit", "zzz"):
        begun = time.perf_counter()
        index.search(word)
        searches.append(1000 * (time.perf_counter() - begun))
    times.sort()
    print(
        json.dumps(
            {
                "songs": int(model.n_songs),
                "load_s": round(loaded - started, 2),
                "matrix_s": round(matrix - loaded, 2),
                "index_s": round(indexed - matrix, 2),
                "ready_s": round(indexed - started, 2),
                "rss_loaded_mb": int(rss_loaded),
                "recommend_p50_ms": round(statistics.median(times), 1),
                "recommend_p95_ms": round(times[int(0.95 * (len(times) - 1))], 1),
                "search_max_ms": round(max(searches), 1),
            }
        )
    )


def ratios(etl_rows: list[dict]) -> list[dict]:
    """Per format: time per listen at the largest size over the smallest."""
    out = []
    for fmt in sorted({r["format"] for r in etl_rows}):
        ok = [r for r in etl_rows if r["format"] == fmt and r["status"] == "ok"]
        ok.sort(key=lambda r: r["listens"])
        if len(ok) >= 2:
            small, large = ok[0], ok[-1]
            ratio = large["us_per_listen"] / small["us_per_listen"]
            out.append(
                {
                    "format": fmt,
                    "small": small["listens"],
                    "large": large["listens"],
                    "ratio": round(ratio, 2),
                    "within_target": ratio <= TARGET_RATIO,
                }
            )
    return out


def machine() -> dict:
    """What the numbers ran on."""
    try:
        mem = next(
            int(line.split()[1]) // 2**20
            for line in open("/proc/meminfo")
            if line.startswith("MemTotal")
        )
    except (OSError, StopIteration):
        mem = None
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "commit": commit,
        "cpus": os.cpu_count(),
        "memory_gb": mem,
        "python": platform.python_version(),
        "load_before": round(os.getloadavg()[0], 2),
    }


def markdown(results: dict) -> str:
    """The results as Markdown tables."""
    m = results["machine"]
    lines = [
        f"Machine: {m['cpus']} cores, {m['memory_gb']} GB RAM; load average {m['load_before']} "
        f"before, {m.get('load_after')} after; songrec {m['commit']}. "
        f"Total {results['seconds'] / 60:.1f} min.",
        "",
        "| dump | listens | generated (listens/s) | size (MB) |",
        "|---|---:|---:|---:|",
    ]
    for gen in results["dumps"]:
        for fmt in gen["formats"]:
            lines.append(
                f"| {fmt} | {gen['listens']:,} | {gen['listens_per_s']:,}"
                f"{' (reused)' if gen.get('reused') else ''} | {gen['bytes'][fmt] / 2**20:,.0f} |"
            )
    if results["etl"]:
        lines += [
            "",
            "| etl dump | listens | listens/s | seconds | CPU s | peak RSS (MB) | "
            "peak tree RSS (MB) | peak spill (MB) | peak staged (MB) | pairs | songs |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
    for r in results["etl"]:
        if r["status"] != "ok":
            lines.append(f"| {r['format']} | {r['listens']:,} | failed: {r.get('error')} |")
            continue
        lines.append(
            f"| {r['format']} | {r['listens']:,} | {r['listens_per_s']:,} | {r['seconds']} | "
            f"{r['cpu_s']} | {r['maxrss_mb']:,} | {r['peak_tree_rss_mb']:,} | "
            f"{r['peak_spill_mb']:,} | {r.get('peak_staged_mb', 0):,} | {r['pairs']:,} | "
            f"{r['songs']:,} |"
        )
    for ratio in results["ratios"]:
        verdict = "within" if ratio["within_target"] else "over"
        lines.append(
            f"\n{ratio['format']}: time per listen at {ratio['large']:,} listens is "
            f"{ratio['ratio']}x that at {ratio['small']:,} ({verdict} the {TARGET_RATIO}x target)"
        )
    if results["train"]:
        lines += [
            "",
            f"Training on {results['train_data']} (`--grid` quick below "
            f"{SCALE_GRID_FROM:,} songs, {SCALE_GRID.stem} from there, unless given: the "
            "grid search scores on a fixed-seed subsample of whole users, about 80k ratings; "
            f"{SCALE_GRID.stem} validates one ranking setting instead of 45 per SVD over 15; "
            "holdout, final SVD and ranking model use every kept rating).",
            "",
            "| top songs | songs kept | ratings kept | grid scored on | train (s) | grid (s) | "
            "peak RSS (MB) | peak tree RSS (MB) | artifact (MB) | app ready (s) | "
            "load / matrix / index (s) | app RSS (MB) | recommend p50 / p95 (ms) |",
            "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---|",
        ]
        apps = {a["model"]: a for a in results["app"]}
        for r in results["train"]:
            if r["status"] != "ok":
                lines.append(f"| {r['top_songs']:,} | failed: {r.get('error')} |")
                continue
            a = apps.get(r["model"], {})
            if a.get("status") == "ok":
                app = (
                    f"{a['ready_s']} | {a['load_s']} / {a['matrix_s']} / {a['index_s']} | "
                    f"{a['rss_loaded_mb']:,} | {a['recommend_p50_ms']} / "
                    f"{a['recommend_p95_ms']}"
                )
            else:
                app = f"failed: {a.get('error')} | | |"
            lines.append(
                f"| {r['top_songs']:,} | {r['songs_kept']:,} | {r['ratings_kept']:,} | "
                f"{r.get('grid_data', '')} | {r['seconds']} | {r['grid_seconds']} | "
                f"{r['maxrss_mb']:,} | {r['peak_tree_rss_mb']:,} | {r['artifact_mb']:,} | {app} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1M and 10M; 10k and 100k songs")
    parser.add_argument("--sizes", nargs="+", type=parse_count, help="listens, e.g. 10M 100M")
    parser.add_argument("--top-songs", nargs="+", type=parse_count, help="e.g. 10k 100k 1M")
    parser.add_argument("--formats", nargs="+", choices=FORMATS, default=list(FORMATS))
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="dumps, data, models")
    parser.add_argument(
        "--train-on", type=parse_count, help="train on this size (default: the largest)"
    )
    parser.add_argument("--no-etl", action="store_true", help="reuse the work folder's data")
    parser.add_argument("--no-train", action="store_true", help="ETL only")
    parser.add_argument("--train-timeout", type=float, default=4 * 3600, help="seconds")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="train --jobs")
    parser.add_argument(
        "--grid",
        help=f"train --grid (default: quick below {SCALE_GRID_FROM:,} songs, {SCALE_GRID.name} "
        "from there: one ranking setting)",
    )
    parser.add_argument(
        "--etl-args", default="", help="extra `songrec etl dump` options, one string"
    )
    parser.add_argument("--app-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.app_child:
        app_child(args.app_child)
        return
    sizes = sorted(args.sizes or [parse_count(s) for s in (QUICK_SIZES if args.quick else SIZES)])
    tops = args.top_songs or [
        parse_count(s) for s in (QUICK_TOP_SONGS if args.quick else TOP_SONGS)
    ]
    formats = tuple(args.formats)
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results: dict = {"machine": machine(), "dumps": [], "etl": [], "train": [], "app": []}
    results["args"] = {
        "sizes": sizes,
        "top_songs": tops,
        "formats": list(formats),
        "etl_args": args.etl_args,
        "grid": args.grid,
    }
    dumps = {}
    for n in sizes:
        manifest = build_dumps(n, work, formats)
        results["dumps"].append(manifest)
        dumps[n] = manifest
    for n in sizes:
        folder = work / f"dumps-{count_label(n)}"
        for fmt in formats:
            if args.no_etl:
                continue
            dump = folder / dumps[n]["files"][fmt]
            results["etl"].append(run_etl(n, fmt, dump, work, args.etl_args.split()))
    results["ratios"] = ratios(results["etl"])
    by_format = {}
    for r in results["etl"]:
        if r["status"] == "ok":
            by_format.setdefault(r["listens"], set()).add((r["pairs"], r["songs"]))
    disagree = {n: s for n, s in by_format.items() if len(s) > 1}
    if disagree:
        results["formats_disagree"] = {str(n): sorted(s) for n, s in disagree.items()}
        print(f"WARNING: the dump formats disagree (pairs, songs): {disagree}", flush=True)
    if not args.no_train:
        size = args.train_on or sizes[-1]
        data = work / f"data-{count_label(size)}-{formats[0]}"
        results["train_data"] = f"{size:,} listens ({data.name})"
        if not (data / "ratings.parquet").exists():
            results["train_data"] += ": missing (ETL failed or not run)"
        else:
            for top in tops:
                row = run_train(
                    data,
                    top,
                    work,
                    count_label(size),
                    args.train_timeout,
                    args.jobs,
                    train_grid(args.grid, top),
                )
                results["train"].append(row)
                if row["status"] == "ok":
                    label = f"{count_label(size)}-{count_label(top)}"
                    results["app"].append(run_app(Path(row["model"]), work, label))
    results["machine"]["load_after"] = round(os.getloadavg()[0], 2)
    results["seconds"] = round(time.perf_counter() - started, 1)
    text = markdown(results)
    (work / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    (work / "results.md").write_text(text)
    print("\n" + text)
    print(f"written: {work / 'results.md'}, {work / 'results.json'}")


if __name__ == "__main__":
    main()
