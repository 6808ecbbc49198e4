-- Plays -> ratings by `cap`, the reference's rule: a play is a point, ten or more plays a 10.
-- Every ratings_<transform>.sql is the one definition of its transform: written in
-- BigQuery's dialect, run as is on BigQuery and transpiled (sqlglot) on DuckDB by
-- etl/ratings.py. `plays_table` (user_name, song_id, plays) is replaced by the real table;
-- the result is user_name, song_id and an INT64 rating, clamped to 1..10 (plays >= 1 keep
-- every transform in range; the clamp makes that a property of the query, not the input).
WITH scored AS (
  SELECT
    user_name,
    song_id,
    LEAST(plays, 10) AS score
  FROM plays_table
)
SELECT
  user_name,
  song_id,
  CAST(GREATEST(1, LEAST(10, score)) AS INT64) AS rating
FROM scored
