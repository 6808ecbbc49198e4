"""Options shared by several commands (kept free of the heavy model and Streamlit imports)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from songrec.app.model_location import DEFAULT_MODEL, MODEL_ENV, default_model_dir
from songrec.models.errors import ModelError


def missing_model(path: Path) -> str:
    """The one line for a model folder that does not exist, with how to make one."""
    make = "`make demo` or " if path == Path(DEFAULT_MODEL) else ""
    return f"no model at {path}: run {make}`songrec train --data DATA_FOLDER --out {path}`"


def _existing_model(ctx: click.Context, param: click.Parameter, value: Path) -> Path:
    if not value.exists():
        raise ModelError(missing_model(value))
    return value


def model_option(help_text: str = "Model folder written by `songrec train`.") -> Callable:
    """--model: $SONGREC_MODEL, else .songrec/model (as the page); a missing folder is one
    line saying how to train one."""
    return click.option(
        "--model",
        "model_dir",
        default=default_model_dir,
        show_default=f"${MODEL_ENV}, else {DEFAULT_MODEL}",
        type=click.Path(path_type=Path),
        callback=_existing_model,
        help=help_text,
    )


def data_option(help_text: str, required: bool = True) -> Callable:
    """--data: an existing ratings folder written by `songrec etl`."""
    return click.option(
        "--data",
        "data_dir",
        required=required,
        type=click.Path(path_type=Path, exists=True, file_okay=False),
        help=help_text,
    )
