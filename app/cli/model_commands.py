"""`songrec train / recommend / songs / similar`: thin wrappers over models/."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import click
import pandas as pd

from songrec.app.cli.options import data_option, model_option
from songrec.app.cli.progress import Bar, progress_bar
from songrec.app.playlist import FORMATS as PLAYLIST_FORMATS
from songrec.app.playlist import recommended_tracks, render
from songrec.etl.history import History, read_history_file
from songrec.models.artifact import load_model
from songrec.models.errors import ModelError
from songrec.models.history import import_history, summary
from songrec.models.recommend import MODES, RANK_BY, RecommendationResult
from songrec.models.recommender import Recommender
from songrec.models.search import search_songs
from songrec.models.train import DEFAULT_SEED, DEFAULT_TOP_SONGS, save_result, train

OUTPUT_FORMATS = ("text", "json", *PLAYLIST_FORMATS)
MODEL_OPTION = model_option()
JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


class StageBars:
    """One progress bar per training stage, fed by the core's progress callback."""

    NAMES = {
        "grid": "grid search",
        "holdout": "80/20 holdout",
        "final": "final SVD",
        "ranking": "ranking model",
    }

    def __init__(self) -> None:
        self.stage: str | None = None
        self.bar: Bar | None = None

    def __call__(self, stage: str, done: int, total: int, label: str) -> None:
        if stage != self.stage:
            self.close()
            unit = {"grid": "fit", "ranking": "SVD"}.get(stage, "epoch")
            self.bar = progress_bar(self.NAMES.get(stage, stage), total=total, unit=unit)
            self.stage = stage
        self.bar.set_postfix_str(label[:60], refresh=False)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


@click.command("train")
@data_option("Ratings folder written by `songrec etl` (ratings.parquet, songs.parquet).")
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
    save_result(result, out_dir, force)
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
    click.echo(f"rating model (predicted ratings): SVD {best}")
    why = why_svd(result.results, report["cv"]["rmse"])
    if why:
        click.echo(why)
    holdout = report["holdout"]
    click.echo(f"  80/20 holdout: RMSE {holdout['rmse']:.4f}, MAE {holdout['mae']:.4f}")
    click.echo(ranking_summary(report["ranking"]))
    size = sum(f.stat().st_size for f in out_dir.iterdir()) / 2**20
    click.echo(f"model saved to {out_dir} ({size:.1f} MB, {report['train_seconds']} s)")


def why_svd(results: pd.DataFrame, svd_rmse: float) -> str | None:
    """Why the SVD is the rating model when another algorithm of the grid has a lower RMSE
    (None when the SVD has the lowest)."""
    ok = results[results["status"] == "ok"]
    if ok.empty:
        return None
    winner = ok.loc[ok["rmse"].idxmin()]
    if winner["algorithm"] == "SVD":
        return None
    return (
        f"  {winner['algorithm']} has a lower RMSE ({winner['rmse']:.4f}; the best SVD's is "
        f"{svd_rmse:.4f}), but the SVD is kept:\n"
        "    a new listener is folded into its item factors in an instant, with no refit, "
        "and it is the reference's model;\n"
        "    it only predicts the rating shown beside each song: the order of every list "
        "comes from the ranking model below (unless --rank-by rating)"
    )


def ranking_summary(ranking: dict) -> str:
    """Lines on the ranking model: its validated parameters and which transform ranks best."""
    entries = "binary (played or not)" if ranking["gamma"] == 0 else f"rating^{ranking['gamma']}"
    ndcg = ranking["validation_ndcg"]
    validated = (
        f"validation NDCG@10 {ndcg}"
        if ndcg is not None
        else "not validated (too few listeners: the defaults)"
    )
    lines = [
        f"ranking model (the order of every list): truncated SVD, k={ranking['k']}, "
        f"entries {entries}, alpha {ranking['alpha']}, beta {ranking['beta']}, "
        f"shrink {ranking['shrink']}; {validated}"
    ]
    by_transform = ranking.get("transform_ndcg") or {}
    if len(by_transform) > 1:
        listed = ", ".join(f"{name} {value:.4f}" for name, value in by_transform.items())
        lines.append(f"  validation NDCG@10 by rating transform: {listed}")
        lines.append(f"  ranks best: {ranking['best_transform']}")
    return "\n".join(lines)


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


def read_listeners(path: Path) -> Iterator[tuple[str, list[tuple[str, object]]]]:
    """(listener, ratings) per line of a JSON-lines file; ModelError names a bad line."""
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                listener, ratings = entry["listener"], entry["ratings"]
                if not isinstance(ratings, dict) or not isinstance(listener, str):
                    raise TypeError
            except (ValueError, KeyError, TypeError):
                raise ModelError(
                    f"{path}:{number}: expected "
                    '{"listener": "NAME", "ratings": {"SONG_ID": RATING, ...}}'
                ) from None
            yield listener, list(ratings.items())


def history_then_rates(
    recommender: Recommender, history: History, rated: list[tuple[str, int]]
) -> list[tuple[str, int]]:
    """The history's ratings of the model's songs (every one), then --rate's, which win
    for the same song; the history's summary line goes to stderr."""
    imported = import_history(history, recommender.model)
    click.echo(summary(imported), err=True)
    if imported.transform_note:
        click.echo(f"history: {imported.transform_note}", err=True)
    return [*imported.entries, *rated]


def popular_text(result: RecommendationResult, songs: pd.DataFrame) -> str:
    """The no-ratings list, labelled as such, with each song's plays (its order): a rating
    predicted for nobody in particular would only look like a score."""
    counts = songs.set_index("song_id")
    lines = ["most popular (no ratings given): by plays, each listener's counted up to 10"]
    for rank, item in enumerate(result.items, 1):
        song = counts.loc[item.song_id]
        heard = f", {song['listeners']:,} listeners" if "listeners" in counts.columns else ""
        lines.append(
            f"{rank:>3}. {item.artist_name} – {item.track_name}  {song['plays']:,} plays{heard}"
        )
        lines.append(f"     {item.song_id}")
    return "\n".join(lines)


def result_json(result: RecommendationResult) -> list[dict]:
    """The list as JSON-ready rows (the fields of --json)."""
    return [{"rank": rank, **asdict(item)} for rank, item in enumerate(result.items, 1)]


@click.command("recommend")
@MODEL_OPTION
@click.option("--rate", "rates", multiple=True, metavar="SONG_ID=RATING", help="Repeatable.")
@click.option(
    "--listeners",
    "listeners_file",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help='JSON lines {"listener": ..., "ratings": {SONG_ID: RATING}}: one JSON line out each.',
)
@click.option(
    "--history",
    "history_file",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="Your listening history: a ListenBrainz export (.zip/.jsonl/.json) or a Last.fm "
    "scrobbles CSV; plays are rated with the model's transform (--rate wins for a song).",
)
@click.option("--top", default=10, show_default=True, type=click.IntRange(1))
@click.option(
    "--mode",
    type=click.Choice(MODES),
    default="foldin",
    show_default=True,
    help="foldin: instant; retrain: recompute the model with you added (exact).",
)
@click.option(
    "--rank-by",
    type=click.Choice(RANK_BY),
    default="taste",
    show_default=True,
    help="taste: the ranking model; rating: the reference's order by predicted rating "
    "(kept for fidelity; it finds few of your songs, see README).",
)
@click.option("--seed", type=int, help="Seed of a Surprise refit (default: the model's).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(OUTPUT_FORMATS),
    default="text",
    show_default=True,
    help="json: the fields of each song; jspf / csv: the recommendations as a playlist "
    "(JSPF is what ListenBrainz imports).",
)
@JSON_OPTION
def recommend_command(
    model_dir: Path,
    rates: tuple[str, ...],
    listeners_file: Path | None,
    history_file: Path | None,
    top: int,
    mode: str,
    rank_by: str,
    seed: int | None,
    fmt: str,
    as_json: bool,
) -> None:
    """Top songs for a listener who rated a few songs (1..10) or gave their history, or
    for a file of listeners."""
    if as_json:
        fmt = "json"  # --json is --format json
    as_json = fmt == "json"
    rated = [parse_rating(text) for text in rates]
    if listeners_file is not None and fmt in PLAYLIST_FORMATS:
        raise ModelError(f"--format {fmt} makes one playlist: not with --listeners")
    if listeners_file is not None and rated:
        raise ModelError("give either --rate or --listeners, not both")
    if listeners_file is not None and history_file is not None:
        raise ModelError("give either --history or --listeners, not both")
    # The history is read first: a bad file fails before the model is loaded.
    history = read_history_file(history_file) if history_file is not None else None
    recommender = Recommender.load(model_dir)
    if history is not None:
        rated = history_then_rates(recommender, history, rated)
    if listeners_file is not None:
        for listener, ratings in read_listeners(listeners_file):
            result = recommender.recommend(ratings, top, mode, rank_by, seed=seed)
            line = {"listener": listener, "items": result_json(result)}
            if result.fallback:
                line["fallback"] = result.fallback
            click.echo(json.dumps(line, ensure_ascii=False))
        return
    slow = mode == "retrain" and rank_by == "rating"
    bar = progress_bar("retrain", unit="epoch", disable=not slow or as_json)
    with bar:

        def progress(epoch: int, total: int) -> None:
            bar.total = total
            bar.update(epoch - bar.n)

        result = recommender.recommend(rated, top, mode, rank_by, progress=progress, seed=seed)
    popular = result.mode == "popular"  # no ratings: the most played songs
    if result.fallback and (fmt != "text" or not popular):
        click.echo(result.fallback, err=True)
    if fmt in PLAYLIST_FORMATS:
        tracks = recommended_tracks(result.items, recommender.model)
        click.echo(render(tracks, fmt, title="songrec recommendations"), nl=fmt == "jspf")
        return
    if as_json:
        click.echo(json.dumps(result_json(result), ensure_ascii=False))
        return
    if popular:
        click.echo(popular_text(result, recommender.model.songs))
        return
    if rank_by == "rating":
        click.echo("ordered by predicted rating (the reference's order)", err=True)
    for rank, item in enumerate(result.items, 1):
        reason = f" · {item.because}" if item.because else ""
        click.echo(
            f"{rank:>3}. {item.artist_name} – {item.track_name}  "
            f"you'd rate it about {item.predicted_rating:.0f}{reason}"
        )
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
@click.option("--song", "song_id", help="Song id: the nearest songs in the ranking space.")
@click.option("--artist", "artist_name", help="Artist name: the nearest artists.")
@click.option("--top", default=10, show_default=True, type=click.IntRange(1))
@JSON_OPTION
def similar_command(
    model_dir: Path, song_id: str | None, artist_name: str | None, top: int, as_json: bool
) -> None:
    """Songs like a song, or artists like an artist."""
    if (song_id is None) == (artist_name is None):
        raise ModelError("give exactly one of --song SONG_ID or --artist NAME")
    recommender = Recommender.load(model_dir)
    if song_id is not None:
        items = recommender.similar_songs(song_id, top)
        lines = [
            f"{i.song_id}  {i.artist_name} – {i.track_name}  {i.similarity:.3f}" for i in items
        ]
    else:
        items = recommender.similar_artists(artist_name, top)
        lines = [
            f"{i.artist_name}  {i.similarity:.3f}  ({i.songs} song{'s' * (i.songs != 1)})"
            for i in items
        ]
    if as_json:
        click.echo(json.dumps([asdict(item) for item in items], ensure_ascii=False))
        return
    for line in lines:
        click.echo(line)


COMMANDS = [train_command, recommend_command, songs_command, similar_command]
