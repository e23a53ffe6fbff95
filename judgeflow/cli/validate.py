"""``judgeflow validate PATH``: check an input file before spending money judging it.

Loads the file exactly as a build would (same column mapping, same dataset-format recognition,
same quarantine rules) and prints the counts, the format the rows were read as, and why rows
were set aside. Exit status 0 whenever the file is readable, even with
quarantined rows (they are data, not a crash); 2 with one message when it cannot be read or its
columns cannot be mapped. ``--json`` makes the LAST line one JSON object, for scripts and CI.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import orjson
import polars as pl
import typer

from judgeflow.cli.app import app
from judgeflow.columns import ColumnMapping, InputError, check_fields
from judgeflow.loading import load_rows
from judgeflow.names import check_output_dir
from judgeflow.storage.s3 import S3Config
from judgeflow.storage.writer import write_frame
from judgeflow.validation import DEFAULT_MAX_TEXT_CHARS, reasons_by_field

SHOWN_REASONS = 10


@app.command("validate")
def validate_command(
    path: Annotated[str, typer.Argument(help="Local file or s3://bucket/key (JSONL, Parquet, CSV).")],
    quarantine: Annotated[
        Path | None,
        typer.Option("--quarantine", "-q", help="Write quarantined rows here (.parquet, .jsonl or .csv)."),
    ] = None,
    format: Annotated[
        str | None,
        typer.Option(
            "--format", "-f",
            help="A dataset format (ultrafeedback, preference, hh-rlhf, trl, messages, distilabel, openpo, "
            "pairwise, judgeflow) or a file type (jsonl, parquet, csv). Default: recognised from the "
            "name and the first rows.",
        ),
    ] = None,
    max_text_chars: Annotated[
        int, typer.Option("--max-text-chars", min=1, help="Longer text fields are quarantined.")
    ] = DEFAULT_MAX_TEXT_CHARS,
    column: Annotated[
        list[str] | None,
        typer.Option("--column", "-c", help="Column override FIELD=COLUMN, e.g. instruction=question (repeatable)."),
    ] = None,
    s3_endpoint: Annotated[
        str | None, typer.Option("--s3-endpoint", help="S3-compatible endpoint URL for s3:// paths.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="End with one JSON summary line.")] = False,
) -> None:
    """Validate an input file: counts, and a summary of why rows were quarantined."""
    try:
        mapping = _mapping(column or [])
        if quarantine is not None:  # before reading a large file, not after
            check_output_dir(quarantine.parent, "--quarantine", "write the quarantine elsewhere")
        result = load_rows(
            path,
            format=format,
            mapping=mapping,
            max_text_chars=max_text_chars,
            s3=S3Config(endpoint_url=s3_endpoint) if s3_endpoint else None,
        )
    except (InputError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None

    counts = result.counts
    by_field = reasons_by_field(result.quarantine)
    layout = f", {result.dataset_format} format" if result.dataset_format else ""
    typer.echo(
        f"{result.source} ({result.format}{layout}): {counts.rows_in} rows in, "
        f"{counts.rows_valid} valid, {counts.rows_quarantined} quarantined"
    )
    for note in result.notes:
        typer.echo(f"note: {note}")
    if by_field:
        typer.echo("quarantined by field: " + ", ".join(f"{k}={v}" for k, v in by_field.items()))
        for reason in result.quarantine["reason"].head(SHOWN_REASONS).to_list():
            typer.echo(f"  {reason}")
        if counts.rows_quarantined > SHOWN_REASONS:
            typer.echo(f"  ... and {counts.rows_quarantined - SHOWN_REASONS} more")
    if quarantine is not None:
        _write_quarantine(result.quarantine, quarantine)
        typer.echo(f"quarantine written to {quarantine}")
    if as_json:
        summary = {
            "source": result.source,
            "format": result.format,
            "dataset_format": result.dataset_format,
            **counts.model_dump(),
            "reasons_by_field": by_field,
            "quarantine_path": str(quarantine) if quarantine is not None else None,
            "notes": result.notes,
        }
        sys.stdout.flush()
        typer.echo(orjson.dumps(summary).decode())


def _write_quarantine(frame: pl.DataFrame, path: Path) -> None:
    """Write the quarantined rows; a path that cannot be written is one line and exit 2."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            path.parent.mkdir(parents=True, exist_ok=True)
            frame.write_csv(path)
        else:
            write_frame(frame, path, "parquet" if suffix == ".parquet" else "jsonl")
    except OSError as exc:
        typer.echo(f"error: --quarantine {path}: cannot write ({exc.strerror or exc})", err=True)
        raise typer.Exit(code=2) from None


def _mapping(pairs: list[str]) -> ColumnMapping:
    """``--column FIELD=COLUMN`` options as a mapping; a bad one is named as typed."""
    values: dict[str, str] = {}
    for pair in pairs:
        field, sep, source = pair.partition("=")
        if not sep or not field.strip() or not source.strip():
            raise ValueError(f"--column {pair}: expected FIELD=COLUMN, e.g. instruction=question")
        check_fields([field.strip()], f"--column {pair}")
        values[field.strip()] = source.strip()
    return ColumnMapping(**values)
