"""Write a run's frames to a local run directory, atomically.

Layout: ``{root}/{dataset}/{date}/{run_id}/{name}.parquet`` (+ ``{name}.jsonl`` on request),
the same relative layout the S3 publish mirrors. Each file is written to a temp name in the same
directory and renamed into place, so a crash never leaves a half-written file under a final name
(a reader or a resumed run either sees the old file or the complete new one).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import polars as pl

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=-]{0,127}$")


def run_date(moment: datetime | None = None) -> str:
    """The ``{date}`` part of a run dir: the UTC date the run started, ``YYYY-MM-DD``."""
    return (moment or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%d")


def run_dir(root: str | Path, dataset: str, run_id: str, date: str | None = None) -> Path:
    """``root/dataset/date/run_id`` (created). Names are checked: they become S3 key parts."""
    for label, value in (("dataset", dataset), ("run_id", run_id)):
        if not _SAFE.match(value):
            raise ValueError(f"{label} {value!r}: use letters, digits, '_', '.', '=', '-' only")
    date = date or run_date()
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date):
        raise ValueError(f"date {date!r}: expected YYYY-MM-DD")
    path = Path(root) / dataset / date / run_id
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(handle)`` on a temp file next to ``path``, fsync, then rename onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Atomically replace ``path`` with ``data``."""
    return atomic_write(path, lambda handle: handle.write(data))


def write_frame(frame: pl.DataFrame, path: Path, fmt: str = "parquet") -> Path:
    """One frame as Parquet (zstd) or JSONL, atomically."""
    if fmt == "parquet":
        return atomic_write(path, lambda handle: frame.write_parquet(handle, compression="zstd"))
    if fmt == "jsonl":
        return atomic_write(path, lambda handle: frame.write_ndjson(handle))
    raise ValueError(f"unknown output format {fmt!r} (parquet or jsonl)")


def write_outputs(
    directory: Path,
    frames: Mapping[str, pl.DataFrame],
    *,
    jsonl: bool | Iterable[str] = False,
) -> dict[str, Path]:
    """Write each named frame as ``{name}.parquet`` (and ``{name}.jsonl`` where asked).

    ``jsonl=True`` adds JSONL for every frame, or pass the names that need it (e.g. ``["pairs"]``
    for a TRL-ready file). Returns {file name: path}.
    """
    wanted = set(frames) if jsonl is True else set(jsonl or ())
    written: dict[str, Path] = {}
    for name, frame in frames.items():
        if not _SAFE.match(name):
            raise ValueError(f"frame name {name!r}: use letters, digits, '_', '.', '-' only")
        written[f"{name}.parquet"] = write_frame(frame, Path(directory) / f"{name}.parquet")
        if name in wanted:
            written[f"{name}.jsonl"] = write_frame(frame, Path(directory) / f"{name}.jsonl", "jsonl")
    return written
