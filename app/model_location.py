"""Where the served model lives: one default for the CLI and the page (no Streamlit here)."""

from __future__ import annotations

import os
from pathlib import Path

MODEL_ENV = "SONGREC_MODEL"
DEFAULT_MODEL = ".songrec/model"  # where `make demo` trains it


def default_model_dir() -> Path:
    """$SONGREC_MODEL, else .songrec/model (relative to the working folder)."""
    return Path(os.environ.get(MODEL_ENV) or DEFAULT_MODEL)
