"""Candidate generation against the simulator: fills rows, records models, never pays twice."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from judgeflow.config import GenerationConfig
from judgeflow.loading import content_hashes
from judgeflow.simulator import Simulator
from judgeflow.simulator.judge import generate


def _rows() -> pl.DataFrame:
    frame = pl.DataFrame(
        {
            "row_id": ["a", "b", "c"],
            "instruction": ["Say hi.", "Explain DNS.", "Sort a list in Python."],
            "responses": [["hello"], [], ["sorted(xs)", "xs.sort()", "heapq"]],
            "models": [["human"], [], ["m1", "m2", "m3"]],
            "reference": [None, None, None],
            "metadata": ["{}", "{}", "{}"],
            "source_index": [0, 1, 2],
        },
        schema_overrides={"reference": pl.String},
    )
    return frame.with_columns(content_hashes(frame).alias("content_hash"))


def test_generation_fills_rows_and_is_cached(simulator: Simulator, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GEN_KEY", "k")
    config = GenerationConfig.model_validate(
        {
            "enabled": True,
            "n_candidates": 3,
            "generators": [
                {"name": "g1", "provider": "openai-compatible", "model": "llama-3.1-8b",
                 "base_url": simulator.openai_base_url, "api_key_env": "GEN_KEY"},
                {"name": "g2", "provider": "anthropic", "model": "claude-3-5-haiku-latest",
                 "base_url": simulator.anthropic_base_url, "api_key_env": "GEN_KEY"},
            ],
        }
    )
    from judgeflow.generation import generate_candidates

    rows = _rows()
    filled, log = generate_candidates(rows, config, tmp_path)
    by_id = {r["row_id"]: r for r in filled.iter_rows(named=True)}
    assert [len(by_id[i]["responses"]) for i in ("a", "b", "c")] == [3, 3, 3]
    # slot k is written by generator k % 2: row a gets slots 1 (g2) and 2 (g1)
    assert by_id["a"]["models"] == ["human", "claude-3-5-haiku-latest", "llama-3.1-8b"]
    assert by_id["b"]["models"] == ["llama-3.1-8b", "claude-3-5-haiku-latest", "llama-3.1-8b"]
    assert by_id["b"]["responses"][0] == generate("Explain DNS.")
    assert by_id["c"]["responses"] == ["sorted(xs)", "xs.sort()", "heapq"]  # untouched
    assert by_id["a"]["content_hash"] != rows.row(0, named=True)["content_hash"]
    assert log.height == 5 and log["error"].is_null().all()
    sent = simulator.stats()
    assert sent["chat_completions"] + sent["messages"] == 5

    simulator.reset_stats()
    again, _ = generate_candidates(rows, config, tmp_path)
    assert again.equals(filled)
    assert simulator.stats()["chat_completions"] + simulator.stats()["messages"] == 0
