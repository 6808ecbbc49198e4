-- Listens -> plays per (user, song key, raw spelling, recording mbid). The one definition
-- of this step.
-- Written in BigQuery's dialect; etl/query.py runs it as is on BigQuery and transpiled
-- (sqlglot) on DuckDB. `listen_table` is replaced by the real table; @start/@end are
-- query parameters. Listens are first counted per raw spelling (cheap hashing); the song
-- key (whitespace runs collapsed, trimmed, lower-cased) is then computed once per group,
-- not once per listen: the regular expressions are the costly part. A name is blank when
-- it holds no non-whitespace character (REGEXP_CONTAINS(x, r'\S')): the same test as an
-- empty key, without computing the key twice, and no empty '' literal, which sqlglot's
-- DuckDB tokenizer (30.11) mis-reads after a $parameter (the BigQuery emulator used in
-- tests re-parses the query with it). GROUP BY uses positions: DuckDB binds names to FROM
-- columns before SELECT aliases, BigQuery the other way round.
-- recording_mbid (nullable STRING: the MusicBrainz recording the listen was mapped to) is
-- grouped raw too, so a row is per (user, raw spelling, raw mbid): exact plays per mbid,
-- and a spelling rarely carries more than one. It is then checked once per group: lower-
-- cased, a canonical UUID (8-4-4-4-12 hex digits, nothing around) is kept, anything else
-- becomes NULL. etl.mbids.valid_mbid is the Python twin.
WITH raw_plays AS (
  SELECT
    user_name,
    artist_name,
    track_name,
    recording_mbid,
    COUNT(*) AS plays,
    MIN(listened_at) AS first_listened_at,
    MAX(listened_at) AS last_listened_at
  FROM listen_table
  WHERE listened_at >= @start
    AND listened_at < @end
    AND user_name IS NOT NULL
    AND artist_name IS NOT NULL
    AND track_name IS NOT NULL
  GROUP BY 1, 2, 3, 4
)
SELECT
  user_name,
  -- TRIM(x, ' '): spaces only; a bare TRIM also strips no-break spaces on DuckDB, which
  -- would give one song two ids depending on the source.
  LOWER(TRIM(
    -- Most names hold no whitespace run: test before the costlier rewrite.
    IF(REGEXP_CONTAINS(artist_name, r'\s\s|[\t\n\f\r]'), REGEXP_REPLACE(artist_name, r'\s+', ' '), artist_name),
    ' '
  )) AS artist_key,
  LOWER(TRIM(
    IF(REGEXP_CONTAINS(track_name, r'\s\s|[\t\n\f\r]'), REGEXP_REPLACE(track_name, r'\s+', ' '), track_name),
    ' '
  )) AS track_key,
  artist_name AS artist_spelling,
  track_name AS track_spelling,
  plays,
  first_listened_at,
  last_listened_at,
  IF(
    REGEXP_CONTAINS(LOWER(recording_mbid), r'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'),
    LOWER(recording_mbid),
    NULL
  ) AS recording_mbid
FROM raw_plays
WHERE REGEXP_CONTAINS(user_name, r'\S')
  AND REGEXP_CONTAINS(artist_name, r'\S')
  AND REGEXP_CONTAINS(track_name, r'\S')
