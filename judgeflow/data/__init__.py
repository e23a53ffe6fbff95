"""Bundled sample data (``sample_rows.jsonl``, built by ``make_sample_rows.py``)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def sample_rows_path() -> Path:
    """Path of the bundled demo input: 240 valid rows and 6 deliberately bad ones."""
    return Path(str(files("judgeflow.data").joinpath("sample_rows.jsonl")))
