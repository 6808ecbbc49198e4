"""Listens dumps as ListenBrainz publishes them: formats, reading, staging for DuckDB."""
