"""Driving the page in AppTest as a visitor would: open it, add songs, read what it shows."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import pandas as pd
from streamlit.testing.v1 import AppTest

from songrec.app.page import session

APP = str(Path(__file__).resolve().parents[2] / "app" / "streamlit_app.py")


def open_page(token: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    if token is not None:
        at.session_state[session.TOKEN] = token
    at.run()
    assert not at.exception
    return at


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def add_song(at: AppTest, artist: str, song_id: str, rating: int) -> None:
    at.selectbox(key="artist").set_value(artist).run()
    at.selectbox(key="song").set_value(song_id)
    at.slider(key="rating").set_value(rating)
    button(at, "Add to list").click().run()
    assert not at.exception


def listed(at: AppTest) -> dict[str, int]:
    """{song_id: rating} as the list table shows it."""
    editors = at.data_editor
    if len(editors) == 0:
        return {}
    frame = editors[0].value
    return dict(zip(frame.index, frame["rating"].astype(int), strict=True))


ROW = re.compile(r"\*\*(\d+)\. (.*) – (.*)\*\*  \n", re.S)


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def recommended(at: AppTest, prefix: str = "rec") -> pd.DataFrame:
    """The recommendation rows as the browser shows them (Markdown escapes resolved)."""
    ids = [
        f.key.removeprefix(f"{prefix}_rate_")
        for f in at.feedback
        if (f.key or "").startswith(f"{prefix}_rate_")
    ]
    heads = [ROW.match(m.value) for m in at.markdown]
    heads = [h for h in heads if h]
    if prefix == "more":
        heads = heads[len(heads) - len(ids) :]
    details = [c.value for c in at.caption if c.value.startswith(("you'd rate", "similarity"))]
    if prefix == "more":
        details = details[len(details) - len(ids) :]
    return pd.DataFrame(
        {
            "song_id": ids,
            "rank": [int(h.group(1)) for h in heads[: len(ids)]],
            "artist": [_unescape(h.group(2)) for h in heads[: len(ids)]],
            "song": [_unescape(h.group(3)) for h in heads[: len(ids)]],
            "why": [_unescape(d.split(" · ", 1)[-1]) for d in details[: len(ids)]],
        }
    )


def songs_of(model, artist: str) -> list[str]:
    return model.songs.loc[model.songs["artist_name"] == artist, "song_id"].tolist()


def export_lines(model, plays: dict[int, int]) -> bytes:
    """ListenBrainz export lines: song row -> how many listens."""
    lines = []
    for row, times in plays.items():
        for n in range(times):
            listen = {
                "listened_at": 1_700_000_000 + 60 * len(lines) + n,
                "track_metadata": {
                    "artist_name": str(model.artist_names[row]),
                    "track_name": str(model.track_names[row]),
                },
            }
            lines.append(json.dumps(listen))
    return ("\n".join(lines) + "\n").encode()


def export_zip(lines: bytes) -> bytes:
    """The layout of a ListenBrainz user export."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("user.json", json.dumps({"user_name": "someone"}))
        archive.writestr("listens/2024/5.jsonl", lines)
        archive.writestr("feedback.jsonl", "")
    return out.getvalue()
