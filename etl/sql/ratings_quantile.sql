-- Plays -> ratings by `quantile`: rank within the listener's own plays, so their most
-- played songs get 10 and their least played 1 (see ratings_cap.sql for the conventions).
-- PERCENT_RANK is (rank - 1) / (rows - 1) in both engines (0 for a one-song listener);
-- 9.999 keeps the top rank at 10, not 11.
WITH scored AS (
  SELECT
    user_name,
    song_id,
    1 + FLOOR(9.999 * PERCENT_RANK() OVER (PARTITION BY user_name ORDER BY plays)) AS score
  FROM plays_table
)
SELECT
  user_name,
  song_id,
  CAST(GREATEST(1, LEAST(10, score)) AS INT64) AS rating
FROM scored
