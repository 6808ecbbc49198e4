"""`songrec train / recommend / songs / similar` through the real CLI, on tiny data."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from songrec.app.cli import cli
from songrec.app.cli.errors import run_cli

GRID = {"folds": 2, "algorithms": {"BaselineOnly": {}, "SVD": {"n_factors": [6], "n_epochs": [25]}}}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """Two taste groups of listeners, each rating its own songs high, as a ratings folder."""
    rng = np.random.default_rng(1)
    songs = [f"{i:016x}" for i in range(1000, 1040)]
    rows = []
    for u in range(40):
        group = u % 2
        for s in rng.choice(20, 10, replace=False):
            rows.append((f"u{u:02d}", songs[group * 20 + s], int(rng.integers(7, 11))))
        for s in rng.choice(20, 4, replace=False):
            rows.append((f"u{u:02d}", songs[(1 - group) * 20 + s], int(rng.integers(1, 4))))
    ratings = pd.DataFrame(rows, columns=["user_name", "song_id", "rating"])
    table = pd.DataFrame(
        {
            "song_id": songs,
            "artist_name": [f"Band {'AB'[i // 20]}{i % 4}" for i in range(40)],
            "track_name": [f"Song {i}" for i in range(40)],
            "plays": np.arange(40, 0, -1, dtype="int64"),
        }
    )
    folder = tmp_path_factory.mktemp("cli") / "data"
    folder.mkdir()
    ratings.to_parquet(folder / "ratings.parquet")
    table.to_parquet(folder / "songs.parquet")
    (folder.parent / "grid.json").write_text(json.dumps(GRID))
    return folder


@pytest.fixture(scope="module")
def model_dir(data_dir):
    out = data_dir.parent / "model"
    grid = str(data_dir.parent / "grid.json")
    args = ["train", "--data", str(data_dir), "--out", str(out), "--grid", grid, "--jobs", "1"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "rating model (predicted ratings): SVD" in result.output
    assert "80/20 holdout: RMSE" in result.output and "BaselineOnly" in result.output
    assert "ranking model (the order of every list): truncated SVD" in result.output
    # Off a terminal each stage's progress is one line (tqdm drew the last one twice).
    stages = [line.split(":")[0] for line in result.stderr.splitlines()]
    assert stages == ["grid search", "80/20 holdout", "final SVD", "ranking model"]
    assert "\r" not in result.stderr and all("100%" in line for line in result.stderr.splitlines())
    # The SVD is explained only when another algorithm beats it.
    results = pd.read_csv(out / "gscv_results.csv")
    svd_best = results.sort_values("rmse")["algorithm"].iloc[0] == "SVD"
    assert ("but the SVD is kept" in result.output) != svd_best
    return out


def songrec(*args: str) -> tuple[int, str, str]:
    """Run the CLI as the console script does; (exit code, stdout, stderr)."""
    runner = CliRunner()
    result = runner.invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def run_script(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    """The console script's path (run_cli): exit code and stderr."""
    monkeypatch.setattr(sys, "argv", ["songrec", *args])
    code = run_cli(cli)
    return code, capsys.readouterr().err


def test_train_writes_the_model_folder(model_dir):
    names = {p.name for p in model_dir.iterdir()}
    assert {"manifest.json", "item_factors.npy", "gscv_results.csv", "ratings.parquet"} <= names
    assert {"rank_vectors.npy", "rank_listeners.npy", "rank_validation.csv"} <= names
    results = pd.read_csv(model_dir / "gscv_results.csv")
    assert set(results["algorithm"]) == {"BaselineOnly", "SVD"}
    curve = pd.read_csv(model_dir / "rank_validation.csv")
    assert {"gamma", "alpha", "beta", "k", "shrink", "ndcg"} <= set(curve.columns)
    assert len(curve) > 10 and curve["ndcg"].between(0, 1).all()


def test_recommend_json_follows_taste(model_dir):
    rates = [f"--rate={1000 + i:016x}=10" for i in (21, 22, 25)]  # group B songs
    code, out, _ = songrec("recommend", "--model", str(model_dir), *rates, "--top", "5", "--json")
    assert code == 0
    items = json.loads(out)
    assert len(items) == 5
    fields = {"rank", "song_id", "artist_name", "track_name", "predicted_rating", "because"}
    assert set(items[0]) == fields | {"because_song_id"}
    assert [i["rank"] for i in items] == [1, 2, 3, 4, 5]
    assert sum(item["artist_name"].startswith("Band B") for item in items) >= 4
    assert all(item["because"].startswith("because you rated Band B") for item in items)
    assert all(item["because_song_id"] in {r.split("=")[1] for r in rates} for item in items)
    assert all("who play it also play this)" in item["because"] for item in items)


def test_recommend_as_a_playlist(model_dir):
    rates = [f"--rate={1000 + i:016x}=10" for i in (21, 22, 25)]
    base = ["recommend", "--model", str(model_dir), *rates, "--top", "5"]
    _, as_json, _ = songrec(*base, "--json")
    code, jspf, _ = songrec(*base, "--format", "jspf")
    assert code == 0
    tracks = json.loads(jspf)["playlist"]["track"]
    assert [(t["creator"], t["title"]) for t in tracks] == [
        (i["artist_name"], i["track_name"]) for i in json.loads(as_json)
    ]
    code, text, _ = songrec(*base, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert code == 0 and [r["song_id"] for r in rows] == [i["song_id"] for i in json.loads(as_json)]
    assert songrec(*base, "--format", "json")[1] == as_json


def test_recommend_rank_by_rating_is_labelled(model_dir):
    rates = [f"--rate={1000 + i:016x}=10" for i in (21, 22, 25)]
    code, out, err = songrec(
        "recommend", "--model", str(model_dir), *rates, "--top", "5", "--rank-by", "rating"
    )
    assert code == 0 and "ordered by predicted rating" in err
    assert out.count("you'd rate it about") == 5


def test_recommend_listeners_batch_matches_one_at_a_time(model_dir, tmp_path, monkeypatch, capsys):
    lines = [
        {"listener": "b-fan", "ratings": {f"{1000 + 21:016x}": 10, f"{1000 + 22:016x}": 9}},
        {"listener": "a-fan", "ratings": {f"{1000 + 2:016x}": 10, f"{1000 + 30:016x}": 2}},
        {"listener": "nobody", "ratings": {}},
    ]
    path = tmp_path / "listeners.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    code, out, _ = songrec("recommend", "--model", str(model_dir), "--listeners", str(path))
    assert code == 0
    answers = [json.loads(line) for line in out.strip().splitlines()]
    assert [a["listener"] for a in answers] == ["b-fan", "a-fan", "nobody"]
    for line, answer in zip(lines[:2], answers[:2], strict=True):
        rates = [f"--rate={sid}={rating}" for sid, rating in line["ratings"].items()]
        _, single, _ = songrec("recommend", "--model", str(model_dir), *rates, "--json")
        assert answer["items"] == json.loads(single)
    assert "most popular" in answers[2]["fallback"]
    path.write_text('{"listener": "x", "ratings": [1, 2]}\n')
    args = ("recommend", "--model", str(model_dir), "--listeners", str(path))
    code, err = run_script(monkeypatch, capsys, *args)
    assert code == 2 and "listeners.jsonl:1: expected" in err and len(err.splitlines()) == 1


def test_recommend_text_retrain_and_empty(model_dir):
    song = f"{1000 + 3:016x}"
    code, out, _ = songrec(
        "recommend", "--model", str(model_dir), "--rate", f"{song}=9", "--mode", "retrain"
    )
    assert code == 0 and out.count("because you rated") == 10
    code, out, _ = songrec(
        "recommend",
        "--model",
        str(model_dir),
        "--rate",
        f"{song}=9",
        "--mode",
        "retrain",
        "--rank-by",
        "rating",
    )
    assert code == 0 and out.count("because you rated") == 10


def test_recommend_without_ratings_is_the_labelled_popular_list(model_dir):
    code, out, err = songrec("recommend", "--model", str(model_dir), "--top", "4")
    assert code == 0 and err == ""
    header, *rows = out.strip().splitlines()
    assert header.startswith("most popular (no ratings given): by plays")
    assert len(rows) == 8 and "you'd rate it about" not in out
    # In popularity order: the fixture's songs have plays 40, 39, ... (song 1000 first).
    plays = [int(line.rsplit("  ", 1)[1].split()[0].replace(",", "")) for line in rows[::2]]
    assert plays == sorted(plays, reverse=True) == [40, 39, 38, 37]
    assert [line.strip() for line in rows[1::2]] == [f"{1000 + i:016x}" for i in range(4)]
    # JSON keeps its fields and says on stderr that this is the popular list.
    code, out, err = songrec("recommend", "--model", str(model_dir), "--top", "4", "--json")
    assert code == 0 and "most popular" in err and len(json.loads(out)) == 4


def test_songs_and_similar(model_dir):
    code, out, _ = songrec("songs", "--model", str(model_dir), "--search", "band a1")
    assert code == 0 and len(out.strip().splitlines()) == 5
    assert all("Band A1" in line for line in out.strip().splitlines())
    song = out.split()[0]
    code, out, _ = songrec("similar", "--model", str(model_dir), "--song", song, "--json")
    assert code == 0 and len(json.loads(out)) == 10
    code, out, _ = songrec(
        "similar", "--model", str(model_dir), "--artist", "Band A1", "--top", "3"
    )
    assert code == 0 and len(out.strip().splitlines()) == 3
    assert sum(line.startswith("Band A") for line in out.splitlines()) >= 2


# Every command that reads a model, with what else it needs to answer.
MODEL_COMMANDS = {
    "recommend": ["--top", "3"],
    "songs": ["--search", "band a1"],
    "similar": ["--artist", "Band A1"],
}


def test_model_commands_are_all_checked_here():
    with_model = {
        name
        for name, command in cli.commands.items()
        if any(p.name == "model_dir" for p in command.params)
    }
    # graphs' --model picks what to chart (with --data, --evaluation): it has no default.
    assert with_model == set(MODEL_COMMANDS) | {"app", "graphs"}


def test_app_defaults_to_dot_songrec_model(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no model here: the command stops before serving
    monkeypatch.delenv("SONGREC_MODEL", raising=False)
    code, err = run_script(monkeypatch, capsys, "app")
    assert code == 2 and err.startswith("error: no model at .songrec/model: run `make demo`")
    monkeypatch.setenv("SONGREC_MODEL", str(tmp_path / "elsewhere"))
    code, err = run_script(monkeypatch, capsys, "app")
    assert code == 2 and err.startswith(f"error: no model at {tmp_path / 'elsewhere'}: run ")


@pytest.mark.parametrize("name", sorted(MODEL_COMMANDS))
def test_model_defaults_to_songrec_model_then_dot_songrec(
    name, model_dir, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SONGREC_MODEL", raising=False)
    args = MODEL_COMMANDS[name]
    code, err = run_script(monkeypatch, capsys, name, *args)
    assert code == 2 and err.splitlines() == [
        "error: no model at .songrec/model: run `make demo` or "
        "`songrec train --data DATA_FOLDER --out .songrec/model`"
    ]
    explicit = songrec(name, "--model", str(model_dir), *args)
    assert explicit[0] == 0 and explicit[1]
    # $SONGREC_MODEL, as the page reads it ...
    monkeypatch.setenv("SONGREC_MODEL", str(model_dir))
    assert songrec(name, *args) == explicit
    # ... else .songrec/model, where `make demo` trains it.
    monkeypatch.delenv("SONGREC_MODEL")
    (tmp_path / ".songrec").mkdir()
    (tmp_path / ".songrec" / "model").symlink_to(model_dir)
    assert songrec(name, *args) == explicit


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "abc"], "expected SONG_ID=RATING"),
        (["--rate", "00000000000003e8=ten"], "is not a whole number"),
        (["--rate", "00000000000003e8=11"], "outside 1..10"),
        (["--rate", "ffffffffffffffff=5"], "unknown song id"),
    ],
)
def test_recommend_errors_are_one_line_exit_2(model_dir, monkeypatch, capsys, args, message):
    code, err = run_script(monkeypatch, capsys, "recommend", "--model", str(model_dir), *args)
    assert code == 2 and err.startswith("error: ") and message in err
    assert len(err.strip().splitlines()) == 1
    assert songrec("recommend", "--model", str(model_dir), *args)[0] != 0


def test_model_folder_errors(model_dir, tmp_path, monkeypatch, capsys):
    code, err = run_script(
        monkeypatch, capsys, "songs", "--model", str(tmp_path / "x"), "--search", "a"
    )
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith(f"error: no model at {tmp_path / 'x'}: run `songrec train ")
    import shutil

    copy = shutil.copytree(model_dir, tmp_path / "m")
    with open(copy / "item_factors.npy", "r+b") as handle:
        handle.seek(-3, 2)
        handle.write(b"\x00\x01\x02")
    code, err = run_script(
        monkeypatch, capsys, "similar", "--model", str(copy), "--artist", "Band A1"
    )
    assert code == 2 and "checksum mismatch for item_factors.npy" in err
    code, err = run_script(monkeypatch, capsys, "similar", "--model", str(model_dir))
    assert code == 2 and "exactly one of --song" in err


def test_train_says_why_the_svd_is_kept_when_another_algorithm_has_a_lower_rmse(data_dir, tmp_path):
    # An SVD that cannot learn (learning rate 0) from factors far off (init_mean 5) against
    # BaselineOnly: the table shows BaselineOnly first, and the summary must say why the
    # SVD is kept all the same.
    grid = tmp_path / "grid.json"
    svd = {"n_factors": [2], "n_epochs": [1], "lr_all": [0.0], "init_mean": [5.0]}
    grid.write_text(json.dumps({"folds": 2, "algorithms": {"BaselineOnly": {}, "SVD": svd}}))
    args = ["--data", str(data_dir), "--grid", str(grid), "--jobs", "1"]
    result = CliRunner().invoke(cli, ["train", *args, "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    table = [line.split() for line in result.stdout.splitlines() if " RMSE " in line]
    assert [row[0] for row in table[:2]] == ["BaselineOnly", "SVD"]
    lines = result.stdout.splitlines()
    at = lines.index(next(line for line in lines if line.startswith("rating model")))
    why = lines[at + 1 : at + 4]
    assert why[0] == (
        f"  BaselineOnly has a lower RMSE ({table[0][2]}; the best SVD's is {table[1][2]}), "
        "but the SVD is kept:"
    )
    assert "folded into its item factors" in why[1] and "reference's model" in why[1]
    assert "the order of every list comes from the ranking model" in why[2]
    assert lines[at + 4].startswith("  80/20 holdout")


def test_train_refuses_an_existing_folder_without_force(model_dir, data_dir, monkeypatch, capsys):
    code, err = run_script(
        monkeypatch, capsys, "train", "--data", str(data_dir), "--out", str(model_dir)
    )
    assert code == 2 and "already exists; pass --force" in err
    code, err = run_script(
        monkeypatch,
        capsys,
        "train",
        "--data",
        str(data_dir / "nope"),
        "--out",
        str(data_dir.parent / "new"),
    )
    assert code == 2 and "does not exist" in err


@pytest.mark.realdata
def test_a_real_spark_dump_gives_a_playlist_with_its_musicbrainz_ids(tmp_path):
    """Two real listeners (too few to validate the ranking): trains, and the JSPF carries the
    recordings' MusicBrainz ids the dump holds."""
    dump = Path(__file__).resolve().parents[2].parent / "shared/data/listenbrainz-samples"
    data, model = tmp_path / "data", tmp_path / "model"
    assert songrec("etl", "dump", str(dump / "spark-full-dump"), "--out", str(data))[0] == 0
    code, out, err = songrec("train", "--data", str(data), "--out", str(model), "--grid", "quick")
    assert code == 0, err
    assert "not validated (too few listeners" in out
    code, jspf, _ = songrec("recommend", "--model", str(model), "--format", "jspf")
    assert code == 0
    songs = pd.read_parquet(data / "songs.parquet").set_index("song_id")
    for track in json.loads(jspf)["playlist"]["track"]:
        song_id = track["extension"]["urn:songrec:track"]["song_id"]
        mbid = songs.loc[song_id, "recording_mbid"]
        expected = [f"https://musicbrainz.org/recording/{mbid}"] if isinstance(mbid, str) else None
        assert track.get("identifier") == expected
