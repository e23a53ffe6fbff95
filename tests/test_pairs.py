"""Preference pairs from hand-built consensus: rankings, margins, filters and the exact schema."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from judgeflow.consensus import ConsensusPolicy, merge
from judgeflow.pairs import build_pairs
from judgeflow.schemas import PAIRS_SCHEMA, ROWS_SCHEMA
from tests.test_consensus import both, frame, score


def rows(*specs: tuple[str, list[str]], models: bool = True) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "row_id": row_id, "instruction": f"question {row_id}", "responses": responses,
                "models": [f"gen-{i}" for i in range(len(responses))] if models else None,
                "reference": None, "metadata": "{}", "source_index": k, "content_hash": row_id,
            }
            for k, (row_id, responses) in enumerate(specs)
        ],
        schema=ROWS_SCHEMA,
    )


def pairs_of(df: pl.DataFrame) -> list[tuple[str, int, int]]:
    assert df.schema == pl.Schema(PAIRS_SCHEMA)
    return df.select("row_id", "chosen_index", "rejected_index").rows()


TRIO = rows(("r", ["zero", "one", "two"]))


def test_three_candidates_transitive_order() -> None:
    # 0 > 1, 0 > 2, 1 > 2: Copeland 0:+2, 1:0, 2:-2 -> best 0, worst 2.
    records = both("j1", "r", 0, 1, 0, feedback="zero wins") + both("j1", "r", 0, 2, 0) + both("j1", "r", 1, 2, 1)
    c = merge(frame(records))
    best = build_pairs(TRIO, c, source="pairwise", run_id="run-7")
    assert pairs_of(best) == [("r", 0, 2)]
    p = best.row(0, named=True)
    assert (p["prompt"], p["chosen"], p["rejected"]) == ("question r", "zero", "two")
    assert (p["chosen_model"], p["rejected_model"], p["run_id"]) == ("gen-0", "gen-2", "run-7")
    assert (p["margin"], p["agreement"], p["judges"]) == (1.0, 1.0, ["j1"])
    assert (p["judge_models"], p["template_hashes"]) == (["model-j1"], ["tpl-1"])
    assert (p["chosen_score"], p["rejected_score"]) == (None, None)
    every = build_pairs(TRIO, c, source="pairwise", strategy="all-pairs")
    assert pairs_of(every) == [("r", 0, 1), ("r", 0, 2), ("r", 1, 2)]
    assert every.row(0, named=True)["feedback"] == "j1: [AB] zero wins\n[BA] zero wins"


def test_cycle_gives_no_best_vs_worst_pair() -> None:
    # 0 > 1, 1 > 2, 2 > 0: every Copeland score is 0, no candidate is best.
    records = both("j1", "r", 0, 1, 0) + both("j1", "r", 1, 2, 1) + both("j1", "r", 0, 2, 2)
    c = merge(frame(records))
    assert build_pairs(TRIO, c, source="pairwise").is_empty()
    assert len(build_pairs(TRIO, c, source="pairwise", strategy="all-pairs")) == 3


def test_best_vs_worst_needs_the_direct_verdict_to_agree() -> None:
    # 0 beats 1 and 2; 3 beats 0; 1 and 2 beat 3; 1 ties 2.
    # Copeland: 0:+1, 1:0, 2:0, 3:-1 -> best 0, worst 3, but 3 beat 0 directly: no pair.
    records = (
        both("j", "r", 0, 1, 0) + both("j", "r", 0, 2, 0) + both("j", "r", 0, 3, 3)
        + both("j", "r", 1, 3, 1) + both("j", "r", 2, 3, 2) + both("j", "r", 1, 2, "tie")
    )
    quad = rows(("r", ["a", "b", "c", "d"]))
    c = merge(frame(records))
    assert build_pairs(quad, c, source="pairwise").is_empty()
    assert len(build_pairs(quad, c, source="pairwise", strategy="all-pairs")) == 5  # the tie gives none


def test_ties_and_no_quorum_make_no_pairs() -> None:
    records = both("j1", "r", 0, 1, 0) + both("j2", "r", 0, 1, 1)
    duo = rows(("r", ["a", "b"]))
    assert build_pairs(duo, merge(frame(records)), source="pairwise").is_empty()
    decided = merge(frame(both("j1", "r", 0, 1, 0)), ConsensusPolicy(min_judges=2))
    assert build_pairs(duo, decided, source="pairwise", strategy="all-pairs").is_empty()
    broken = merge(frame(records), ConsensusPolicy(tie_policy="first-judge", priority=["j2"]))
    assert pairs_of(build_pairs(duo, broken, source="pairwise")) == [("r", 1, 0)]


def test_majority_margin_agreement_and_unanimity_filter() -> None:
    # j1, j2 for 0 (weight 2) vs j3 for 1 (weight 1): margin (2 - 1) / 3, agreement 2 / 3.
    records = both("j1", "r", 0, 1, 0) + both("j2", "r", 0, 1, 0) + both("j3", "r", 0, 1, 1)
    duo = rows(("r", ["a", "b"]))
    p = build_pairs(duo, merge(frame(records))).row(0, named=True)
    assert (p["chosen_index"], p["margin"], p["agreement"]) == (0, pytest.approx(1 / 3), pytest.approx(2 / 3))
    assert p["judges"] == ["j1", "j2", "j3"]
    assert build_pairs(duo, merge(frame(records)), min_agreement=0.7).is_empty()
    assert build_pairs(duo, merge(frame(records), ConsensusPolicy(unanimous_only=True))).is_empty()
    unanimous = merge(frame(records[:4]), ConsensusPolicy(unanimous_only=True))
    assert pairs_of(build_pairs(duo, unanimous)) == [("r", 0, 1)]


def test_abstaining_judge_is_not_in_provenance() -> None:
    records = both("j1", "r", 0, 1, 1, model="gpt") + both("j2", "r", 0, 1, 1, model="claude")
    records += [r | {"status": "failed", "verdict": None, "preferred": None} for r in both("j3", "r", 0, 1, 0, model="x")]
    p = build_pairs(rows(("r", ["a", "b"])), merge(frame(records))).row(0, named=True)
    assert (p["judges"], p["judge_models"]) == (["j1", "j2"], ["claude", "gpt"])


# ------------------------------------------------------------------ scores


SCORED = [score("s", "r", 0, 3.0), score("s", "r", 1, 5.0, feedback="great"), score("s", "r", 2, 1.0, feedback="poor")]


def test_scores_best_vs_worst_and_margins() -> None:
    c = merge(frame(SCORED))
    p = build_pairs(TRIO, c, source="scores")
    assert pairs_of(p) == [("r", 1, 2)]
    row = p.row(0, named=True)
    assert (row["chosen_score"], row["rejected_score"], row["margin"], row["agreement"]) == (5.0, 1.0, 4.0, 1.0)
    assert row["feedback"] == "s [chosen]: great\ns [rejected]: poor"
    assert build_pairs(TRIO, c, source="scores", min_margin=4.5).is_empty()


@pytest.mark.parametrize(("min_margin", "expected"), [(0.0, [(1, 0), (1, 2), (0, 2)]), (2.0, [(1, 0), (1, 2), (0, 2)]), (3.0, [(1, 2)])])
def test_scores_all_pairs(min_margin: float, expected: list[tuple[int, int]]) -> None:
    p = build_pairs(TRIO, merge(frame(SCORED)), source="scores", strategy="all-pairs", min_margin=min_margin)
    assert sorted(pairs_of(p)) == sorted(("r", a, b) for a, b in expected)


def test_equal_scores_make_no_pair() -> None:
    c = merge(frame([score("s", "r", 0, 4.0), score("s", "r", 1, 4.0)]))
    assert build_pairs(rows(("r", ["a", "b"])), c, source="scores").is_empty()
    assert build_pairs(rows(("r", ["a", "b"])), c, source="scores", strategy="all-pairs").is_empty()


def test_score_pair_agreement_counts_judges_that_rank_the_same_way() -> None:
    # means: cand 0 = (5+4+1)/3 = 10/3, cand 1 = (1+2+3)/3 = 2 -> 0 chosen; s3 disagrees.
    records = [score("s1", "r", 0, 5), score("s1", "r", 1, 1), score("s2", "r", 0, 4), score("s2", "r", 1, 2),
               score("s3", "r", 0, 1), score("s3", "r", 1, 3)]
    duo = rows(("r", ["a", "b"]))
    p = build_pairs(duo, merge(frame(records)), source="scores").row(0, named=True)
    assert (p["chosen_index"], p["agreement"]) == (0, pytest.approx(2 / 3))
    assert p["margin"] == pytest.approx(10 / 3 - 2)
    assert build_pairs(duo, merge(frame(records), ConsensusPolicy(unanimous_only=True)), source="scores").is_empty()
    assert len(build_pairs(duo, merge(frame(records[:4]), ConsensusPolicy(unanimous_only=True)), source="scores")) == 1


def test_no_judge_scored_both_candidates_is_not_unanimous() -> None:
    records = [score("s1", "r", 0, 5.0), score("s2", "r", 1, 2.0)]
    duo = rows(("r", ["a", "b"]))
    p = build_pairs(duo, merge(frame(records)), source="scores").row(0, named=True)
    assert (p["agreement"], p["judges"], p["margin"]) == (None, ["s1", "s2"], 3.0)
    assert build_pairs(duo, merge(frame(records), ConsensusPolicy(unanimous_only=True)), source="scores").is_empty()


def test_auto_uses_pairwise_where_present_and_scores_elsewhere() -> None:
    records = both("j", "p", 0, 1, 1) + [score("s", "p", 0, 5.0), score("s", "p", 1, 2.0)]
    records += [score("s", "q", 0, 2.0), score("s", "q", 1, 4.0)]
    data = rows(("p", ["a", "b"]), ("q", ["c", "d"]))
    out = build_pairs(data, merge(frame(records)))
    assert pairs_of(out) == [("p", 1, 0), ("q", 1, 0)]
    p = out.row(0, named=True)
    # the pairwise pair carries the absolute scores, even though they disagree with it
    assert (p["margin"], p["chosen_score"], p["rejected_score"]) == (1.0, 2.0, 5.0)
    assert out.row(1, named=True)["margin"] == 2.0


def test_length_ratio_filter() -> None:
    data = rows(("r", ["x" * 100, "y" * 10]))
    c = merge(frame(both("j", "r", 0, 1, 0)))
    assert build_pairs(data, c, max_length_ratio=2.0).is_empty()
    assert len(build_pairs(data, c, max_length_ratio=10.0)) == 1
    assert len(build_pairs(data, c)) == 1


def test_indices_outside_the_row_and_unknown_rows_are_dropped() -> None:
    c = merge(frame(both("j", "r", 0, 5, 5) + both("j", "gone", 0, 1, 0)))
    assert build_pairs(rows(("r", ["a", "b"])), c, strategy="all-pairs").is_empty()


def test_missing_models_are_null() -> None:
    p = build_pairs(rows(("r", ["a", "b"]), models=False), merge(frame(both("j", "r", 0, 1, 0))))
    assert p.row(0, named=True)["chosen_model"] is None


def test_nothing_to_pair_gives_empty_schema() -> None:
    out = build_pairs(TRIO, merge(frame([])))
    assert out.is_empty() and out.schema == pl.Schema(PAIRS_SCHEMA)


def test_many_rows_vectorised() -> None:
    # 500 rows x 4 candidates, judge prefers the higher index: best 3, worst 0 everywhere.
    n = 500
    records: list[dict[str, Any]] = []
    for k in range(n):
        for lo in range(4):
            for hi in range(lo + 1, 4):
                records += both("j", f"r{k:03d}", lo, hi, hi)
    data = rows(*[(f"r{k:03d}", ["a", "b", "c", "d"]) for k in range(n)])
    out = build_pairs(data, merge(frame(records)))
    assert out.height == n
    assert out.select(pl.col("chosen_index").unique(), pl.col("rejected_index").unique()).rows() == [(3, 0)]
    assert len(build_pairs(data, merge(frame(records)), strategy="all-pairs")) == 6 * n
