"""Every listen read is kept or counted under exactly one reason, whatever the window."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from songrec.etl.listens import LISTEN_SCHEMA, Rejects
from songrec.etl.pipeline import BLANK_NAME, OUTSIDE_WINDOW, EtlRun, run_listens

MAX_SECONDS = 253402300799  # 9999-12-31T23:59:59, the latest time a parser keeps
names = st.sampled_from(["a", "B", " a ", "\t", "  ", "\u00a0", "x y"])


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(names, names, st.integers(0, MAX_SECONDS)),
        min_size=1,
        max_size=40,
    ),
    st.integers(0, MAX_SECONDS),
    st.integers(1, MAX_SECONDS),
    st.integers(0, 3),
)
def test_read_equals_kept_plus_rejected(tmp_path_factory, listens, start, span, parse_rejects):
    start_at = datetime.fromtimestamp(start, UTC)
    end_at = datetime.fromtimestamp(min(start + span, MAX_SECONDS), UTC)
    table = pa.Table.from_pylist(
        [
            {
                "user_name": "u",
                "artist_name": artist,
                "track_name": track,
                "listened_at": datetime.fromtimestamp(seconds, UTC),
            }
            for artist, track, seconds in listens
        ],
        schema=LISTEN_SCHEMA,
    )
    rejects = Rejects()
    if parse_rejects:
        rejects.add("invalid_json", "f:1", parse_rejects)
    out = tmp_path_factory.mktemp("acct") / "data"
    run = EtlRun(source="t", out_dir=out, start=start_at, end=end_at, rejects=rejects)
    outside = sum(not start_at.timestamp() <= s < end_at.timestamp() for _, _, s in listens)
    blank = sum(
        start_at.timestamp() <= s < end_at.timestamp()
        and (not a.strip(" \t") or not t.strip(" \t"))
        for a, t, s in listens
    )
    kept = len(listens) - outside - blank
    try:
        report = run_listens(run, [table])
    except Exception as exc:  # nothing valid: the one-line "no valid listens" error
        assert kept == 0 and "no valid listens" in str(exc)
        return
    assert report["listens_read"] == len(listens) + parse_rejects
    reasons = report["rejected_by_reason"]
    assert reasons.get(OUTSIDE_WINDOW, 0) == outside and reasons.get(BLANK_NAME, 0) == blank
    assert report["listens_read"] == kept + report["listens_rejected"]
    written = json.loads((out / "etl_report.json").read_text())
    assert written["listens_rejected"] == report["listens_rejected"]


def test_a_listen_after_the_default_end_is_counted(tmp_path):
    when = [datetime(2020, 1, 1, tzinfo=UTC), datetime.fromtimestamp(MAX_SECONDS, UTC)]
    table = pa.Table.from_pylist(
        [{"user_name": "u", "artist_name": "a", "track_name": "t", "listened_at": w} for w in when],
        schema=LISTEN_SCHEMA,
    )
    report = run_listens(EtlRun(source="t", out_dir=tmp_path / "d"), [table])
    assert report["rejected_by_reason"] == {OUTSIDE_WINDOW: 1}
    assert report["listens_read"] == 2 and report["listens_rejected"] == 1
