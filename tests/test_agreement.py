"""Agreement statistics checked against direct library calls, known values and degenerate input."""

from __future__ import annotations

import json
from typing import Any

import krippendorff
import numpy as np
import polars as pl
import pytest
from scipy import stats
from sklearn.metrics import cohen_kappa_score

from judgeflow.agreement import HEATMAP_SCHEMA, AgreementReport, compute_agreement
from judgeflow.consensus import merge
from tests.test_consensus import both, frame, score, vote

RNG = np.random.default_rng(7)


def stat(report: AgreementReport, metric: str, a: str, b: str) -> Any:
    hits = [s for s in report.pairs if s.metric == metric and {s.judge_a, s.judge_b} == {a, b}]
    assert len(hits) == 1, report.pairs
    return hits[0]


def verdict_records(judge: str, winners: list[int | str]) -> list[dict[str, Any]]:
    """One pair (0, 1) per row k; winners[k] is 0, 1 or "tie", judged in both orders."""
    out: list[dict[str, Any]] = []
    for k, w in enumerate(winners):
        out += both(judge, f"r{k:05d}", 0, 1, w)
    return out


def score_records(judge: str, values: list[float | None]) -> list[dict[str, Any]]:
    return [score(judge, f"r{k:05d}", 0, v, failed=v is None) for k, v in enumerate(values)]


def test_perfect_verdict_agreement_is_one() -> None:
    labels: list[int | str] = [0, 1, "tie", 0, 1, 1, 0, "tie"]
    report = compute_agreement(frame(verdict_records("j1", labels) + verdict_records("j2", labels)))
    k = stat(report, "kappa_verdict", "j1", "j2")
    assert (k.value, k.n) == (pytest.approx(1.0), 8)
    assert report.alpha_verdicts == pytest.approx(1.0)
    assert report.pairwise_judges == ["j1", "j2"] and report.absolute_judges == []


def test_verdict_kappa_and_alpha_match_the_libraries() -> None:
    a = RNG.choice([0, 1, "tie"], size=300, p=[0.45, 0.45, 0.1]).tolist()
    b = [x if RNG.random() < 0.7 else RNG.choice([0, 1]).item() for x in a]
    a = [x if x == "tie" else int(x) for x in a]
    b = [x if x == "tie" else int(x) for x in b]
    c = [1 if x == 0 else 0 if x == 1 else x for x in a]  # j3 disagrees on purpose
    c[:100] = [None] * 100  # ... and abstains (failed) on the first 100 rows
    records = verdict_records("j1", a) + verdict_records("j2", b)
    for k, w in enumerate(c):
        if w is None:
            records += [vote("j3", f"r{k:05d}", 0, 1, None, failed=True)]
        else:
            records += both("j3", f"r{k:05d}", 0, 1, w)
    report = compute_agreement(merge(frame(records)))
    code = {0: "A", 1: "B", "tie": "tie"}
    la, lb = [code[x] for x in a], [code[x] for x in b]
    assert stat(report, "kappa_verdict", "j1", "j2").value == pytest.approx(cohen_kappa_score(la, lb))
    lc = [code[x] for x in c[100:]]
    k13 = stat(report, "kappa_verdict", "j1", "j3")
    assert (k13.n, k13.value) == (200, pytest.approx(cohen_kappa_score(la[100:], lc)))
    assert k13.value < 0
    nums = {"A": 0.0, "B": 1.0, "tie": 2.0}
    matrix = np.array(
        [[nums[x] for x in la], [nums[x] for x in lb], [np.nan] * 100 + [nums[x] for x in lc]]
    )
    expected = krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")
    assert report.alpha_verdicts == pytest.approx(expected)


def test_independent_judges_agree_at_chance() -> None:
    n = 3000
    a = RNG.integers(0, 2, n).tolist()
    b = RNG.integers(0, 2, n).tolist()
    report = compute_agreement(frame(verdict_records("j1", a) + verdict_records("j2", b)))
    assert abs(stat(report, "kappa_verdict", "j1", "j2").value) < 0.06
    assert abs(report.alpha_verdicts) < 0.06
    s1, s2 = RNG.integers(1, 6, n).astype(float).tolist(), RNG.integers(1, 6, n).astype(float).tolist()
    scores = compute_agreement(frame(score_records("s1", s1) + score_records("s2", s2)), kappa_weights="quadratic")
    assert abs(stat(scores, "kappa_score", "s1", "s2").value) < 0.06
    assert abs(stat(scores, "spearman", "s1", "s2").value) < 0.06
    assert abs(scores.alpha_scores) < 0.06


def test_score_statistics_match_the_libraries() -> None:
    s1 = RNG.integers(1, 6, 200).astype(float)
    s2 = np.clip(s1 + RNG.integers(-1, 2, 200), 1, 5)
    s2[s2 == 3] = 4  # no judge 2 score of 3: weighted kappa must still treat 2..4 as two steps
    s3: list[float | None] = [None, None] + np.clip(6 - s1[2:], 1, 5).tolist()
    records = score_records("s1", s1.tolist()) + score_records("s2", s2.tolist()) + score_records("s3", s3)
    report = compute_agreement(frame(records), kappa_weights="quadratic")
    labels = np.arange(1, 6)
    assert stat(report, "kappa_score", "s1", "s2").value == pytest.approx(
        cohen_kappa_score(s1, s2, weights="quadratic", labels=labels)
    )
    assert stat(report, "spearman", "s1", "s2").value == pytest.approx(stats.spearmanr(s1, s2).statistic)
    assert stat(report, "pearson", "s1", "s2").value == pytest.approx(stats.pearsonr(s1, s2).statistic)
    s13 = stat(report, "pearson", "s1", "s3")
    assert s13.n == 198 and s13.value == pytest.approx(-1.0)
    matrix = np.array([s1, s2, [np.nan, np.nan, *s3[2:]]], dtype=float)
    assert report.alpha_scores == pytest.approx(
        krippendorff.alpha(reliability_data=matrix, level_of_measurement="ordinal")
    )
    plain = compute_agreement(frame(records))
    assert stat(plain, "kappa_score", "s1", "s2").value == pytest.approx(cohen_kappa_score(s1, s2))


def test_position_consistency_rate() -> None:
    # j1: 3 pairs in both orders, one flipped with the order; one more pair judged in AB only.
    records = both("j1", "a", 0, 1, 0) + both("j1", "b", 0, 1, 1) + both("j1", "c", 0, 1, "tie")
    records += [vote("j1", "d", 0, 1, "A"), vote("j1", "d", 1, 0, "A", order="BA")]
    records += [vote("j1", "e", 0, 1, "B")]
    records += [vote("j2", "a", 0, 1, "A")]  # j2 never judged both orders
    report = compute_agreement(frame(records))
    by_judge = {p.judge: p for p in report.position_consistency}
    assert (by_judge["j1"].pairs_both_orders, by_judge["j1"].consistent) == (4, 3)
    assert by_judge["j1"].rate == pytest.approx(0.75)
    assert (by_judge["j2"].pairs_both_orders, by_judge["j2"].rate) == (0, None)


def test_degenerate_inputs_are_none_and_json_is_strict() -> None:
    one_judge = compute_agreement(frame(verdict_records("j1", [0, 1, 0]) + score_records("s1", [1.0, 2.0])))
    assert one_judge.pairs == [] and one_judge.alpha_verdicts is None and one_judge.alpha_scores is None
    constant = compute_agreement(frame(score_records("s1", [3.0] * 5) + score_records("s2", [3.0] * 5)))
    for metric in ("kappa_score", "spearman", "pearson"):
        assert stat(constant, metric, "s1", "s2").value is None
    assert constant.alpha_scores is None
    disjoint = compute_agreement(frame(score_records("s1", [1.0, 2.0]) + [score("s2", "other", 0, 4.0)]))
    assert stat(disjoint, "spearman", "s1", "s2").n == 0 and disjoint.alpha_scores is None
    empty = compute_agreement(frame([]))
    assert (empty.pairs, empty.position_consistency) == ([], [])
    for report in (one_judge, constant, disjoint, empty):
        text = report.model_dump_json()
        assert "NaN" not in text
        json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
        assert AgreementReport.model_validate_json(text) == report


def test_heatmap_frame_has_both_orientations() -> None:
    labels: list[int | str] = [0, 1, 1, 0, "tie"]
    records = verdict_records("a", labels) + verdict_records("b", labels) + verdict_records("c", labels[::-1])
    heat = compute_agreement(frame(records)).heatmap_frame()
    assert heat.schema == pl.Schema(HEATMAP_SCHEMA)
    assert heat.height == 6  # 3 judge pairs x 2 orientations
    ab = heat.filter((pl.col("judge_a") == "b") & (pl.col("judge_b") == "a")).row(0, named=True)
    assert (ab["metric"], ab["value"], ab["n"]) == ("kappa_verdict", pytest.approx(1.0), 5)


def test_score_judges_are_compared_with_pairwise_judges_on_implied_verdicts() -> None:
    import polars as pl

    from judgeflow.agreement import compute_agreement, implied_verdicts
    from judgeflow.schemas import JUDGMENTS_SCHEMA

    def j(**kw: object) -> dict[str, object]:
        base = {k: None for k in JUDGMENTS_SCHEMA}
        base.update(status="ok", attempts=1, input_tokens=0, output_tokens=0, cost_usd=0.0)
        base.update(kw)
        return base

    records = []
    for r, (s0, s1, verdict) in enumerate([(5, 1, "A"), (1, 4, "B"), (2, 5, "B"), (4, 2, "B")]):
        records += [
            j(request_id=f"s{r}0", row_id=f"r{r}", judge="grader", kind="absolute", candidate_a=0, score=float(s0)),
            j(request_id=f"s{r}1", row_id=f"r{r}", judge="grader", kind="absolute", candidate_a=1, score=float(s1)),
            j(request_id=f"p{r}", row_id=f"r{r}", judge="ranker", kind="relative", candidate_a=0, candidate_b=1,
              order="AB", verdict=verdict, preferred=0 if verdict == "A" else 1),
        ]
    frame = pl.DataFrame(records, schema=JUDGMENTS_SCHEMA)
    report = compute_agreement(frame)
    stat = next(s for s in report.pairs if {s.judge_a, s.judge_b} == {"ranker", "grader"})
    assert stat.metric == "kappa_verdict" and stat.n == 4
    # grader implies A, B, B, A; ranker says A, B, B, B: 3 of 4 agree
    from sklearn.metrics import cohen_kappa_score

    assert stat.value == pytest.approx(cohen_kappa_score(["A", "B", "B", "A"], ["A", "B", "B", "B"]))
    implied = implied_verdicts(pl.DataFrame({"row_id": ["x", "x"], "candidate": [0, 1], "judge": ["g", "g"], "score": [3.0, 3.0]}))
    assert implied["verdict"].to_list() == ["tie"]
