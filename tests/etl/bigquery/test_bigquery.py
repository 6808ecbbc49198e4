"""`songrec etl bigquery` with the real google-cloud-bigquery client.

Against a local BigQuery emulator (bqemulator, DuckDB-backed, REST + Storage Read gRPC) on
127.0.0.1: the parameterized plays query, its plays against the DuckDB path's, the dry run,
the Storage API download. bqemulator reports 0 bytes for every dry run and ignores
maximumBytesBilled, so the bytes figures and the guard are checked against a small
http.server stand-in of exactly those REST calls (jobs.insert, jobs.get). Missing
credentials and project: the CLI in a subprocess, with no emulator. test_bigquery_load.py
(Spark dumps into a table) and test_bigquery_ratings.py (--ratings-only) share this
module's emulator, listens table and stand-in.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from google.api_core.client_options import ClientOptions
from google.api_core.retry import Retry
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from songrec.etl.aggregate import PlaysAggregator
from songrec.etl.bigquery import plays as bq
from songrec.etl.errors import EtlError
from songrec.etl.listens import LISTEN_SCHEMA
from songrec.etl.pipeline import EtlRun, run_listens

pytestmark = pytest.mark.bigquery

PROJECT = "test-project"
TABLE = f"{PROJECT}.listenbrainz.listen"
START = datetime(2019, 3, 1, tzinfo=UTC)
END = datetime(2019, 4, 1, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[3]
SONGREC = [sys.executable, "-c", "from songrec.app.cli import main; main()"]

# bqemulator's start-up installs DuckDB's spatial extension (a download: no network here)
# and has no setting to skip it; GEOGRAPHY is not needed, so the emulator's own process
# replaces that one start-up step before starting. Avro (a best-effort download) is
# switched off by its setting, BQEMU_ENABLE_FORMAT_EXTENSIONS.
_EMULATOR_MAIN = """
import sys
from bqemulator.storage.engine import DuckDBEngine
assert hasattr(DuckDBEngine, "_load_spatial"), "bqemulator changed: update the test fixture"
DuckDBEngine._load_spatial = lambda self: None
from bqemulator.cli import main
sys.exit(main())
"""

SCHEMA = [
    bigquery.SchemaField("listened_at", "TIMESTAMP", mode="REQUIRED"),
    bigquery.SchemaField("user_name", "STRING"),
    bigquery.SchemaField("artist_msid", "STRING"),
    bigquery.SchemaField("artist_name", "STRING"),
    bigquery.SchemaField("recording_msid", "STRING"),
    bigquery.SchemaField("track_name", "STRING", mode="REQUIRED"),
    bigquery.SchemaField("artist_mbids", "STRING"),
    bigquery.SchemaField("release_msid", "STRING"),
    bigquery.SchemaField("release_name", "STRING"),
    bigquery.SchemaField("release_mbid", "STRING"),
    bigquery.SchemaField("recording_mbid", "STRING"),
    bigquery.SchemaField("tags", "STRING"),
]


@dataclass(frozen=True)
class Emulator:
    rest_url: str
    grpc_endpoint: str
    # What the emulator serves as gs://BUCKET/PATH: GCS_ROOT/BUCKET/PATH (its own shim).
    gcs_root: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# One emulator (and one listens table in it) for the session, whichever test module asks
# first: test_bigquery_*.py import these fixtures, and each import is its own fixture
# definition; the process and the table are shared through this dict.
_RUNNING: dict[str, object] = {}


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Emulator:
    """A bqemulator process on free local ports, stopped at the end of the session."""
    if "emulator" in _RUNNING:
        yield _RUNNING["emulator"]
        return
    rest, grpc_port = _free_port(), _free_port()
    folder = tmp_path_factory.mktemp("bqemu")
    gcs_root = folder / "gcs"
    gcs_root.mkdir()
    log = (folder / "emulator.log").open("w")
    env = {
        **os.environ,
        "BQEMU_ENABLE_FORMAT_EXTENSIONS": "false",
        "BQEMU_GCS_LOCAL_ROOT": str(gcs_root),
    }
    env.pop("BIGQUERY_EMULATOR_HOST", None)
    process = subprocess.Popen(
        [sys.executable, "-c", _EMULATOR_MAIN, "start", "--rest-port", str(rest)]
        + ["--grpc-port", str(grpc_port), "--project", PROJECT, "--log-level", "warning"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{rest}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                log.flush()
                raise RuntimeError(f"bqemulator exited: {Path(log.name).read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"{url}/healthz", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        _RUNNING["emulator"] = Emulator(url, f"127.0.0.1:{grpc_port}", gcs_root)
        yield _RUNNING["emulator"]
    finally:
        _RUNNING.clear()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _client(url: str) -> bigquery.Client:
    return bigquery.Client(
        project=PROJECT,
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=url),
    )


# Recording MBIDs as the listens carry them: canonical, upper-cased (kept, lower-cased),
# and not ids at all (kept as NULL) by both engines alike.
BEATLES = "2d6f51c6-afc5-457e-9c58-689679c08d30"
BEATLES_2 = "899a043d-67bc-420c-85ea-6fee705baeb3"


def _mbid(i: int) -> str | None:
    """The raw MBID of generated listen `i`: a track's id in several forms, or none."""
    canonical = f"{(i * 3) % 17:08x}-0000-4000-8000-{i % 4:012x}"
    return [canonical, canonical.upper(), None, f"{canonical}x", ""][i % 5]


def make_listens() -> list[dict]:
    """Listens in and around March 2019: spelling variants, empty names, odd whitespace,
    recording MBIDs valid, upper-cased and invalid."""
    listens = []
    t0 = datetime(2019, 2, 20, tzinfo=UTC)
    artists = [f"Synthetic Band {i}" for i in range(12)]
    for i in range(1500):
        listens.append(
            {
                "listened_at": t0 + timedelta(minutes=47 * i),  # 20 Feb .. 11 Apr
                "user_name": f"listener_{(i * 7) % 23}",
                "artist_name": artists[(i * 5) % 12],
                "track_name": f"Track {(i * 3) % 17}",
                "recording_mbid": _mbid(i),
            }
        )
    mid = datetime(2019, 3, 15, 12, tzinfo=UTC)
    # One song, five spellings (case, inner runs, edges, a tab): one song_id, and the
    # spelling played most ("The Beatles" / "Let It Be") is the one displayed. Its MBIDs:
    # BEATLES 3 plays (one upper-cased), BEATLES_2 2, one invalid: BEATLES is the song's.
    mbids = [BEATLES, BEATLES_2, BEATLES.upper(), "bogus", BEATLES_2, None, BEATLES]
    for n, (artist, track) in enumerate(
        [("The Beatles", "Let It Be")] * 4
        + [
            ("the beatles", "let it be"),
            ("THE  BEATLES", " Let It Be "),
            ("The\tBeatles", "Let  it be"),
        ]
    ):
        listens.append({"listened_at": mid + timedelta(hours=n), "user_name": "ringo",
                        "artist_name": artist, "track_name": track,
                        "recording_mbid": mbids[n]})  # fmt: skip
    edges = [
        ("ringo", "The Beatles", "Let It Be", START),  # the first instant: in
        ("ringo", "The Beatles", "Let It Be", END),  # end is exclusive: out
        ("ringo", "The Beatles", "Let It Be", START - timedelta(seconds=1)),  # out
        ("", "Some Artist", "Some Track", mid),  # empty user: out
        ("   ", "Some Artist", "Some Track", mid),  # blank user: out
        (None, "Some Artist", "Some Track", mid),  # no user: out
        ("paul", "", "Some Track", mid),  # empty artist: out
        ("paul", "  \t ", "Some Track", mid),  # blank artist: out
        ("paul", None, "Some Track", mid),  # no artist: out
        ("paul", "Some Artist", "", mid),  # empty track (REQUIRED, yet empty): out
        ("paul", "Ünïcode Ärtist", "Tränk", mid),  # in
    ]
    for user, artist, track, at in edges:
        listens.append({"listened_at": at, "user_name": user, "artist_name": artist,
                        "track_name": track})  # fmt: skip
    return listens


@pytest.fixture(scope="session")
def loaded(emulator: Emulator) -> list[dict]:
    """The listen table, public schema, filled with `make_listens()` (streaming inserts);
    once per emulator, whichever module asks first."""
    if "loaded" in _RUNNING:
        return _RUNNING["loaded"]
    client = _client(emulator.rest_url)
    client.create_dataset("listenbrainz", exists_ok=True)
    table = client.create_table(bigquery.Table(TABLE, schema=SCHEMA), exists_ok=True)
    listens = make_listens()
    rows = [
        {
            **listen,
            "listened_at": listen["listened_at"].isoformat(),
            "artist_msid": f"msid-{i % 97}",
            "recording_msid": f"rec-{i}",
            "release_name": "Some Release",
            "tags": None,
        }
        for i, listen in enumerate(listens)
    ]
    for first in range(0, len(rows), 500):
        assert client.insert_rows_json(table, rows[first : first + 500]) == []
    _RUNNING["loaded"] = listens
    return listens


def _duckdb_folder(listens: list[dict], out: Path) -> dict:
    batch = pa.Table.from_pylist(
        [{k: row.get(k) for k in LISTEN_SCHEMA.names} for row in listens], schema=LISTEN_SCHEMA
    )
    return run_listens(EtlRun(source="test", out_dir=out, start=START, end=END), [batch])


def _sorted(path: Path, *keys: str) -> pa.Table:
    table = pq.read_table(path)
    return table.sort_by([(k, "ascending") for k in keys])


def _same_folder(a: Path, b: Path) -> None:
    assert _sorted(a / "plays.parquet", "user_name", "song_id").equals(
        _sorted(b / "plays.parquet", "user_name", "song_id")
    )
    assert _sorted(a / "songs.parquet", "song_id").equals(_sorted(b / "songs.parquet", "song_id"))
    assert _sorted(a / "ratings.parquet", "user_name", "song_id").equals(
        _sorted(b / "ratings.parquet", "user_name", "song_id")
    )


def _songrec(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SONGREC, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


def test_cli_plays_equal_the_duckdb_paths(emulator: Emulator, loaded: list[dict], tmp_path):
    """The whole command against the emulator writes the DuckDB path's folder, dates as params."""
    out = tmp_path / "bq"
    result = _songrec(
        "etl", "bigquery", "--start", "2019-03-01", "--end", "2019-04-01", "--out", str(out),
        "--project", PROJECT, "--table", TABLE, "--api-endpoint", emulator.rest_url,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    duck = _duckdb_folder(loaded, tmp_path / "duck")
    _same_folder(out, tmp_path / "duck")

    report = json.loads((out / "etl_report.json").read_text())
    assert report["engine"] == "bigquery" and report["download"] == "rest"
    assert report["source_kind"] == "bigquery" and report["synthetic"] is False
    # Written by the capped DuckDB like a local run: spellings too, so --append can extend it.
    assert (out / "spellings.parquet").is_file() and report["duckdb"]["memory_limit"]
    # BigQuery returns plays: listens_read is what the query kept (window, names).
    kept = pc.sum(pq.read_table(tmp_path / "duck" / "plays.parquet")["plays"]).as_py()
    assert report["listens_read"] == kept < len(loaded)
    assert (report["users"], report["songs"], report["pairs"]) == (
        duck["users"],
        duck["songs"],
        duck["pairs"],
    )
    songs = pq.read_table(out / "songs.parquet").to_pylist()
    beatles = [s for s in songs if s["artist_name"].lower().split() == ["the", "beatles"]]
    assert len(beatles) == 1  # five spellings, one song
    assert (beatles[0]["artist_name"], beatles[0]["track_name"]) == ("The Beatles", "Let It Be")
    assert beatles[0]["raw_plays"] == 8  # 7 mid-March + the one at START
    assert beatles[0]["recording_mbid"] == BEATLES
    # Upper-cased ids were lower-cased, anything else dropped, by BigQuery as by DuckDB.
    mbids = {s["recording_mbid"] for s in songs} - {None}
    assert mbids and all(
        re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", m) for m in mbids
    )

    # The query BigQuery ran carries the dates as parameters, never as literals.
    job = _client(emulator.rest_url).get_job(report["job_id"])
    assert "@start" in job.query and "@end" in job.query
    assert not re.search(r"20\d\d-\d\d-\d\d", job.query)
    # (bqemulator does not echo queryParameters in jobs.get; the stand-in test below
    # checks the parameters the client sends.)


def test_storage_read_api_download(emulator: Emulator, loaded: list[dict], tmp_path):
    """Plays come down through the Storage Read API (gRPC, Arrow) as they do over REST.

    bqemulator keeps a query's anonymous result outside DuckDB, where its Storage Read
    server cannot see it, so the production query is materialised in a table first and
    read back through `iter_plays` with the REST endpoint unreachable: every row comes
    over gRPC.
    """
    import grpc
    from google.cloud.bigquery_storage_v1 import BigQueryReadClient
    from google.cloud.bigquery_storage_v1.services.big_query_read.transports import (
        BigQueryReadGrpcTransport,
    )

    client = _client(emulator.rest_url)
    sql = bq.bigquery_plays_sql(TABLE)
    client.query(
        f"CREATE OR REPLACE TABLE listenbrainz.plays_copy AS {sql}",
        job_config=bq.job_config(START, END),
    ).result()
    copy = client.get_table(f"{PROJECT}.listenbrainz.plays_copy")
    dead_rest = _client(f"http://127.0.0.1:{_free_port()}")
    read_client = BigQueryReadClient(
        transport=BigQueryReadGrpcTransport(
            # Unlimited messages, as the client's own channel to BigQuery is configured.
            channel=grpc.insecure_channel(
                emulator.grpc_endpoint, options=[("grpc.max_receive_message_length", -1)]
            )
        )
    )
    rows = dead_rest.list_rows(copy, retry=Retry(timeout=2))
    via_grpc = PlaysAggregator(START, END)
    for part in bq.iter_plays(rows, read_client):
        via_grpc.add_plays(part)
    plays_grpc, songs_grpc = via_grpc.finish()

    _, rest_rows = bq.query_plays(client, TABLE, START, END, max_bytes=10**9)
    via_rest = PlaysAggregator(START, END)
    for part in bq.iter_plays(rest_rows):
        via_rest.add_plays(part)
    plays_rest, songs_rest = via_rest.finish()
    assert plays_grpc.num_rows > 100
    assert plays_grpc.equals(plays_rest) and songs_grpc.equals(songs_rest)


def test_dry_run_runs_nothing(emulator: Emulator, loaded: list[dict], tmp_path):
    client = _client(emulator.rest_url)
    jobs_before = {job.job_id for job in client.list_jobs()}
    out = tmp_path / "never"
    # The emulator named the way bqemulator's own tooling does: host:port, no scheme.
    env = {**os.environ, "BIGQUERY_EMULATOR_HOST": emulator.rest_url.removeprefix("http://")}
    result = _songrec(
        "etl", "bigquery", "--start", "2019-03-01", "--end", "2019-04-01", "--out", str(out),
        "--project", PROJECT, "--table", TABLE, "--dry-run", env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # bqemulator has no cost model: it reports 0 bytes (figures: the stand-in test below).
    assert "would scan 0 bytes" in result.stdout
    assert not out.exists()
    # bqemulator lists dry runs as jobs (BigQuery does not); none may be a real run.
    new_jobs = [job for job in client.list_jobs() if job.job_id not in jobs_before]
    assert len(new_jobs) == 1 and new_jobs[0].dry_run


def test_missing_table_and_bad_reference(emulator: Emulator, loaded: list[dict], tmp_path):
    client = _client(emulator.rest_url)
    run = EtlRun(source="t", out_dir=tmp_path / "x", start=START, end=END)
    with pytest.raises(EtlError, match=r"cannot find .*listenbrainz\.nope.*--table"):
        bq.run_bigquery(run, client, table=f"{PROJECT}.listenbrainz.nope")
    with pytest.raises(EtlError, match="cannot find"):
        bq.run_bigquery(run, client, table=f"{PROJECT}.no_such_dataset.listen")
    with pytest.raises(EtlError, match="must come after"):
        bq.run_bigquery(EtlRun(source="t", out_dir=tmp_path / "y", start=END, end=START), client)
    assert not (tmp_path / "x").exists()
    result = _songrec(
        "etl", "bigquery", "--start", "2019-03-01", "--end", "2019-04-01", "--out",
        str(tmp_path / "z"), "--table", "listen; DROP TABLE x", "--api-endpoint", emulator.rest_url,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: not a BigQuery table reference: 'listen; DROP TABLE x' "
        "(expected project.dataset.table)"
    ]


# --- the bytes figures and the guard: a stand-in for jobs.insert and jobs.get --------------


class _StandIn(BaseHTTPRequestHandler):
    """BigQuery's jobs.insert/jobs.get as a real service answers a costed or refused query."""

    scan_bytes = 0
    billed_needed = 0
    jobs: dict = {}
    inserted: list = []

    def log_message(self, *args) -> None:  # quiet
        pass

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802
        match = re.fullmatch(r"/bigquery/v2/projects/([^/]+)/jobs(\?.*)?", self.path)
        if not match:
            return self._send(404, {"error": {"code": 404, "message": self.path}})
        job = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).inserted.append(job)
        ref = {"projectId": match.group(1), "jobId": job["jobReference"]["jobId"], "location": "US"}
        stats = {"totalBytesProcessed": str(self.scan_bytes)}
        answer = {
            "kind": "bigquery#job",
            "id": f"{ref['projectId']}:US.{ref['jobId']}",
            "jobReference": ref,
            "configuration": job["configuration"],
            "statistics": {"creationTime": "1", "startTime": "1", "endTime": "2", **stats,
                           "query": {**stats, "statementType": "SELECT"}},
            "status": {"state": "DONE"},
        }  # fmt: skip
        if not job["configuration"].get("dryRun"):
            limit = job["configuration"]["query"].get("maximumBytesBilled")
            error = {
                "reason": "bytesBilledLimitExceeded",
                "message": f"Query exceeded limit for bytes billed: {limit}. "
                f"{self.billed_needed} or higher required.",
            }
            answer["status"] = {"state": "DONE", "errorResult": error, "errors": [error]}
        type(self).jobs[ref["jobId"]] = answer
        self._send(200, answer)

    def do_GET(self) -> None:  # noqa: N802
        match = re.fullmatch(r"/bigquery/v2/projects/[^/]+/jobs/([^/?]+)(\?.*)?", self.path)
        if match and match.group(1) in self.jobs:
            return self._send(200, self.jobs[match.group(1)])
        # tables.get: every table has the public table's schema (etl bigquery reads it to
        # see which columns the plays SQL gets).
        table = re.fullmatch(
            r"/bigquery/v2/projects/([^/]+)/datasets/([^/]+)/tables/([^/?]+)(\?.*)?", self.path
        )
        if table:
            ref = dict(zip(("projectId", "datasetId", "tableId"), table.groups()[:3], strict=True))
            return self._send(
                200,
                {"kind": "bigquery#table", "tableReference": ref,
                 "schema": {"fields": [field.to_api_repr() for field in SCHEMA]}},
            )  # fmt: skip
        self._send(404, {"error": {"code": 404, "message": f"Not found: {self.path}"}})


@pytest.fixture
def stand_in():
    _StandIn.jobs, _StandIn.inserted = {}, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_dry_run_prints_bytes_and_cost(stand_in: str, tmp_path):
    _StandIn.scan_bytes = 3 * 2**40 // 2  # 1.5 TiB
    result = _songrec(
        "etl", "bigquery", "--start", "2016-01-01", "--end", "2020-08-06", "--dry-run",
        "--project", PROJECT, "--api-endpoint", stand_in,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "would scan 1,649,267,441,664 bytes (1,649.27 GB)" in result.stdout
    assert "about $9.38 on demand" in result.stdout  # 1.5 TiB x $6.25
    assert [j["configuration"]["dryRun"] for j in _StandIn.inserted] == [True]


def test_bytes_guard_refuses_before_running(stand_in: str, tmp_path):
    _StandIn.scan_bytes = 120 * 10**9
    result = _songrec(
        "etl", "bigquery", "--start", "2016-01-01", "--end", "2020-08-06", "--out",
        str(tmp_path / "out"), "--project", PROJECT, "--api-endpoint", stand_in,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: the query would scan 120.00 GB, over the --max-gb 50 guard; "
        "raise --max-gb or narrow --start/--end"
    ]
    assert [j["configuration"].get("dryRun") for j in _StandIn.inserted] == [True]
    assert not (tmp_path / "out").exists()


def test_bytes_guard_enforced_by_bigquery(stand_in: str, tmp_path):
    """The estimate passes, BigQuery bills more (e.g. its 10 MB minimum) and refuses."""
    _StandIn.scan_bytes = 2 * 10**6
    _StandIn.billed_needed = 10_485_760
    client = _client(stand_in)
    run = EtlRun(source="t", out_dir=tmp_path / "out", start=START, end=END)
    with pytest.raises(EtlError) as refused:
        bq.run_bigquery(run, client, table=TABLE, max_gb=0.005)
    assert str(refused.value) == (
        "the query would scan 0.01 GB, over the --max-gb 0.005 guard; "
        "raise --max-gb or narrow --start/--end"
    )
    sent = _StandIn.inserted[-1]["configuration"]["query"]
    assert sent["maximumBytesBilled"] == str(5 * 10**6)
    assert {p["name"]: p["parameterType"]["type"] for p in sent["queryParameters"]} == {
        "start": "TIMESTAMP",
        "end": "TIMESTAMP",
    }
    assert not (tmp_path / "out").exists()


# --- credentials and project, through the CLI, with no emulator --------------------------


def _bare_env(tmp_path: Path, **extra: str) -> dict:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "GCLOUD_", "CLOUDSDK_"))
    }
    env.pop("BIGQUERY_EMULATOR_HOST", None)
    # No gcloud config and no metadata server (an unreachable address fails fast).
    env.update(HOME=str(tmp_path), CLOUDSDK_CONFIG=str(tmp_path / "gcloud"),
               GCE_METADATA_HOST="127.0.0.1:9", GCE_METADATA_IP="127.0.0.1:9", **extra)  # fmt: skip
    return env


def test_missing_credentials_is_one_line(tmp_path):
    env = _bare_env(tmp_path, GOOGLE_APPLICATION_CREDENTIALS=str(tmp_path / "nothing.json"))
    result = _songrec(
        "etl", "bigquery", "--start", "2019-03-01", "--end", "2019-04-01",
        "--out", str(tmp_path / "out"), env=env,
    )  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no Google Cloud credentials")
    assert "Traceback" not in result.stderr


def test_missing_project_is_one_line(tmp_path):
    # Valid-looking user credentials (as `gcloud auth application-default login` writes
    # them) that name no project; nothing is sent before the project is known.
    adc = tmp_path / "adc.json"
    adc.write_text(
        json.dumps(
            {"type": "authorized_user", "client_id": "x.apps.googleusercontent.com",
             "client_secret": "s", "refresh_token": "r"}
        )
    )  # fmt: skip
    result = _songrec(
        "etl", "bigquery", "--start", "2019-03-01", "--end", "2019-04-01", "--dry-run",
        env=_bare_env(tmp_path, GOOGLE_APPLICATION_CREDENTIALS=str(adc)),
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: no Google Cloud project: pass --project or set GOOGLE_CLOUD_PROJECT"
    ]
