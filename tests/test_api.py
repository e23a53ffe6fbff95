"""The notebook API: the same core as the flow, no Prefect, results as polars frames."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import judgeflow
from judgeflow.simulator import Simulator, expected_preference, expected_score


def _rows(n: int = 12) -> list[dict]:
    return [
        {"instruction": f"Describe step {i} of a deploy.", "responses": [f"Step {i} is short.", f"Step {i} checks health, then shifts traffic gradually."]}
        for i in range(n)
    ]


def _judges(sim: Simulator) -> list[dict]:
    common = {"provider": "openai-compatible", "base_url": sim.openai_base_url, "api_key_env": "API_TEST_KEY",
              "model": "prometheus-7b-v2.0"}
    return [
        {"name": "grader", "kind": "absolute", **common},
        {"name": "ranker", "kind": "relative", **common},
    ]


def test_judge_returns_judgments_equal_to_the_simulators_verdicts(simulator: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_TEST_KEY", "k")
    rows = _rows()
    judgments = judgeflow.judge(rows, _judges(simulator))
    assert judgments.height == 12 * 2 + 12 * 2  # 2 absolute + 1 pair x 2 orders per row
    assert (judgments["status"] == "ok").all()
    assert judgments["request_id"].is_unique().all()
    text = {r["instruction"]: r["responses"] for r in rows}
    frame_rows = judgeflow.api.load(rows).rows.select("row_id", "instruction")
    joined = judgments.join(frame_rows, on="row_id")
    for j in joined.iter_rows(named=True):
        responses = text[j["instruction"]]
        if j["kind"] == "absolute":
            assert j["score"] == expected_score(responses[j["candidate_a"]])
        else:
            verdict = expected_preference(responses[j["candidate_a"]], responses[j["candidate_b"]])
            assert j["verdict"] == verdict


def test_build_gives_pairs_and_workdir_caches(simulator: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_TEST_KEY", "k")
    result = judgeflow.build(_rows(), _judges(simulator), workdir=tmp_path, pairs={"min_margin": 0})
    assert isinstance(result.pairs, pl.DataFrame)
    assert result.counts()["rows_judged"] == 12
    assert {"prompt", "chosen", "rejected"} <= set(result.pairs.columns)
    simulator.reset_stats()
    again = judgeflow.judge(_rows(), _judges(simulator), workdir=tmp_path)
    assert simulator.stats()["chat_completions"] == 0
    assert again.height == 48


def test_invalid_rows_are_reported_not_dropped() -> None:
    with pytest.raises(ValueError, match="1 invalid rows"):
        judgeflow.judge([{"instruction": "", "responses": ["a"]}, *_rows(1)], ["prometheus-absolute"])
