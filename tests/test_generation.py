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


def _one_generator(simulator: Simulator) -> GenerationConfig:
    return GenerationConfig.model_validate(
        {
            "enabled": True,
            "n_candidates": 3,
            "generators": [{"name": "g1", "provider": "openai-compatible", "model": "llama-3.1-8b",
                            "base_url": simulator.openai_base_url, "api_key_env": "GEN_KEY"}],
        }
    )


def test_concurrent_chunks_never_overwrite_each_others_part(simulator: Simulator, tmp_path: Path, monkeypatch) -> None:
    """Two generation tasks of one build (different row chunks, one store) run at the same time:
    both list the store before either writes, and both wrote ``part-00000`` (issue 13 item 10)."""
    from concurrent.futures import ThreadPoolExecutor

    from judgeflow.generation import generate_candidates

    monkeypatch.setenv("GEN_KEY", "k")
    simulator.configure(latency_ms=400.0)  # both chunks are in flight before either writes
    config = _one_generator(simulator)
    rows = _rows()
    chunks = [rows.slice(0, 1), rows.slice(1, 1)]  # row a needs 2 candidates, row b 3
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda chunk: generate_candidates(chunk, config, tmp_path), chunks))
    generated = sum(log.height for _, log in results)
    assert generated == 5
    parts = sorted((tmp_path / "generations").glob("*.parquet"))
    assert len(parts) == 2, parts
    simulator.configure(latency_ms=0.0)
    simulator.reset_stats()
    for chunk in chunks:  # everything generated is in the store: nothing is sent again
        generate_candidates(chunk, config, tmp_path)
    assert simulator.stats()["chat_completions"] == 0


def test_a_corrupt_generation_part_is_set_aside_and_regenerated(simulator: Simulator, tmp_path: Path, monkeypatch) -> None:
    from judgeflow.generation import generate_candidates

    monkeypatch.setenv("GEN_KEY", "k")
    config = _one_generator(simulator)
    rows = _rows()
    first, _ = generate_candidates(rows, config, tmp_path)
    (part,) = (tmp_path / "generations").glob("*.parquet")
    part.write_bytes(part.read_bytes()[:20])  # cut short
    (tmp_path / "generations" / "part-zero.parquet").write_bytes(b"")
    simulator.reset_stats()
    again, _ = generate_candidates(rows, config, tmp_path)
    assert again.equals(first)
    assert simulator.stats()["chat_completions"] == 5  # what the cut part held, asked again
    assert sorted(p.name for p in (tmp_path / "generations").glob("*.corrupt")) == [
        part.name + ".corrupt", "part-zero.parquet.corrupt"]
