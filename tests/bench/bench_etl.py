"""ETL speed and memory: `etl sample` -> ratings, and `etl dump` on JSON-lines and Spark dumps.

Each case runs `songrec` in its own process, so its peak memory (maxrss) is its own. The
dumps are built first from the synthetic sample's listens, in the layout the ListenBrainz
server writes (building is not timed):
- listenbrainz-listens-dump-1-<ts>-full.tar.zst: listens/<YYYY>/<M>.listens JSON lines;
- listenbrainz-spark-dump-1-<ts>-full.tar: N.parquet, plus the same files as a folder.
Targets (2 cores): >= 1M listens/s aggregating, >= 250k listens/s on compressed JSON lines,
peak memory < 2 GB at 10M listens.

    python tests/bench/bench_etl.py            # 1.5M and 10M sample, 10M-listen dumps
    python tests/bench/bench_etl.py --quick    # small sizes, a minute or so
    python tests/bench/bench_etl.py --workdir /tmp/songrec-bench   # keep/reuse built inputs

The "aggregate only" case times listens already in memory -> the folder (the 1M listens/s
target); the sample cases include generating the listens.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import zstandard

from songrec.etl.sample import SampleSpec, sample_listens

SONGREC = [sys.executable, "-c", "from songrec.app.cli import main; main()"]
ARCHIVE_TIME = "20250101-000000"
# Sample sizes: users and songs grow with listens, about as in the default sample.
SPARK_ROWS_PER_FILE = 2_000_000


def spec_for(listens: int) -> SampleSpec:
    """A sample of `listens` listens whose users/songs scale like the default (2,500/12,000)."""
    scale = max(1.0, listens / 1_500_000)
    return SampleSpec(users=int(2_500 * scale), songs=int(12_000 * scale), listens=listens)


def all_listens(listens: int) -> pa.Table:
    """The sample's listens in time order (as the dumps are written)."""
    table = pa.concat_tables(sample_listens(spec_for(listens)))
    return table.sort_by("listened_at")


def _escaped(values: pa.ChunkedArray) -> list[str]:
    """JSON string literals of the distinct values, mapped back to every row."""
    encoded = pc.dictionary_encode(values).combine_chunks()
    literals = [orjson.dumps(v).decode() for v in encoded.dictionary.to_pylist()]
    return [literals[i] for i in encoded.indices.to_numpy()]


# A listen as the ListenBrainz server writes it into a full dump (Listen.to_json()).
_LINE = (
    '{"user_id":%d,"user_name":%s,"timestamp":%d,"track_metadata":{"artist_name":%s,'
    '"track_name":%s,"release_name":"Synthetic Release","additional_info":{'
    '"recording_msid":"8f3471b5-7e6a-48da-86a9-c1c07a0f47ae","artist_names":[%s],'
    '"duration_ms":215000,"music_service":"spotify.com","submission_client":"songrec-bench",'
    '"tracknumber":3}},"recording_msid":"8f3471b5-7e6a-48da-86a9-c1c07a0f47ae",'
    '"inserted_timestamp":%d}'
)


def _lines(table: pa.Table, user_ids: np.ndarray) -> bytes:
    users = _escaped(table.column("user_name"))
    artists = _escaped(table.column("artist_name"))
    tracks = _escaped(table.column("track_name"))
    seconds = table.column("listened_at").cast(pa.int64()).to_numpy()
    rows = [
        _LINE % (uid, u, t, a, k, a, t + 5)
        for uid, u, t, a, k in zip(user_ids, users, seconds.tolist(), artists, tracks, strict=True)
    ]
    return ("\n".join(rows) + "\n").encode()


def _user_ids(table: pa.Table) -> np.ndarray:
    names = pc.utf8_slice_codeunits(table.column("user_name"), 11)  # synth_user_00042 -> 00042
    return pc.cast(names, pa.int64()).to_numpy()


def build_json_dump(table: pa.Table, folder: Path) -> Path:
    """listenbrainz-listens-dump-...-full.tar.zst, streamed: listens/<YYYY>/<M>.listens."""
    name = f"listenbrainz-listens-dump-1-{ARCHIVE_TIME}-full"
    path = folder / f"{name}.tar.zst"
    months = pc.strftime(table.column("listened_at"), "%Y/%m").combine_chunks()
    bounds = (
        np.flatnonzero(
            months.to_numpy(zero_copy_only=False)[1:] != months.to_numpy(zero_copy_only=False)[:-1]
        )
        + 1
    )
    starts = np.concatenate(([0], bounds))
    ends = np.concatenate((bounds, [table.num_rows]))
    with path.open("wb") as raw:
        writer = zstandard.ZstdCompressor(level=3, threads=-1).stream_writer(raw)
        with tarfile.open(fileobj=writer, mode="w|") as tar:
            for member, text in (("SCHEMA_SEQUENCE", b"1"), ("TIMESTAMP", b"2025-01-01 00:00:00")):
                _add(tar, f"{name}/{member}", text)
            for start, end in zip(starts, ends, strict=True):
                part = table.slice(int(start), int(end - start))
                year, month = months[int(start)].as_py().split("/")
                data = _lines(part, _user_ids(part))
                _add(tar, f"{name}/listens/{year}/{int(month)}.listens", data)
        writer.close()
    return path


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    import io

    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 1735689600
    tar.addfile(info, io.BytesIO(data))


def build_spark_dump(table: pa.Table, folder: Path) -> tuple[Path, Path]:
    """The same listens as a Spark dump: N.parquet files, in a folder and in a plain tar."""
    files = folder / "spark-full-dump"
    files.mkdir()
    spark = pa.table(
        {
            "listened_at": table.column("listened_at").cast(pa.timestamp("ms")),
            "created": table.column("listened_at").cast(pa.timestamp("ms")),
            "user_id": _user_ids(table),
            "recording_msid": pa.array(["8f3471b5-7e6a-48da-86a9-c1c07a0f47ae"] * table.num_rows),
            "artist_name": table.column("artist_name"),
            "artist_credit_id": pa.nulls(table.num_rows, pa.int64()),
            "release_name": pa.array(["Synthetic Release"] * table.num_rows),
            "release_mbid": pa.nulls(table.num_rows, pa.string()),
            "recording_name": table.column("track_name"),
            "recording_mbid": pa.nulls(table.num_rows, pa.string()),
        }
    )
    for n, start in enumerate(range(0, table.num_rows, SPARK_ROWS_PER_FILE)):
        part = spark.slice(start, SPARK_ROWS_PER_FILE)
        pq.write_table(part, files / f"{n}.parquet", compression="zstd")
    (files / "SCHEMA_SEQUENCE").write_text("1")
    name = f"listenbrainz-spark-dump-1-{ARCHIVE_TIME}-full"
    tar_path = folder / f"{name}.tar"
    with tarfile.open(tar_path, "w") as tar:
        for file in sorted(files.iterdir()):
            tar.add(file, arcname=file.name)
    return files, tar_path


def measure(label: str, command: list[str], listens: int, out: Path) -> dict:
    """Run one command (writing a ratings folder to `out`) in its own process: seconds,
    listens/s, CPU seconds and peak memory (its own maxrss)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [*command, "--out", str(out), "--force"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    output = process.stdout.read().decode()
    if status != 0:
        raise SystemExit(f"{label} failed ({status}): {output}")
    report = json.loads((out / "etl_report.json").read_text())
    timed = json.loads(output.splitlines()[-1]) if output.startswith("{") else {}
    seconds = timed.get("seconds", seconds)
    row = {
        "case": label,
        "listens": listens,
        "seconds": round(seconds, 1),
        "listens_per_s": int(listens / seconds),
        # CPU seconds (user + system): what the run cost, even on a busy machine.
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_mb": int(usage.ru_maxrss / 1024),
        "pairs": report["pairs"],
        "songs": report["songs"],
    }
    print(json.dumps(row), flush=True)
    return row


def aggregate_only(listens_file: Path, out: Path) -> None:
    """Child process: listens already in memory (not timed) -> the folder (timed)."""
    from songrec.etl.pipeline import EtlRun, run_listens

    table = pq.read_table(listens_file)
    batches = table.to_batches(max_chunksize=500_000)
    started = time.perf_counter()
    run_listens(
        EtlRun(source=str(listens_file), out_dir=out, force=True),
        (pa.Table.from_batches([b]) for b in batches),
    )
    print(json.dumps({"seconds": time.perf_counter() - started}))


def build_inputs(n: int, work: Path) -> tuple[int, Path, Path, Path, Path]:
    """Listens (Parquet), JSON-lines dump, Spark folder and tar of about `n` listens;
    reused when `work` already holds them."""
    done = work / "built.json"
    if done.exists():
        info = json.loads(done.read_text())
        return info["listens"], *(Path(p) for p in info["paths"])
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    table = all_listens(n)
    listens_file = work / "listens.parquet"
    pq.write_table(table, listens_file)
    json_dump = build_json_dump(table, work)
    folder, spark_tar = build_spark_dump(table, work)
    paths = [listens_file, json_dump, folder, spark_tar]
    done.write_text(json.dumps({"listens": table.num_rows, "paths": [str(p) for p in paths]}))
    print(
        f"built inputs of {table.num_rows:,} listens in {time.perf_counter() - started:.0f} s: "
        f"tar.zst {json_dump.stat().st_size / 1e6:.0f} MB, "
        f"spark tar {spark_tar.stat().st_size / 1e6:.0f} MB",
        flush=True,
    )
    return table.num_rows, *paths


def main() -> None:
    """Build the inputs, run every case, print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--sample-sizes", type=int, nargs="*", help="listens per sample case")
    parser.add_argument("--dump-listens", type=int, help="listens in the dump cases")
    parser.add_argument(
        "--workdir", type=Path, help="keep built inputs here and reuse them (default: a temp dir)"
    )
    parser.add_argument("--aggregate", type=Path, help=argparse.SUPPRESS)  # child process
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--force", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.aggregate:
        aggregate_only(args.aggregate, args.out)
        return
    sizes = args.sample_sizes or ([200_000, 1_000_000] if args.quick else [1_500_000, 10_000_000])
    dump_listens = args.dump_listens or (1_000_000 if args.quick else 10_000_000)
    rows = []
    load = f"{os.getloadavg()[0]:.1f}"
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        for n in sizes:
            # The default sample's 2,500 users and 12,000 songs, with more listens each.
            command = [*SONGREC, "etl", "sample", "--listens", str(n)]
            rows.append(measure(f"etl sample -> ratings ({n:,})", command, n, scratch / "out"))
        work = args.workdir / f"inputs-{dump_listens}" if args.workdir else scratch / "inputs"
        n, listens_file, json_dump, folder, spark_tar = build_inputs(dump_listens, work)
        aggregate = [sys.executable, __file__, "--aggregate", str(listens_file)]
        rows.append(
            measure(f"aggregate only, listens in memory ({n:,})", aggregate, n, scratch / "out")
        )
        cases = [
            ("etl dump JSON lines .tar.zst", json_dump),
            ("etl dump Spark .tar (pyarrow)", spark_tar),
            ("etl dump Spark folder (DuckDB)", folder),
        ]
        for label, path in cases:
            command = [*SONGREC, "etl", "dump", str(path)]
            rows.append(measure(f"{label} ({n:,})", command, n, scratch / "out"))
    print(f"\nload average: {load} before, {os.getloadavg()[0]:.1f} after ({os.cpu_count()} cores)")
    print("\n| case | listens/s | seconds | CPU seconds | peak memory (MB) |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['case']} | {row['listens_per_s']:,} | {row['seconds']} | {row['cpu_s']} "
            f"| {row['peak_mb']:,} |"
        )
    dump_rows = [r for r in rows if r["case"].startswith(("etl dump", "aggregate"))]
    if len({(r["pairs"], r["songs"]) for r in dump_rows}) != 1:
        raise SystemExit(f"dump formats disagree: {dump_rows}")


if __name__ == "__main__":
    main()
