"""Per-judge outcome of a build and when a build counts as failed (issue 13 item 8)."""

from __future__ import annotations

import polars as pl

from judgeflow.health import build_failures, judge_table
from judgeflow.judging.records import judgment_record, records_frame
from judgeflow.specs import JudgeSpec

A, B = JudgeSpec(name="a"), JudgeSpec(name="b")


def _judgments() -> pl.DataFrame:
    def req(i: int) -> dict:
        return {"request_id": f"r{i}", "row_id": f"row{i}", "candidate_a": 0}

    records = [judgment_record(A, req(i), score=4, cost_usd=0.5) for i in range(8)]
    records += [judgment_record(A, req(8), error="unparseable after 3 replies", status="failed", cost_usd=0.5),
                judgment_record(A, req(9), error="HTTP 401: wrong key", status="error")]
    records += [judgment_record(B, req(i), score=3, cost_usd=1.0) for i in range(10)]
    return records_frame(records)


def test_judge_table_counts_failures_of_every_status_and_this_runs_cost() -> None:
    sent = pl.DataFrame({"judge": ["a"] * 4 + ["b"] * 2, "request_id": ["r6", "r7", "r8", "r9", "r0", "r1"]})
    table = judge_table(_judgments(), sent, ["a", "b", "c"])
    got = {row["judge"]: row for row in table.to_dicts()}
    assert got["a"]["requests"] == 10
    assert (got["a"]["ok"], got["a"]["failed"], got["a"]["from_store"]) == (8, 2, 6)
    assert got["a"]["cost_this_run_usd"] == 1.5  # r6, r7, r8 (r9 cost nothing)
    assert got["a"]["first_error"] == "unparseable after 3 replies"
    assert (got["b"]["ok"], got["b"]["failed"], got["b"]["from_store"], got["b"]["cost_this_run_usd"]) == (10, 0, 8, 2.0)
    assert (got["c"]["requests"], got["c"]["failed"]) == (0, 0)  # a judge with nothing to judge


def test_a_judge_over_the_failed_fraction_fails_the_build() -> None:
    table = judge_table(_judgments(), pl.DataFrame(schema={"judge": pl.String, "request_id": pl.String}), ["a", "b"])
    reasons = build_failures(table, rows_in=10, rows_valid=10, pairs=5, max_failed_fraction=0.05)
    assert len(reasons) == 1
    assert "judge 'a'" in reasons[0] and "2 of 10" in reasons[0] and "unparseable" in reasons[0]
    assert build_failures(table, rows_in=10, rows_valid=10, pairs=5, max_failed_fraction=0.2) == []


def test_no_pairs_from_rows_or_no_rows_at_all_fails_the_build() -> None:
    empty = judge_table(records_frame([]), pl.DataFrame(schema={"judge": pl.String, "request_id": pl.String}), ["a"])
    assert build_failures(empty, rows_in=0, rows_valid=0, pairs=0, max_failed_fraction=0.05) == [
        "the input holds no rows: nothing to build"
    ]
    reasons = build_failures(empty, rows_in=5, rows_valid=0, pairs=0, max_failed_fraction=0.05)
    assert reasons and "no preference pairs" in reasons[0] and "5 rows" in reasons[0]
