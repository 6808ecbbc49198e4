"""Rating transforms: each stays in 1..10 and means what README says."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from songrec.etl.errors import EtlError
from songrec.etl.ratings import TRANSFORMS, transform_ratings


def _plays(per_user: dict[str, list[int]]) -> pa.Table:
    rows = [
        {"user_name": u, "song_id": f"s{i:03d}", "plays": p}
        for u, counts in per_user.items()
        for i, p in enumerate(counts)
    ]
    return pa.Table.from_pylist(rows)


def _ratings(table: pa.Table, transform: str) -> dict[tuple[str, str], int]:
    out = transform_ratings(table, transform).to_pylist()
    return {(r["user_name"], r["song_id"]): r["rating"] for r in out}


def test_cap_is_min_plays_10():
    r = _ratings(_plays({"u": [1, 3, 10, 11, 5874]}), "cap")
    assert list(r.values()) == [1, 3, 10, 10, 10]


@pytest.mark.parametrize("transform", sorted(TRANSFORMS))
def test_every_transform_stays_in_range_and_is_monotone(transform):
    rng = np.random.default_rng(0)
    counts = {f"u{k}": list(rng.pareto(1.2, 30).astype(int) + 1) for k in range(20)}
    ratings = _ratings(_plays(counts), transform)
    assert set(ratings.values()) <= set(range(1, 11))
    for user, plays in counts.items():
        order = np.argsort(plays, kind="stable")
        values = [ratings[(user, f"s{i:03d}")] for i in order]
        assert values == sorted(values), f"{transform} is not monotone in plays for {user}"


def test_quantile_and_log_read_each_listeners_own_scale():
    # A heavy listener and a light one: cap calls both top songs 10 and the light
    # listener's every song low; the per-user transforms give each their own 10.
    table = _plays({"heavy": [100, 200, 400, 800], "light": [1, 2, 3, 4]})
    for transform in ("quantile", "log"):
        r = _ratings(table, transform)
        assert r[("light", "s003")] == 10 and r[("heavy", "s003")] == 10
        assert r[("light", "s000")] == 1
    assert _ratings(table, "quantile")[("heavy", "s000")] == 1
    cap = _ratings(table, "cap")
    assert cap[("light", "s003")] == 4 and cap[("heavy", "s000")] == 10


def test_unknown_transform_is_a_clear_error():
    with pytest.raises(EtlError, match="unknown transform 'nope'; choose one of"):
        transform_ratings(_plays({"u": [1]}), "nope")
