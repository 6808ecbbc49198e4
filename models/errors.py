"""The one error type the models raise for bad input; the CLI prints it on one line."""


class ModelError(Exception):
    """Bad input, a missing or tampered model: a clear message, never a traceback."""
