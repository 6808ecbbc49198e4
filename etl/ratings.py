"""Plays -> explicit 1..10 ratings, by a named transform.

`cap` is the reference rule, min(plays, 10). On real all-time counts it makes almost every
rating a 10 (96.5% on HetRec), so the other transforms read each listener's own scale.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from songrec.etl.errors import EtlError

# Each transform is one SQL expression over a user's plays; the window is per user.
TRANSFORMS: dict[str, str] = {
    # The reference: a play is a point, ten or more plays is a 10.
    "cap": "least(plays, 10)",
    # Rank within the listener's own plays: their most played songs get 10, least played 1.
    "quantile": "1 + floor(9.999 * percent_rank() OVER (PARTITION BY user_name ORDER BY plays))",
    # Log of plays relative to the listener's most played song (one play -> 1).
    "log": (
        "CASE WHEN max(plays) OVER (PARTITION BY user_name) = 1 THEN 1 ELSE "
        "1 + round(9 * ln(plays) / ln(max(plays) OVER (PARTITION BY user_name))) END"
    ),
    # ListenBrainz's own curve (1 play -> 20, n >= 2 -> 30 + min(n, 20)) squeezed to 1..10.
    "listenbrainz": (
        "CASE WHEN plays = 1 THEN 1 ELSE 2 + round(8 * (least(plays, 20) - 2) / 18) END"
    ),
}
DEFAULT_TRANSFORM = "cap"


def check_transform(name: str) -> str:
    """Return `name` if it is a known transform, else a clear error listing the choices."""
    if name not in TRANSFORMS:
        raise EtlError(f"unknown transform {name!r}; choose one of {', '.join(TRANSFORMS)}")
    return name


def transform_ratings(plays: pa.Table, transform: str = DEFAULT_TRANSFORM) -> pa.Table:
    """Ratings (user_name, song_id, rating 1..10) from plays (user_name, song_id, plays)."""
    expression = TRANSFORMS[check_transform(transform)]
    con = duckdb.connect(":memory:")
    try:
        con.register("plays_in", plays)
        return con.sql(
            f"""
            SELECT user_name, song_id,
                   greatest(1, least(10, ({expression})))::TINYINT AS rating
            FROM plays_in
            ORDER BY user_name, song_id
            """
        ).to_arrow_table()
    finally:
        con.close()
