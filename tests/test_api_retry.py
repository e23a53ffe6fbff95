"""The notebook API asks failures of the infrastructure again, and the judges' own with
``retry_failed`` (issue 13 item 7), through the same store as the flow."""

from __future__ import annotations

from pathlib import Path

import pytest

import judgeflow
from judgeflow.simulator import Simulator

KEY = "sk-api-retry-0123456789"


def _rows(n: int = 6) -> list[dict]:
    return [{"instruction": f"Name fact {i}.", "responses": [f"Fact {i}.", f"A longer fact {i}, with care."]}
            for i in range(n)]


def _judge(sim: Simulator) -> list[dict]:
    return [{"name": "grader", "kind": "absolute", "provider": "openai-compatible", "model": "prometheus-7b-v2.0",
             "base_url": sim.openai_base_url, "api_key_env": "API_RETRY_KEY", "max_retries": 1,
             "max_parse_retries": 0}]


def test_a_fixed_key_gets_every_request_asked_again(simulator: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    simulator.configure(require_api_key=KEY)
    monkeypatch.setenv("API_RETRY_KEY", "sk-wrong-key-000000000")
    first = judgeflow.judge(_rows(), _judge(simulator), workdir=tmp_path)
    assert first.height == 12 and (first["status"] == "error").all()
    monkeypatch.setenv("API_RETRY_KEY", KEY)
    simulator.reset_stats()
    second = judgeflow.judge(_rows(), _judge(simulator), workdir=tmp_path)
    assert (second["status"] == "ok").all() and simulator.stats()["successful_answers"] == 12


def test_the_judges_own_failures_are_final_unless_retry_failed(simulator: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_RETRY_KEY", KEY)
    simulator.configure(rate_unparseable=1.0)
    first = judgeflow.judge(_rows(), _judge(simulator), workdir=tmp_path)
    assert (first["status"] == "failed").all()
    simulator.configure(rate_unparseable=0.0)
    simulator.reset_stats()
    same = judgeflow.judge(_rows(), _judge(simulator), workdir=tmp_path)
    assert (same["status"] == "failed").all() and simulator.stats()["chat_completions"] == 0
    again = judgeflow.judge(_rows(), _judge(simulator), workdir=tmp_path, retry_failed=True)
    assert (again["status"] == "ok").all() and simulator.stats()["successful_answers"] == 12
