-- Plays -> ratings by `listenbrainz`: ListenBrainz's own curve (1 play -> 20, n >= 2 plays
-- -> 30 + min(n, 20)) squeezed to 1..10: one play 1, two plays 2, twenty or more 10.
-- See ratings_cap.sql for the conventions. `/` of two integers is a FLOAT64 division in
-- both engines; ROUND takes halves away from zero (8 * (n - 2) / 18 is never a half).
WITH scored AS (
  SELECT
    user_name,
    song_id,
    IF(plays = 1, 1, 2 + ROUND(8 * (LEAST(plays, 20) - 2) / 18)) AS score
  FROM plays_table
)
SELECT
  user_name,
  song_id,
  CAST(GREATEST(1, LEAST(10, score)) AS INT64) AS rating
FROM scored
