"""BigQuery: listens -> plays (and ratings) inside BigQuery, and loading a Spark dump there."""
