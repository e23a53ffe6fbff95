"""Consensus over hand-built judgments whose right answers are worked out in the comments."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from judgeflow.consensus import (
    PAIRWISE_SCHEMA,
    SCORES_SCHEMA,
    ConsensusPolicy,
    merge,
)
from judgeflow.schemas import JUDGMENTS_SCHEMA
from judgeflow.specs import JudgeSpec

# ------------------------------------------------------------------ builders (used by other tests)


def vote(
    judge: str, row: str, a: int, b: int, verdict: str | None, *, order: str = "AB",
    failed: bool = False, feedback: str | None = None, model: str | None = None,
    template_hash: str | None = "tpl-1",
) -> dict[str, Any]:
    """One pairwise judgment showing (a, b); ``verdict`` is in that shown order."""
    preferred = None if failed else {"A": a, "B": b}.get(verdict or "")
    return {
        "request_id": f"{judge}|{row}|{a}|{b}|{order}", "row_id": row, "judge": judge,
        "kind": "pairwise", "candidate_a": a, "candidate_b": b, "order": order,
        "verdict": None if failed else verdict, "preferred": preferred,
        "feedback": feedback, "status": "failed" if failed else "ok",
        "error": "boom" if failed else None, "judge_model": model or f"model-{judge}",
        "template_hash": template_hash,
    }


def both(judge: str, row: str, lo: int, hi: int, winner: int | str, **kw: Any) -> list[dict[str, Any]]:
    """A judge consistent over both orders: ``winner`` is a candidate index or "tie"."""
    ab = "tie" if winner == "tie" else ("A" if winner == lo else "B")
    ba = "tie" if winner == "tie" else ("A" if winner == hi else "B")
    return [vote(judge, row, lo, hi, ab, order="AB", **kw), vote(judge, row, hi, lo, ba, order="BA", **kw)]


def score(
    judge: str, row: str, cand: int, value: float | None, *, failed: bool = False,
    feedback: str | None = None, model: str | None = None,
) -> dict[str, Any]:
    return {
        "request_id": f"{judge}|{row}|{cand}", "row_id": row, "judge": judge, "kind": "absolute",
        "candidate_a": cand, "score": None if failed else value, "feedback": feedback,
        "status": "failed" if failed else "ok", "judge_model": model or f"model-{judge}",
        "template_hash": "tpl-abs",
    }


def frame(records: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(records, schema=JUDGMENTS_SCHEMA)


def only(df: pl.DataFrame, **keys: Any) -> dict[str, Any]:
    hit = df.filter(*[pl.col(k) == v for k, v in keys.items()])
    assert hit.height == 1, hit
    return hit.row(0, named=True)


# ------------------------------------------------------------------ pairwise


def test_majority_of_three_judges() -> None:
    # j1, j2 prefer 0; j3 prefers 1 -> 0 wins with 2 of 3 equal weights.
    c = merge(frame(both("j1", "r", 0, 1, 0) + both("j2", "r", 0, 1, 0) + both("j3", "r", 0, 1, 1)))
    assert c.pairwise.schema == pl.Schema(PAIRWISE_SCHEMA)
    r = only(c.pairwise, row_id="r")
    assert (r["outcome"], r["verdict"], r["winner"], r["loser"]) == ("win", "A", 0, 1)
    assert (r["votes_a"], r["votes_b"], r["votes_tie"], r["n_judges"]) == (2, 1, 0, 3)
    assert r["agreement"] == pytest.approx(2 / 3)
    assert r["unanimous"] is False and r["tie_broken"] is False
    assert [j["judge"] for j in r["by_judge"]] == ["j1", "j2", "j3"]
    assert [j["verdict"] for j in r["by_judge"]] == ["A", "A", "B"]


def test_weights_flip_the_majority() -> None:
    # Same votes, j3 weighs 3: A has 2, B has 3 -> 1 wins with 3/5 of the weight.
    records = both("j1", "r", 0, 1, 0) + both("j2", "r", 0, 1, 0) + both("j3", "r", 0, 1, 1)
    c = merge(frame(records), ConsensusPolicy(weights={"j3": 3.0}))
    r = only(c.pairwise, row_id="r")
    assert (r["winner"], r["loser"], r["verdict"]) == (1, 0, "B")
    assert (r["weight_a"], r["weight_b"]) == (2.0, 3.0)
    assert r["agreement"] == pytest.approx(3 / 5)


def test_weights_from_specs() -> None:
    specs = [JudgeSpec(name="j1", kind="pairwise", weight=0.5), JudgeSpec(name="j3", kind="pairwise", weight=2.0)]
    policy = ConsensusPolicy.from_specs(specs, weights={"j1": 0.25}, min_judges=2)
    assert policy.weights == {"j1": 0.25, "j3": 2.0} and policy.min_judges == 2
    # j1 (0.25) + j2 (default 1.0) for 0 = 1.25 against j3 2.0 for 1.
    records = both("j1", "r", 0, 1, 0) + both("j2", "r", 0, 1, 0) + both("j3", "r", 0, 1, 1)
    assert only(merge(frame(records), policy).pairwise, row_id="r")["winner"] == 1


def test_float_weights_that_sum_equal_are_a_tie() -> None:
    # 0.1 + 0.2 != 0.3 in floating point; the consensus must still call it a tie.
    records = both("j1", "r", 0, 1, 0) + both("j2", "r", 0, 1, 0) + both("j3", "r", 0, 1, 1)
    c = merge(frame(records), ConsensusPolicy(weights={"j1": 0.1, "j2": 0.2, "j3": 0.3}))
    assert only(c.pairwise, row_id="r")["outcome"] == "tie"


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (ConsensusPolicy(tie_policy="tie"), ("tie", "tie", None, False)),
        (ConsensusPolicy(tie_policy="first-judge"), ("win", "A", 0, True)),  # j1 first by name
        (ConsensusPolicy(tie_policy="first-judge", priority=["j2"]), ("win", "B", 1, True)),
        (ConsensusPolicy(tie_policy="first-judge", weights={"j2": 2.0, "j1": 2.0}), ("win", "A", 0, True)),
    ],
)
def test_split_vote_follows_tie_policy(policy: ConsensusPolicy, expected: tuple[Any, ...]) -> None:
    c = merge(frame(both("j1", "r", 0, 1, 0) + both("j2", "r", 0, 1, 1)), policy)
    r = only(c.pairwise, row_id="r")
    assert (r["outcome"], r["verdict"], r["winner"], r["tie_broken"]) == expected
    assert r["agreement"] == pytest.approx(0.5 if expected[0] == "win" else 0.0)


def test_tie_policy_drop_removes_only_ties() -> None:
    records = both("j1", "r", 0, 1, 0) + both("j2", "r", 0, 1, 1) + both("j1", "s", 0, 1, 1)
    c = merge(frame(records), ConsensusPolicy(tie_policy="drop"))
    assert c.pairwise.get_column("row_id").to_list() == ["s"]


def test_first_judge_keeps_tie_when_nobody_decided() -> None:
    c = merge(frame(both("j1", "r", 0, 1, "tie") + both("j2", "r", 0, 1, "tie")), ConsensusPolicy(tie_policy="first-judge"))
    r = only(c.pairwise, row_id="r")
    assert (r["outcome"], r["agreement"], r["unanimous"]) == ("tie", 1.0, True)


def test_win_against_tie_votes_of_equal_weight_is_a_tie() -> None:
    # one judge says 0, one says tie: the top weight is shared -> tie.
    c = merge(frame(both("j1", "r", 0, 1, 0) + both("j2", "r", 0, 1, "tie")))
    assert only(c.pairwise, row_id="r")["outcome"] == "tie"


def test_failed_judgments_abstain_and_quorum() -> None:
    records = (
        both("j1", "r", 0, 1, 1)
        + both("j2", "r", 0, 1, 1)
        + [vote("j3", "r", 0, 1, None, failed=True), vote("j3", "r", 1, 0, None, order="BA", failed=True)]
    )
    r = only(merge(frame(records)).pairwise, row_id="r")
    assert (r["winner"], r["n_judges"], r["n_abstained"], r["agreement"], r["unanimous"]) == (1, 2, 1, 1.0, True)
    j3 = [j for j in r["by_judge"] if j["judge"] == "j3"][0]
    assert j3["verdict"] is None  # listed, abstained
    q = only(merge(frame(records), ConsensusPolicy(min_judges=3)).pairwise, row_id="r")
    assert (q["outcome"], q["verdict"], q["winner"], q["agreement"]) == ("no_quorum", None, None, None)


def test_position_inconsistency_becomes_a_flagged_tie() -> None:
    # j1 picks whichever candidate is shown first: AB (0,1) "A" -> 0, BA (1,0) "A" -> 1.
    records = [vote("j1", "r", 0, 1, "A"), vote("j1", "r", 1, 0, "A", order="BA")]
    records += both("j2", "r", 0, 1, 1) + both("j3", "r", 0, 1, 1)
    c = merge(frame(records))
    v = only(c.verdicts, judge="j1")
    assert (v["verdict"], v["position_inconsistent"], v["both_orders"]) == ("tie", True, True)
    r = only(c.pairwise, row_id="r")
    assert (r["winner"], r["votes_tie"], r["position_inconsistent"]) == (1, 1, 1)
    assert r["agreement"] == pytest.approx(2 / 3)


def test_shown_order_is_mapped_back_to_candidates() -> None:
    # Shown as (1, 0), "A" means candidate 1 won: in canonical (0, 1) orientation that is "B".
    c = merge(frame([vote("j1", "r", 1, 0, "A", order="BA", feedback="one is better")]))
    v = only(c.verdicts, judge="j1")
    assert (v["candidate_a"], v["candidate_b"], v["verdict"], v["both_orders"]) == (0, 1, "B", False)
    assert v["feedback"] == "[BA] one is better"
    assert only(c.pairwise, row_id="r")["winner"] == 1


def test_one_failed_order_keeps_the_other() -> None:
    records = [vote("j1", "r", 0, 1, "B"), vote("j1", "r", 1, 0, None, order="BA", failed=True)]
    v = only(merge(frame(records)).verdicts, judge="j1")
    assert (v["verdict"], v["position_inconsistent"], v["both_orders"]) == ("B", False, False)


def test_zero_weight_judge_is_listed_but_does_not_vote() -> None:
    records = both("j1", "r", 0, 1, 0) + both("j2", "r", 0, 1, 1)
    r = only(merge(frame(records), ConsensusPolicy(weights={"j2": 0.0})).pairwise, row_id="r")
    assert (r["winner"], r["agreement"], r["n_judges"]) == (0, 1.0, 2)


def test_pairs_are_kept_apart_and_absolute_judges_are_ignored() -> None:
    records = both("j1", "r", 0, 1, 0) + both("j1", "r", 0, 2, 2) + both("j1", "r", 1, 2, 1) + [score("s", "r", 0, 4.0)]
    pw = merge(frame(records)).pairwise.sort("candidate_a", "candidate_b")
    assert pw.select("candidate_a", "candidate_b", "winner").rows() == [(0, 1, 0), (0, 2, 2), (1, 2, 1)]


# ------------------------------------------------------------------ scores


def test_scores_mean_weighted_mean_median_and_spread() -> None:
    records = [score("s1", "r", 0, 5.0), score("s2", "r", 0, 1.0), score("s3", "r", 0, 3.0, feedback="ok")]
    c = merge(frame(records))
    assert c.scores.schema == pl.Schema(SCORES_SCHEMA)
    r = only(c.scores, row_id="r", candidate=0)
    # mean 3, median 3, population std sqrt(8/3), range 1..5
    assert (r["score"], r["score_median"], r["score_min"], r["score_max"]) == (3.0, 3.0, 1.0, 5.0)
    assert r["score_std"] == pytest.approx((8 / 3) ** 0.5)
    assert [j["score"] for j in r["by_judge"]] == [5.0, 1.0, 3.0]
    assert r["by_judge"][2]["feedback"] == "ok"
    # weights 2, 1, 1: (10 + 1 + 3) / 4 = 3.5
    weighted = only(merge(frame(records), ConsensusPolicy(weights={"s1": 2.0})).scores, candidate=0)
    assert weighted["score"] == pytest.approx(3.5)
    records.append(score("s4", "r", 0, 5.0))  # median of 1, 3, 5, 5 = 4, mean 3.5
    med = only(merge(frame(records), ConsensusPolicy(score_method="median")).scores, candidate=0)
    assert (med["score"], med["score_mean"]) == (4.0, 3.5)


def test_failed_scores_abstain_and_quorum() -> None:
    records = [score("s1", "r", 0, 4.0), score("s2", "r", 0, None, failed=True), score("s1", "r", 1, 2.0), score("s2", "r", 1, 3.0)]
    c = merge(frame(records), ConsensusPolicy(min_judges=2))
    r0, r1 = only(c.scores, candidate=0), only(c.scores, candidate=1)
    assert (r0["score"], r0["score_mean"], r0["n_judges"], r0["n_abstained"]) == (None, 4.0, 1, 1)
    assert (r1["score"], r1["n_judges"]) == (2.5, 2)


def test_by_judge_is_sorted_whatever_the_input_order() -> None:
    records = both("zed", "r", 0, 1, 0) + both("amy", "r", 0, 1, 0) + both("kim", "r", 0, 1, 1)
    records += [score("zed", "r", 0, 1.0), score("amy", "r", 0, 2.0)]
    c = merge(frame(records[::-1]))
    assert [j["judge"] for j in only(c.pairwise, row_id="r")["by_judge"]] == ["amy", "kim", "zed"]
    assert [j["judge"] for j in only(c.scores, row_id="r")["by_judge"]] == ["amy", "zed"]


def test_repeated_judgments_are_averaged_once_per_judge() -> None:
    # s1 judged candidate 0 twice (a resumed run): 2 and 4 -> 3; with s2's 5 the mean is 4, not 11/3.
    records = [score("s1", "r", 0, 2.0, feedback="first"), score("s1", "r", 0, 4.0, feedback="second"), score("s2", "r", 0, 5.0)]
    r = only(merge(frame(records)).scores, candidate=0)
    assert (r["score"], r["n_judges"]) == (4.0, 2)
    assert r["by_judge"][0]["feedback"] == "first\nsecond"


def test_empty_input_gives_empty_frames() -> None:
    c = merge(frame([]))
    assert c.pairwise.is_empty() and c.scores.is_empty()
    assert c.pairwise.schema == pl.Schema(PAIRWISE_SCHEMA)
    assert c.scores.schema == pl.Schema(SCORES_SCHEMA)


def test_lazy_input_and_relative_kind_are_accepted() -> None:
    records = [r | {"kind": "relative"} for r in both("j1", "r", 0, 1, 1)]
    c = merge(frame(records).lazy())
    assert only(c.pairwise, row_id="r")["winner"] == 1
