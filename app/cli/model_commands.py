"""`songrec train / recommend / songs / similar`: thin wrappers over models/."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import click
from tqdm import tqdm

from models.artifact import load_model, save_model
from models.errors import ModelError
from models.recommend import MODES, recommend
from models.similar import search_songs, similar_artists, similar_songs
from models.train import DEFAULT_SEED, DEFAULT_TOP_SONGS, GSCV_FILE, train

MODEL_OPTION = click.option(
    "--model",
    "model_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Model folder written by `songrec train`.",
)
JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


class StageBars:
    """One tqdm bar per training stage, fed by the core's progress callback."""

    NAMES = {"grid": "grid search", "holdout": "80/20 holdout", "final": "final SVD"}

    def __init__(self) -> None:
        self.stage: str | None = None
        self.bar: tqdm | None = None

    def __call__(self, stage: str, done: int, total: int, label: str) -> None:
        if stage != self.stage:
            self.close()
            unit = "fit" if stage == "grid" else "epoch"
            self.bar = tqdm(total=total, desc=self.NAMES.get(stage, stage), unit=unit)
            self.stage = stage
        self.bar.set_postfix_str(label[:60], refresh=False)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


@click.command("train")
@click.option("--data", "data_dir", required=True, type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path))
@click.option("--top-songs", default=DEFAULT_TOP_SONGS, show_default=True, type=click.IntRange(1))
@click.option(
    "--grid", default="quick", show_default=True, help="quick, full, or a JSON/YAML grid file."
)
@click.option("--folds", type=click.IntRange(2), help="Cross-validation folds (grid's default).")
@click.option(
    "--jobs",
    default=os.cpu_count() or 1,
    show_default=True,
    type=click.IntRange(1),
    help="Folds fitted in parallel.",
)
@click.option("--seed", default=DEFAULT_SEED, show_default=True, type=int)
@click.option("--force", is_flag=True, help="Replace an existing model folder.")
def train_command(
    data_dir: Path,
    out_dir: Path,
    top_songs: int,
    grid: str,
    folds: int | None,
    jobs: int,
    seed: int,
    force: bool,
) -> None:
    """Grid-search Surprise algorithms on the same folds; save the best SVD."""
    if out_dir.exists() and not force:
        raise ModelError(f"{out_dir} already exists; pass --force to replace it")
    bars = StageBars()
    try:
        result = train(data_dir, top_songs, grid, folds, jobs, seed, progress=bars)
    finally:
        bars.close()
    csv = result.results.to_csv(index=False).encode()
    save_model(
        result.model,
        out_dir,
        ratings=result.ratings,
        extra_files={GSCV_FILE: csv},
        fingerprint=result.fingerprint,
        force=force,
    )
    report = result.report
    trim = report["trim"]
    click.echo(
        f"kept top {trim['songs_kept']:,} songs: {trim['users_kept']:,} of "
        f"{trim['users_before']:,} users, {trim['ratings_kept']:,} of "
        f"{trim['ratings_before']:,} ratings ({100 * trim['density']:.2f}% dense)"
    )
    first = result.results.iloc[0]
    click.echo(
        f"grid {report['grid']}: {report['folds']} folds of {first['ratings']:,} ratings, "
        f"{first['data']} ({report['grid_seconds']} s)"
    )
    for row in result.results.itertuples():
        if row.status == "ok":
            click.echo(
                f"  {row.algorithm:<16} RMSE {row.rmse:.4f}  MAE {row.mae:.4f}  {row.params}"
            )
        else:
            click.echo(f"  {row.algorithm:<16} {row.status}: {row.note}  {row.params}")
    best = {k: report[k] for k in ("n_factors", "reg_all", "lr_all", "n_epochs")}
    click.echo(f"best SVD: {best}")
    holdout = report["holdout"]
    click.echo(f"80/20 holdout: RMSE {holdout['rmse']:.4f}, MAE {holdout['mae']:.4f}")
    size = sum(f.stat().st_size for f in out_dir.iterdir()) / 2**20
    click.echo(f"model saved to {out_dir} ({size:.1f} MB, {report['train_seconds']} s)")


def parse_rating(text: str) -> tuple[str, int]:
    """SONG_ID=RATING -> (song_id, rating); ModelError on bad syntax."""
    song_id, sep, value = text.partition("=")
    song_id, value = song_id.strip(), value.strip()
    if not sep or not song_id or not value:
        raise ModelError(f"--rate {text!r}: expected SONG_ID=RATING, e.g. 0123456789abcdef=8")
    try:
        return song_id, int(value)
    except ValueError:
        raise ModelError(f"--rate {text!r}: rating {value!r} is not a whole number 1..10") from None


@click.command("recommend")
@MODEL_OPTION
@click.option("--rate", "rates", multiple=True, metavar="SONG_ID=RATING", help="Repeatable.")
@click.option("--top", default=10, show_default=True, type=click.IntRange(1))
@click.option("--mode", type=click.Choice(MODES), default="foldin", show_default=True)
@click.option("--seed", type=int, help="Seed of the retrain mode (default: the model's).")
@JSON_OPTION
def recommend_command(
    model_dir: Path, rates: tuple[str, ...], top: int, mode: str, seed: int | None, as_json: bool
) -> None:
    """Top songs for a listener who rated a few songs (1..10)."""
    rated = [parse_rating(text) for text in rates]
    model = load_model(model_dir)
    bar = tqdm(desc="retrain", unit="epoch", disable=mode != "retrain" or as_json)
    with bar:

        def progress(epoch: int, total: int) -> None:
            bar.total = total
            bar.update(epoch - bar.n)

        result = recommend(model, rated, top, mode, progress=progress, seed=seed)
    if result.fallback:
        click.echo(result.fallback, err=True)
    if as_json:
        click.echo(json.dumps([asdict(item) for item in result.items], ensure_ascii=False))
        return
    for rank, item in enumerate(result.items, 1):
        reason = f"  ({item.because})" if item.because else ""
        click.echo(f"{rank:>3}. {item.artist_name} – {item.track_name}  {item.score:.2f}{reason}")
        click.echo(f"     {item.song_id}")


@click.command("songs")
@MODEL_OPTION
@click.option("--search", "text", required=True, help="Words of the artist or track name.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1))
@JSON_OPTION
def songs_command(model_dir: Path, text: str, limit: int, as_json: bool) -> None:
    """Find song ids by artist or track name."""
    found = search_songs(load_model(model_dir), text, limit)
    if as_json:
        click.echo(found.to_json(orient="records", force_ascii=False))
        return
    if found.empty:
        click.echo(f"no song matches {text!r}", err=True)
    for row in found.itertuples():
        click.echo(f"{row.song_id}  {row.artist_name} – {row.track_name}  ({row.plays:,} plays)")


@click.command("similar")
@MODEL_OPTION
@click.option("--song", "song_id", help="Song id: the nearest songs by item factors.")
@click.option("--artist", "artist_name", help="Artist name: the nearest artists.")
@click.option("--top", default=10, show_default=True, type=click.IntRange(1))
@JSON_OPTION
def similar_command(
    model_dir: Path, song_id: str | None, artist_name: str | None, top: int, as_json: bool
) -> None:
    """Songs like a song, or artists like an artist."""
    if (song_id is None) == (artist_name is None):
        raise ModelError("give exactly one of --song SONG_ID or --artist NAME")
    model = load_model(model_dir)
    if song_id is not None:
        items = similar_songs(model, song_id, top)
        lines = [
            f"{i.song_id}  {i.artist_name} – {i.track_name}  {i.similarity:.3f}" for i in items
        ]
    else:
        items = similar_artists(model, artist_name, top)
        lines = [f"{i.artist_name}  {i.similarity:.3f}  ({i.songs} songs)" for i in items]
    if as_json:
        click.echo(json.dumps([asdict(item) for item in items], ensure_ascii=False))
        return
    for line in lines:
        click.echo(line)


COMMANDS = [train_command, recommend_command, songs_command, similar_command]
