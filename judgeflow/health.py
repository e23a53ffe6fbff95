"""Did the build work? Per-judge outcome, and the reasons a build counts as failed.

A build whose judges mostly failed (a wrong key, a dead endpoint) or that drew no preference
pair from its rows is not a dataset: it must say so with its exit status and its flow run's
state, not only in a manifest count. These are pure functions of the run's judgments, shared
by the Prefect flow and the CLI's summary.

What a failed build does with its outputs (see docs/data.md): the run folder is written locally
as usual, its ``manifest.json`` says ``"status": "failed"`` with the reasons, and nothing is
published, so a reader of the publish target only ever sees complete builds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

#: The columns of ``judge_table``.
JUDGE_TABLE_SCHEMA: dict[str, pl.DataType] = {
    "judge": pl.String(),
    "requests": pl.Int64(),
    "ok": pl.Int64(),
    "failed": pl.Int64(),
    "from_store": pl.Int64(),
    "cost_this_run_usd": pl.Float64(),
    "first_error": pl.String(),
}


def judge_table(judgments: pl.DataFrame, sent: pl.DataFrame, judges: Sequence[str]) -> pl.DataFrame:
    """Per judge of ``judges``: this run's requests, ok, failed (any failure status), answered
    from the store (requests not sent by this run) and the dollars this run's requests cost.

    ``judgments``: the run's view (one record per request, ``JUDGMENTS_SCHEMA``); ``sent``:
    (judge, request_id) of the requests this run sent (the plan's pending ones).
    """
    sent = sent.select("judge", "request_id").unique()
    per_judge = judgments.group_by("judge").agg(
        pl.len().cast(pl.Int64).alias("requests"),
        (pl.col("status") == "ok").sum().cast(pl.Int64).alias("ok"),
        (pl.col("status") != "ok").sum().cast(pl.Int64).alias("failed"),
        pl.col("error").filter(pl.col("status") != "ok").drop_nulls().first().alias("first_error"),
    )
    this_run = (
        judgments.join(sent, on=["judge", "request_id"], how="semi")
        .group_by("judge")
        .agg(pl.len().cast(pl.Int64).alias("sent"), pl.col("cost_usd").sum().alias("cost_this_run_usd"))
    )
    return (
        pl.DataFrame({"judge": list(judges)}, schema={"judge": pl.String})
        .join(per_judge, on="judge", how="left")
        .join(this_run, on="judge", how="left")
        .with_columns(pl.col("requests", "ok", "failed", "sent").fill_null(0))
        .with_columns(
            (pl.col("requests") - pl.col("sent")).alias("from_store"),
            pl.col("cost_this_run_usd").fill_null(0.0).round(6),
        )
        .select(list(JUDGE_TABLE_SCHEMA))
        .cast(JUDGE_TABLE_SCHEMA)
    )


def build_failures(
    judges: pl.DataFrame, *, rows_in: int, rows_valid: int, pairs: int, max_failed_fraction: float
) -> list[str]:
    """Why this build failed (empty when it did not), one short sentence per reason.

    A build fails when its input holds no rows, when a judge failed more than
    ``max_failed_fraction`` of its requests, or when rows came in and no pair came out.
    """
    if rows_in == 0:
        return ["the input holds no rows: nothing to build"]
    reasons = []
    for judge in judges.filter(pl.col("requests") > 0).iter_rows(named=True):
        fraction = judge["failed"] / judge["requests"]
        if fraction > max_failed_fraction:
            reasons.append(
                f"judge {judge['judge']!r}: {judge['failed']} of {judge['requests']} judgments failed "
                f"({fraction:.0%}, more than max_failed_fraction {max_failed_fraction:g}); "
                f"first error: {judge['first_error']}"
            )
    if pairs == 0:
        reasons.append(
            f"no preference pairs from {rows_in} rows ({rows_valid} valid): see quarantine.parquet, "
            "failed_rows.parquet and the pairs settings (min_margin)"
        )
    return reasons


class BuildFailed(RuntimeError):
    """A build that ran to the end but is not a dataset (see ``build_failures``).

    Carries the build's result (summary, counts, per-judge table, paths) so the CLI can print
    it; the flow returns it inside a Failed state, so the flow run ends Failed with the reason
    and no traceback is logged.
    """

    def __init__(self, message: str, result: dict[str, Any] | None = None) -> None:
        super().__init__(message, result)
        self.message = message
        self.result = result or {}

    def __str__(self) -> str:
        return self.message
