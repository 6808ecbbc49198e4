"""A listener's history -> their ratings for one model, matched to its catalogue.

The listener's plays are turned into 1..10 ratings by the rating transform the model was
trained with (`etl.ratings.transform_ratings`, the ETL's own code), over the whole
history: the listener's own scale, as the ETL rated every training listener. Only then
are songs matched to the catalogue, so a song's rating does not depend on which other
songs the model happens to know.

The transform: a model records it as `params["ranking"]["transform"]` (the training
folder's etl_report.json; models.ranking.train). A model trained on a folder without a
report records "-"; such a model (or one naming a transform this songrec lacks) falls
back to the ETL's default, `etl.ratings.DEFAULT_TRANSFORM` ("cap"), and
`ImportedHistory.transform_note` says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from songrec.etl.history import History
from songrec.etl.ratings import DEFAULT_TRANSFORM, TRANSFORMS, transform_ratings
from songrec.models.artifact import TrainedModel
from songrec.models.errors import ModelError

# The user name the plays table carries (one listener: the transform's window is theirs).
HISTORY_USER = "you"
UNMATCHED_EXAMPLES = 5


@dataclass(frozen=True)
class ImportedHistory:
    """A history as ratings for one model.

    `entries`: (song_id, rating) of the songs in the catalogue, most played first, at most
    `limit` of them; `matched` counts all of them, `left_out` those past the limit.
    `unmatched_examples`: (artist, track) of the most played songs the model does not know.
    """

    entries: list[tuple[str, int]]
    matched: int
    unmatched: int
    unmatched_examples: list[tuple[str, str]]
    listens_read: int
    listens_kept: int
    rejected_by_reason: dict[str, int]
    format: str
    transform: str
    transform_note: str | None = None
    left_out: int = 0
    matched_plays: int = 0
    unmatched_plays: int = 0
    rejected_examples: dict[str, list[str]] = field(default_factory=dict)
    # Every matched song id, past the limit too: songs to leave out of recommendations.
    played: tuple[str, ...] = ()

    @property
    def songs(self) -> int:
        """Distinct songs of the history."""
        return self.matched + self.unmatched

    @property
    def listens_rejected(self) -> int:
        """Listens read but not kept (bad rows)."""
        return self.listens_read - self.listens_kept


def model_transform(model: TrainedModel) -> tuple[str, str | None]:
    """(the rating transform of `model`, a note when it is the default by fallback)."""
    ranking = model.params.get("ranking") if isinstance(model.params, dict) else None
    recorded = ranking.get("transform") if isinstance(ranking, dict) else None
    if isinstance(recorded, str) and recorded in TRANSFORMS:
        return recorded, None
    if recorded in (None, "-"):
        why = "the model does not record its rating transform"
    else:
        why = f"the model's rating transform {recorded!r} is unknown here"
    return DEFAULT_TRANSFORM, f"{why}: plays rated by the default, {DEFAULT_TRANSFORM!r}"


def history_ratings(history: History, transform: str) -> dict[str, int]:
    """Rating 1..10 of every song of the history under `transform` (the listener's scale)."""
    rated = transform_ratings(history.plays_table(HISTORY_USER), transform)
    return dict(
        zip(
            rated.column("song_id").to_pylist(),
            (int(r) for r in rated.column("rating").to_pylist()),
            strict=True,
        )
    )


def import_history(
    history: History,
    model: TrainedModel,
    limit: int | None = None,
    transform: str | None = None,
    examples: int = UNMATCHED_EXAMPLES,
) -> ImportedHistory:
    """The history's songs the model knows, rated as the model's training listeners were.

    `limit`: at most this many entries, the most played first (the page passes its list's
    size; None keeps every matched song). `transform`: overrides the model's own.
    """
    if limit is not None and limit < 0:
        raise ModelError(f"limit must be at least 0, got {limit}")
    note = None
    if transform is None:
        transform, note = model_transform(model)
    ratings = history_ratings(history, transform)
    matched, unmatched = [], []
    for song in history.plays:  # most played first
        (matched if model.has_song(song.song_id) else unmatched).append(song)
    kept = matched if limit is None else matched[:limit]
    return ImportedHistory(
        entries=[(song.song_id, ratings[song.song_id]) for song in kept],
        matched=len(matched),
        unmatched=len(unmatched),
        unmatched_examples=[(s.artist_name, s.track_name) for s in unmatched[:examples]],
        listens_read=history.listens_read,
        listens_kept=history.listens_kept,
        rejected_by_reason=dict(history.rejected_by_reason),
        format=history.format,
        transform=transform,
        transform_note=note,
        left_out=len(matched) - len(kept),
        matched_plays=sum(s.plays for s in matched),
        unmatched_plays=sum(s.plays for s in unmatched),
        rejected_examples=dict(history.rejected_examples),
        played=tuple(song.song_id for song in matched),
    )


def summary(imported: ImportedHistory) -> str:
    """One line: "history: 1,234 listens, 321 songs, 210 in the catalogue (111 not)"."""
    rejected = imported.listens_rejected
    listens = _count(imported.listens_kept, "listen")
    if rejected:
        reasons = ", ".join(f"{r} {n:,}" for r, n in imported.rejected_by_reason.items())
        listens += f" ({rejected:,} more rejected: {reasons})"
    line = (
        f"history: {listens}, {_count(imported.songs, 'song')}, "
        f"{imported.matched:,} in the catalogue ({imported.unmatched:,} not)"
    )
    if imported.left_out:
        line += f"; the {len(imported.entries):,} most played kept"
    return line


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'s' * (n != 1)}"
