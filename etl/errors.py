"""The one error type the ETL raises for bad input; the CLI prints it on one line."""


class EtlError(Exception):
    """Bad input or an impossible request: a clear message, never a traceback."""
