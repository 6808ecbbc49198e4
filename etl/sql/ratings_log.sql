-- Plays -> ratings by `log`: the log of plays relative to the listener's most played song
-- (one play -> 1, the most played -> 10; a listener who played everything once: all 1).
-- See ratings_cap.sql for the conventions. ROUND takes halves away from zero in both
-- engines.
WITH per_user AS (
  SELECT
    user_name,
    song_id,
    plays,
    MAX(plays) OVER (PARTITION BY user_name) AS most
  FROM plays_table
), scored AS (
  SELECT
    user_name,
    song_id,
    IF(most = 1, 1, 1 + ROUND(9 * LN(plays) / LN(most))) AS score
  FROM per_user
)
SELECT
  user_name,
  song_id,
  CAST(GREATEST(1, LEAST(10, score)) AS INT64) AS rating
FROM scored
