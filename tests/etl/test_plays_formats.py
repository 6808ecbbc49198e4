"""`etl plays`: datasets that already count plays, through the CLI into the ratings folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from songrec.app.cli import cli
from songrec.etl.plays_formats import ARTIST_LEVEL_TRACK
from songrec.etl.songs import song_id

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
HETREC = SHARED / "hetrec2011-lastfm-2k" / "user_artists.dat"


def _songrec(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from songrec.app.cli import main; main()", *args],
        capture_output=True,
        text=True,
    )


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_hetrec_layout_with_bad_rows(tmp_path):
    data = _write(
        tmp_path / "user_artists.dat",
        "userID\tartistID\tweight\r\n2\t1\t30\r\n2\t2\t5\r\n3\t1\t7\r\n3\t3\tabc\r\n4\t9\t2\r\n",
    )
    _write(
        tmp_path / "artists.dat",
        "id\tname\turl\tpictureURL\n1\tMALICE MIZER\tu\tp\n2\tDiary of Dreams\tu\tp\n"
        "3\tmalice  mizer\tu\tp\n",
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli, ["etl", "plays", str(data), "--format", "hetrec", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "etl_report.json").read_text())
    assert report["source_kind"] == "hetrec" and report["synthetic"] is False
    # Row "3 3 abc" has no numeric count; artist 9 has no name.
    assert report["rejected_by_reason"] == {"bad_artist_name": 1, "bad_plays": 1}
    plays = pd.read_parquet(out / "plays.parquet")
    mizer = song_id("MALICE MIZER", ARTIST_LEVEL_TRACK)
    assert dict(zip(plays.user_name + plays.song_id, plays.plays, strict=True)) == {
        "2" + mizer: 30,
        "2" + song_id("Diary of Dreams", ARTIST_LEVEL_TRACK): 5,
        "3" + mizer: 7,
    }
    ratings = pd.read_parquet(out / "ratings.parquet")
    assert sorted(ratings.rating) == [5, 7, 10]


def test_msd_triplets_with_and_without_names(tmp_path):
    trip = _write(tmp_path / "train_triplets.txt", "u1\tSOA\t3\nu1\tSOB\t12\nu2\tSOA\t1\n")
    names = _write(tmp_path / "unique_tracks.txt", "TR1<SEP>SOA<SEP>Artist A<SEP>Song A\n")
    out = tmp_path / "msd"
    args = ["etl", "plays", str(trip), "--format", "msd-triplets", "--out", str(out)]
    assert CliRunner().invoke(cli, [*args, "--names", str(names)]).exit_code == 0
    songs = pd.read_parquet(out / "songs.parquet").set_index("song_id")
    assert songs.loc[song_id("Artist A", "Song A"), "listeners"] == 2
    assert songs.loc[song_id("(unknown artist)", "SOB"), "raw_plays"] == 12


def test_lastfm_360k(tmp_path):
    tsv = _write(
        tmp_path / "usersha1-artmbid-artname-plays.tsv",
        "aaa\tmb1\tbetty blowtorch\t2137\naaa\tmb2\tdie Ärzte\t1099\n"
        "bbb\tmb1\tBetty Blowtorch\t3\n",
    )
    out = tmp_path / "lfm"
    res = CliRunner().invoke(
        cli, ["etl", "plays", str(tsv), "--format", "lastfm-360k", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    songs = pd.read_parquet(out / "songs.parquet")
    # Its MBIDs are artists', not recordings': songs carry none.
    assert songs.recording_mbid.isna().all()
    assert json.loads((out / "etl_report.json").read_text())["source_kind"] == "lastfm-360k"
    betty = songs[songs.song_id == song_id("Betty Blowtorch", ARTIST_LEVEL_TRACK)].iloc[0]
    assert betty.listeners == 2 and betty.plays == 13 and betty.raw_plays == 2140


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    missing = _songrec(
        "etl",
        "plays",
        str(tmp_path / "nope.dat"),
        "--format",
        "hetrec",
        "--out",
        str(tmp_path / "o"),
    )
    assert missing.returncode == 2
    assert "Traceback" not in missing.stderr and missing.stderr.count("\n") == 1
    garbage = _write(tmp_path / "user_artists.dat", "\x00\x01binary")
    result = _songrec(
        "etl", "plays", str(garbage), "--format", "hetrec", "--out", str(tmp_path / "o")
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ")
    assert not (tmp_path / "o").exists()


@pytest.mark.realdata
def test_real_hetrec_from_shared(tmp_path):
    out = tmp_path / "hetrec"
    result = CliRunner().invoke(
        cli, ["etl", "plays", str(HETREC), "--format", "hetrec", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "etl_report.json").read_text())
    assert report["listens_read"] == 92_834 and report["users"] == 1_892
    ratings = pd.read_parquet(out / "ratings.parquet")
    # The reference's finding: min(plays, 10) makes about 96.5% of HetRec ratings a 10.
    assert 0.95 < (ratings.rating == 10).mean() < 0.98
    assert (
        CliRunner()
        .invoke(cli, ["etl", "ratings", "--data", str(out), "--transform", "quantile"])
        .exit_code
        == 0
    )
    requantiled = pd.read_parquet(out / "ratings.parquet")
    assert (requantiled.rating == 10).mean() < 0.3
    assert json.loads((out / "etl_report.json").read_text())["transform"] == "quantile"
