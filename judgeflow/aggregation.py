"""Aggregate judgments into summary numbers (llama-stack's scoring-function aggregations).

Each function takes a judgments frame (``JUDGMENTS_SCHEMA``, eager or lazy), uses only
successful judgments (``status == "ok"``) and returns plain Python numbers. That is the point
of doing it here: llama-stack's regex scorer returns the matched score as a *string*, so its
``average`` fails; judgeflow's parser already stores scores as floats and these functions never
stringify them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import polars as pl

from judgeflow.schemas import JUDGMENTS_SCHEMA

Frame = pl.DataFrame | pl.LazyFrame


def _ok(judgments: Frame) -> pl.LazyFrame:
    return judgments.lazy().filter(pl.col("status") == "ok")


def _scalar(value: Any) -> float | None:
    return None if value is None else float(value)


def average(judgments: Frame) -> float | None:
    """Mean score of the successful absolute judgments (None when there is none)."""
    out = _ok(judgments).select(pl.col("score").drop_nulls().mean()).collect()
    return _scalar(out.item())


def median(judgments: Frame) -> float | None:
    """Median score of the successful absolute judgments (None when there is none)."""
    out = _ok(judgments).select(pl.col("score").drop_nulls().median()).collect()
    return _scalar(out.item())


def _category(value: float | str) -> int | float | str:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def categorical_count(judgments: Frame) -> dict[int | float | str, int]:
    """How often each label occurs: scores as numbers (1..5), pairwise verdicts as "A"/"B"."""
    ok = _ok(judgments)
    scores = ok.filter(pl.col("score").is_not_null()).group_by("score").len().collect()
    verdicts = ok.filter(pl.col("verdict").is_not_null()).group_by("verdict").len().collect()
    counts: dict[int | float | str, int] = {}
    for value, n in sorted(scores.iter_rows()):
        counts[_category(value)] = int(n)
    for value, n in sorted(verdicts.iter_rows()):
        counts[value] = int(n)
    return counts


def win_rate(judgments: Frame) -> dict[int, float]:
    """Per candidate index: wins / pairwise comparisons it took part in (successful ones).

    Candidate indices line up with generators when rows list candidates in a fixed model
    order, so this is the usual "model X beats model Y n% of the time".
    """
    pairs = _ok(judgments).filter(
        pl.col("candidate_b").is_not_null() & pl.col("preferred").is_not_null()
    )
    appearances = pl.concat(
        [
            pairs.select(pl.col("candidate_a").alias("candidate"), pl.col("preferred")),
            pairs.select(pl.col("candidate_b").alias("candidate"), pl.col("preferred")),
        ]
    )
    table = (
        appearances.group_by("candidate")
        .agg((pl.col("preferred") == pl.col("candidate")).mean().alias("win_rate"))
        .sort("candidate")
        .collect()
    )
    return {int(c): float(r) for c, r in table.iter_rows()}


AGGREGATIONS: dict[str, Callable[[Frame], Any]] = {
    "average": average,
    "median": median,
    "categorical_count": categorical_count,
    "win_rate": win_rate,
}


def aggregate(judgments: Frame, names: Iterable[str]) -> dict[str, Any]:
    """Several aggregations of one frame, by name; unknown names raise with the known ones."""
    out: dict[str, Any] = {}
    for name in names:
        if name not in AGGREGATIONS:
            raise KeyError(f"unknown aggregation {name!r}; known: {', '.join(AGGREGATIONS)}")
        out[name] = AGGREGATIONS[name](judgments)
    return out


def aggregate_by_judge(judgments: Frame, aggregations: dict[str, Iterable[str]]) -> dict[str, dict[str, Any]]:
    """``{judge: {aggregation: value}}`` for each judge name in ``aggregations``.

    ``aggregations`` maps a judge name to its spec's ``aggregation`` list (see
    ``JudgeRegistry.aggregations``).
    """
    lazy = judgments.lazy()
    return {
        judge: aggregate(lazy.filter(pl.col("judge") == judge), names)
        for judge, names in aggregations.items()
    }


def empty_judgments() -> pl.DataFrame:
    """An empty judgments frame (for callers that aggregate nothing)."""
    return pl.DataFrame(schema=JUDGMENTS_SCHEMA)
