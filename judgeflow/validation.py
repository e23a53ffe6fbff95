"""Split decoded rows into valid rows and quarantine, with one clear reason per bad row.

Input is the *decoded* frame built by ``judgeflow.loading`` (columns: source_index, raw, id,
instruction, responses, models, reference, metadata, content_hash, problem_field, problem), where
``problem`` already holds the first decoding problem (invalid UTF-8, unparseable JSON, wrong
types). This module adds the content rules, all as polars expressions:

* instruction missing, or empty/blank;
* responses missing, an empty list, or containing an empty/blank response;
* any text field longer than ``max_text_chars`` characters;
* duplicate row ids: the first valid occurrence is kept, later ones name the first's index.

A row is quarantined ONCE with its first problem (decoding problems first, then the order above),
so ``rows_in == rows_valid + rows_quarantined`` holds by construction (and is asserted).
``source_index`` is 0-based: the physical line for JSONL (blank lines count but are not rows),
the data row (header excluded) for CSV, the row for Parquet.

Reasons name the *source* column (``labels``: ``{"instruction": "prompt", "responses":
"completions"}``) with the logical field beside it (``field 'prompt' (instruction) is empty``),
so a user reads the name that is in their file; the ``field`` column keeps the logical field,
which is what counts group by.
"""

from __future__ import annotations

import polars as pl

from collections.abc import Mapping

from judgeflow.schemas import QUARANTINE_SCHEMA, ROWS_SCHEMA

DEFAULT_MAX_TEXT_CHARS = 100_000
RAW_LIMIT = 2_000


def validate_decoded(
    decoded: pl.DataFrame,
    source: str,
    *,
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
    labels: Mapping[str, str] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(rows with exactly ``ROWS_SCHEMA``, quarantine with exactly ``QUARANTINE_SCHEMA``)."""
    labels = labels or {}
    instr, resp, ref, meta = (_field(f, labels) for f in ("instruction", "responses", "reference", "metadata"))
    resp_items = labels.get("responses", "responses")
    blank = pl.col("instruction").str.strip_chars().str.len_chars() == 0
    n_resp = pl.col("responses").list.len()
    empty_at = (
        pl.col("responses")
        .list.eval(pl.element().str.strip_chars().str.len_chars() == 0)
        .list.arg_max()
    )
    any_empty = pl.col("responses").list.eval(
        pl.element().is_null() | (pl.element().str.strip_chars().str.len_chars() == 0)
    ).list.any()
    longest_resp = pl.col("responses").list.eval(pl.element().str.len_chars()).list.max()
    limit = max_text_chars

    # (field, condition, reason) in priority order; the first true one is the row's problem.
    rules: list[tuple[str, pl.Expr, pl.Expr]] = [
        ("instruction", pl.col("instruction").is_null(), pl.lit(f"{instr} is missing")),
        ("instruction", blank, pl.lit(f"{instr} is empty")),
        ("responses", pl.col("responses").is_null(), pl.lit(f"{resp} is missing")),
        ("responses", n_resp == 0, pl.lit(f"{resp} is an empty list")),
        ("responses", any_empty, pl.format(f"{resp_items}[{{}}] is empty", empty_at)),
        (
            "instruction",
            pl.col("instruction").str.len_chars() > limit,
            pl.format(
                f"{instr} has {{}} characters (limit {{}})",
                pl.col("instruction").str.len_chars(),
                pl.lit(limit),
            ),
        ),
        (
            "responses",
            longest_resp > limit,
            pl.format("a response has {} characters (limit {})", longest_resp, pl.lit(limit)),
        ),
        (
            "reference",
            pl.col("reference").str.len_chars() > limit,
            pl.format(
                f"{ref} has {{}} characters (limit {{}})",
                pl.col("reference").str.len_chars(),
                pl.lit(limit),
            ),
        ),
        (
            "metadata",
            pl.col("metadata").str.len_chars() > limit,
            pl.format(f"{meta} has more than {{}} characters", pl.lit(limit)),
        ),
    ]
    field = pl.col("problem_field")
    reason = pl.col("problem")
    for name, cond, why in reversed(rules):  # build so that the first rule wins
        field = pl.when(pl.col("problem").is_null() & cond.fill_null(False)).then(pl.lit(name)).otherwise(field)
        reason = pl.when(pl.col("problem").is_null() & cond.fill_null(False)).then(why).otherwise(reason)
    # reversed() + nested when: the outermost (last built) is checked first, i.e. rules[0]
    given_id = pl.col("id").str.strip_chars()
    frame = decoded.with_columns(
        field.alias("problem_field"),
        reason.alias("problem"),
        pl.when(given_id.str.len_chars() > 0)
        .then(pl.col("id"))
        .otherwise(pl.col("content_hash"))
        .alias("row_id"),
    )

    # Duplicates among rows that are otherwise valid: keep the first by source order.
    ok = pl.col("problem").is_null()
    first_idx = pl.col("source_index").filter(ok).first().over("row_id")
    frame = frame.with_columns(
        pl.when(ok).then(first_idx).alias("_first"),
    ).with_columns(
        pl.when(ok & (pl.col("_first") != pl.col("source_index")))
        .then(pl.lit("id"))
        .otherwise(pl.col("problem_field"))
        .alias("problem_field"),
        pl.when(ok & (pl.col("_first") != pl.col("source_index")))
        .then(pl.format("duplicate id '{}' (first seen at row {})", pl.col("row_id"), pl.col("_first")))
        .otherwise(pl.col("problem"))
        .alias("problem"),
    )

    valid = frame.filter(pl.col("problem").is_null())
    bad = frame.filter(pl.col("problem").is_not_null())
    rows = valid.select(
        pl.col("row_id").cast(pl.String),
        pl.col("instruction").cast(pl.String),
        pl.col("responses").cast(pl.List(pl.String)),
        pl.col("models").cast(pl.List(pl.String)),
        pl.when(pl.col("reference").str.strip_chars().str.len_chars() > 0)
        .then(pl.col("reference"))
        .cast(pl.String)
        .alias("reference"),
        pl.col("metadata").cast(pl.String),
        pl.col("source_index").cast(pl.Int64),
        pl.col("content_hash").cast(pl.String),
    ).sort("source_index")
    quarantine = bad.select(
        pl.lit(source, dtype=pl.String).alias("source"),
        pl.col("source_index").cast(pl.Int64),
        pl.when(pl.col("problem_field") == "line").then(pl.lit(None, dtype=pl.String)).otherwise(pl.col("row_id")).alias("row_id"),
        pl.col("problem_field").cast(pl.String).alias("field"),
        pl.format("row {}: {}", pl.col("source_index"), pl.col("problem")).alias("reason"),
        pl.col("raw").str.slice(0, RAW_LIMIT).cast(pl.String).alias("raw"),
    ).sort("source_index")
    assert rows.schema == pl.Schema(ROWS_SCHEMA), rows.schema
    assert quarantine.schema == pl.Schema(QUARANTINE_SCHEMA), quarantine.schema
    if rows.height + quarantine.height != decoded.height:
        raise AssertionError(
            f"{source}: {decoded.height} rows in, {rows.height} valid + {quarantine.height} "
            "quarantined"
        )
    return rows, quarantine


def _field(logical: str, labels: Mapping[str, str]) -> str:
    """``field 'instruction'``, or ``field 'prompt' (instruction)`` when the file calls it so."""
    source = labels.get(logical, logical)
    return f"field '{source}'" if source == logical else f"field '{source}' ({logical})"


def reasons_by_field(quarantine: pl.DataFrame) -> dict[str, int]:
    """Quarantine counts per field, largest first (for summaries and the CLI)."""
    if quarantine.height == 0:
        return {}
    counts = quarantine.group_by("field").len().sort(["len", "field"], descending=[True, False])
    return dict(zip(counts["field"].to_list(), counts["len"].to_list()))
