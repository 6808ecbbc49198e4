"""`songrec recommend --history FILE` end to end: listens -> `etl dump` -> `train` -> a
new listener's own history file (Last.fm CSV, ListenBrainz export zip) -> recommendations."""

from __future__ import annotations

import csv
import io
import json
import re
import sys
import zipfile

import numpy as np
import orjson
import pytest
from click.testing import CliRunner

from songrec.app.cli import cli
from songrec.app.cli.errors import run_cli
from songrec.app.cli.model_commands import history_then_rates
from songrec.etl.history import read_history
from songrec.etl.songs import song_id
from songrec.models.recommend import listener_ratings
from songrec.models.recommender import Recommender

GRID = {
    "folds": 2,
    "algorithms": {"SVD": {"n_factors": [6], "n_epochs": [20]}},
    "ranking": {"gamma": [1.0], "alpha": [0.0], "beta_offset": [0.0], "k": [4], "shrink": [0.0]},
}
GROUPS = "ABC"


def group_songs(g: int) -> list[tuple[str, str]]:
    return [(f"Band {GROUPS[g]}{a}", f"Song {a}{t}") for a in range(2) for t in range(10)]


def dump_lines(seed: int = 0) -> bytes:
    """Three taste groups of listeners, as a full dump's `.listens` lines."""
    rng = np.random.default_rng(seed)
    lines, ts = [], 1_600_000_000
    for g in range(3):
        own = group_songs(g)
        others = [s for h in range(3) if h != g for s in group_songs(h)]
        for u in range(20):
            user = f"listener_{g}_{u:02d}"
            picks = [own[i] for i in rng.choice(20, 12, replace=False)]
            plays = [int(rng.integers(1, 26)) for _ in picks]
            picks += [others[i] for i in rng.choice(40, 4, replace=False)]
            plays += [1, 1, 2, 1]
            for (artist, track), n in zip(picks, plays, strict=True):
                for _ in range(n):
                    ts += 60
                    meta = {"artist_name": artist, "track_name": track}
                    lines.append({"user_name": user, "timestamp": ts, "track_metadata": meta})
    return b"".join(orjson.dumps(line) + b"\n" for line in lines)


def invoke(*args: str):
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A model trained by the CLI on a ratings folder the ETL wrote (transform log)."""
    folder = tmp_path_factory.mktemp("cli_history")
    (folder / "listens.listens").write_bytes(dump_lines())
    (folder / "grid.json").write_text(json.dumps(GRID))
    data, model = folder / "data", folder / "model"
    code, _, err = invoke(
        "etl", "dump", str(folder / "listens.listens"), "--out", str(data), "--transform", "log"
    )
    assert code == 0, err
    code, out, err = invoke(
        "train", "--data", str(data), "--out", str(model), "--grid", str(folder / "grid.json"),
        "--jobs", "1",
    )  # fmt: skip
    assert code == 0, out + err
    return model


def lastfm_csv(listens: list[tuple[str, str]]) -> bytes:
    """Header-less lastfm-to-csv rows: artist, album, track, date."""
    sink = io.StringIO(newline="")
    writer = csv.writer(sink)
    for artist, track in listens:
        writer.writerow([artist, "Some Album", track, "31 Jan 2021 12:34"])
    return sink.getvalue().encode()


def new_listener_of(g: int) -> list[tuple[str, str]]:
    """A listener of group `g` who is not in the training data: 8 of its songs, 1..8 plays."""
    return [song for i, song in enumerate(group_songs(g)[::2][:8]) for _ in range(i + 1)]


def test_recommend_from_a_lastfm_history(model_dir, tmp_path):
    mine = new_listener_of(1)
    path = tmp_path / "scrobbles.csv"
    path.write_bytes(lastfm_csv(mine))
    code, out, err = invoke(
        "recommend", "--model", str(model_dir), "--history", str(path), "--json"
    )
    assert code == 0, err
    summary = [line for line in err.splitlines() if line.startswith("history:")]
    assert summary == [f"history: {len(mine)} listens, 8 songs, 8 in the catalogue (0 not)"]
    items = json.loads(out)
    assert len(items) == 10
    played = {song_id(a, t) for a, t in mine}
    assert not played & {item["song_id"] for item in items}  # never your own songs back
    # The listener's taste: most of the picks come from their group's bands.
    same = sum(item["artist_name"].startswith(f"Band {GROUPS[1]}") for item in items)
    assert same >= 7, items


def test_an_export_zip_with_songs_the_model_lacks_and_rate_on_top(model_dir, tmp_path):
    mine = new_listener_of(2) + [("Nobody Known", "Lost Song")] * 3
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("user.json", b'{"user_id": 1, "username": "me"}')
        lines = [
            orjson.dumps(
                {
                    "listened_at": 1_700_000_000 + i,
                    "track_metadata": {"artist_name": a, "track_name": t},
                }
            )
            for i, (a, t) in enumerate(mine)
        ]
        archive.writestr("listens/2025/6.jsonl", b"\n".join(lines) + b"\n{broken\n")
        archive.writestr("feedback.jsonl", b'{"recording_msid": "x", "score": 1}\n')
    path = tmp_path / "listenbrainz_me.zip"
    path.write_bytes(sink.getvalue())
    extra = group_songs(2)[1]  # a song of the group the history does not hold
    code, out, err = invoke(
        "recommend", "--model", str(model_dir), "--history", str(path),
        "--rate", f"{song_id(*extra)}=9",
    )  # fmt: skip
    assert code == 0, err
    assert re.search(
        rf"history: {len(mine)} listens \(1 more rejected: invalid_json 1\), 9 songs, "
        r"8 in the catalogue \(1 not\)",
        err,
    ), err
    picked = [line.strip() for line in out.splitlines() if not re.match(r"\s*\d+\. ", line)]
    assert song_id(*extra) not in picked  # rated with --rate: never recommended
    assert out.count("you'd rate it about") == 10

    # --rate wins over the history for the same song.
    recommender = Recommender.load(model_dir)
    history = read_history(path.read_bytes(), path.name)
    top = song_id(*mine[-4])  # played most
    rated = history_then_rates(recommender, history, [(top, 1)])
    rows, values = listener_ratings(recommender.model, rated)
    assert values[list(rows).index(recommender.model.index_of(top))] == 1
    assert len(rows) == 8


def run_script(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["songrec", *args])
    code = run_cli(cli)
    return code, capsys.readouterr().err


def test_a_bad_history_file_is_a_one_line_error(model_dir, tmp_path, monkeypatch, capsys):
    png = tmp_path / "history.csv"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    code, err = run_script(
        monkeypatch, capsys, "recommend", "--model", str(model_dir), "--history", str(png)
    )
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: history.csv: this is a PNG image")
    assert "Traceback" not in err

    shop = tmp_path / "shop.csv"
    shop.write_text("id,name,price\n1,chair,20\n")
    code, err = run_script(
        monkeypatch, capsys, "recommend", "--model", str(model_dir), "--history", str(shop)
    )
    assert code == 2 and "artist and track columns" in err and len(err.strip().splitlines()) == 1

    listeners = tmp_path / "listeners.jsonl"
    listeners.write_text('{"listener": "a", "ratings": {}}\n')
    code, err = run_script(
        monkeypatch, capsys, "recommend", "--model", str(model_dir), "--history", str(shop),
        "--listeners", str(listeners),
    )  # fmt: skip
    assert code == 2 and err.strip() == "error: give either --history or --listeners, not both"
