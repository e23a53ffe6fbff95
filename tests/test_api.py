"""The notebook API: the same core as the flow, no Prefect, results as polars frames."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import judgeflow
from judgeflow.errors import UserError
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


# --- issue 15 item 6: inline judges, what happened, keys never kept -------------------------

INLINE_KEY = "sk-inline-notebook-key-0123456789"


def _inline(sim: Simulator, **extra: object) -> dict:
    """A judge declared in the call itself: endpoint, key and concurrency, no config, no env var."""
    return {"name": "inline", "provider": "openai-compatible", "base_url": sim.openai_base_url,
            "model": "prometheus-7b-v2.0", "api_key": INLINE_KEY, "concurrency": 4,
            "price_input_per_mtok": 1.0, "price_output_per_mtok": 2.0, **extra}


def test_judge_reports_what_happened_per_judge(make_simulator: Any, tmp_path: Path) -> None:
    sim = make_simulator(rate_429=0.2, seed=3, require_api_key=INLINE_KEY)
    result = judgeflow.judge(_rows(), [_inline(sim, max_retries=20)], workdir=tmp_path)
    assert isinstance(result.frame, pl.DataFrame) and result.frame.height == 24
    stats = result.stats.row(0, named=True)
    assert stats["judge"] == "inline" and stats["judgments"] == 24
    assert stats["sent"] == 24 and stats["from_store"] == 0
    assert stats["ok"] == 24 and stats["failed"] == 0
    assert sim.stats()["faults_total"] > 0
    assert stats["retries"] == sim.stats()["faults_total"]  # every injected 429 was retried once
    assert stats["cost_usd"] == pytest.approx(result.frame["cost_usd"].sum()) and stats["cost_usd"] > 0
    assert stats["requests_per_s"] > 0
    text = repr(result)
    assert "24 sent" in text and "0 answered from the store" in text and "inline" in text

    sim.reset_stats()
    again = judgeflow.judge(_rows(), [_inline(sim)], workdir=tmp_path)
    assert sim.stats()["chat_completions"] == 0
    stats = again.stats.row(0, named=True)
    assert stats["sent"] == 0 and stats["from_store"] == 24 and stats["cost_usd"] == 0
    assert again.frame.sort("request_id").equals(result.frame.sort("request_id"))


def test_the_result_still_answers_as_the_frame(simulator: Simulator) -> None:
    """Code written when ``judge`` returned the DataFrame keeps working."""
    result = judgeflow.judge(_rows(2), [_inline(simulator)])
    assert result.height == 4 and len(result) == 4
    assert (result["status"] == "ok").all()
    assert result.filter(pl.col("candidate_a") == 0).height == 2


def test_an_inline_key_is_never_stored_logged_or_shown(
    make_simulator: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # the server refuses the key and echoes it back in its 401 body, as some gateways do
    sim = make_simulator(require_api_key="sk-the-right-one-000000000", echo_api_key=True)
    with caplog.at_level(logging.DEBUG):
        result = judgeflow.judge(_rows(3), [_inline(sim, max_retries=0)], workdir=tmp_path)
    assert (result.frame["status"] == "error").all()
    assert sim.stats()["unauthorized"] > 0
    shown = [repr(result), str(result.stats), result.frame.write_json(), caplog.text]
    assert all(INLINE_KEY not in text for text in shown)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert INLINE_KEY.encode() not in path.read_bytes(), path
    assert "[redacted]" in " ".join(result.frame["error"].to_list())


def test_a_key_pasted_as_the_variable_name_is_refused_without_echoing_it(simulator: Simulator) -> None:
    judge = _inline(simulator)
    judge["api_key_env"] = judge.pop("api_key")
    with pytest.raises(ValueError, match="api_key_env") as info:
        judgeflow.judge(_rows(1), [judge])
    assert INLINE_KEY not in str(info.value)


def test_a_registered_vllm_judge_without_vllm_says_what_to_do() -> None:
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    with pytest.raises(RuntimeError) as info:
        judgeflow.judge(_rows(1), ["prometheus-absolute"])
    message = str(info.value)
    assert "prometheus-absolute" in message and "vllm" in message
    assert "openai-compatible" in message and "base_url" in message
    assert not isinstance(info.value, ModuleNotFoundError)
    assert isinstance(info.value, UserError) and info.value.where == "judge 'prometheus-absolute'"
