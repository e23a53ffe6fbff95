"""Prometheus 2 through a vllm.LLM-shaped engine: whole-chunk generate, targeted re-generation."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from judgeflow.gpu.prometheus_vllm import (
    EngineSettings,
    build_prompts,
    judge_prometheus_vllm,
    load_engine,
    sampling_params,
)
from judgeflow.judging.records import JudgmentSink, read_judgments
from judgeflow.prompts import mistral_chat, render, template_hash
from judgeflow.specs import JudgeSpec, Sampling, expand_requests
from tests.stand_ins.rows import rows_frame
from tests.stand_ins.vllm_engine import StandInLLM


def _spec(**kw: object) -> JudgeSpec:
    base = {"name": "prom", "provider": "vllm", "mode": "gpu", "model": "prometheus-eval/prometheus-7b-v2.0"}
    return JudgeSpec(**{**base, **kw})


def _run(tmp_path: Path, spec: JudgeSpec, engine: StandInLLM) -> tuple[dict, pl.DataFrame, pl.DataFrame]:
    rows = rows_frame()
    requests = expand_requests(rows, spec)
    with JudgmentSink(tmp_path / "j") as sink:
        summary = judge_prometheus_vllm(spec, rows, requests, sink, engine=engine)
    return summary, requests, read_judgments(tmp_path / "j").collect()


def test_prompts_are_mistral_format_of_the_rendered_templates() -> None:
    spec = _spec()
    rows = rows_frame()
    requests = expand_requests(rows, spec)
    prompts, thash = build_prompts(spec, rows, requests)
    assert len(prompts) == requests.height == 7
    assert thash == template_hash(spec)
    assert all(p.startswith("[INST] ") and p.endswith("[/INST]") for p in prompts)
    first = requests.row(0, named=True)
    row = rows.filter(pl.col("row_id") == first["row_id"]).row(0, named=True)
    rendered = render(spec, instruction=row["instruction"], response_a=row["responses"][first["candidate_a"]],
                      reference=row["reference"])
    assert prompts[0] == mistral_chat(rendered.system, rendered.user)


def test_sampling_params_carry_the_spec_settings() -> None:
    params = sampling_params(_spec(sampling=Sampling(temperature=0.5, top_p=0.8, max_tokens=256, repetition_penalty=1.1)))
    assert (params.temperature, params.top_p, params.max_tokens, params.repetition_penalty) == (0.5, 0.8, 256, 1.1)
    default = sampling_params(_spec())
    assert (default.temperature, default.top_p, default.max_tokens, default.repetition_penalty) == (1.0, 0.9, 1024, 1.03)


def test_sampling_seed_reaches_every_generate_call(tmp_path: Path) -> None:
    """A seeded spec sends its seed with the whole chunk and with every re-generation round, as
    prometheus-eval's ``VLLM`` does when its params hold ``seed``; no seed, none sent."""
    assert sampling_params(_spec(sampling=Sampling(seed=1234))).seed == 1234
    assert sampling_params(_spec()).seed is None
    engine = StandInLLM(bad=lambda p: "Paris." in p, bad_first=1)
    _run(tmp_path, _spec(sampling=Sampling(seed=7)), engine)
    assert len(engine.params_seen) == 2 and all(p.seed == 7 for p in engine.params_seen)


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """A ``vllm`` module whose ``LLM`` records the keywords it was started with."""
    started: list[dict[str, Any]] = []
    module = types.ModuleType("vllm")
    module.LLM = lambda **kwargs: started.append(kwargs) or object()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", module)
    return started


def test_load_engine_passes_every_engine_setting(fake_vllm: list[dict[str, Any]]) -> None:
    load_engine("m", EngineSettings(dtype="float32", max_model_len=2048, enforce_eager=True,
                                    kv_cache_memory_bytes=64 << 20, extra={"max_num_batched_tokens": 8192}))
    assert fake_vllm[-1] == {
        "model": "m", "tensor_parallel_size": 1, "dtype": "float32", "gpu_memory_utilization": 0.9, "seed": 0,
        "max_model_len": 2048, "enforce_eager": True, "kv_cache_memory_bytes": 64 << 20,
        "max_num_batched_tokens": 8192,
    }
    load_engine("m")  # defaults: vLLM's own for everything unset
    assert fake_vllm[-1] == {"model": "m", "tensor_parallel_size": 1, "dtype": "auto",
                             "gpu_memory_utilization": 0.9, "seed": 0}


def test_whole_chunk_in_one_call_and_only_bad_items_regenerated(tmp_path: Path) -> None:
    engine = StandInLLM(bad=lambda p: "No idea, sorry." in p or "Paris." in p, bad_first=2)
    summary, requests, got = _run(tmp_path, _spec(max_parse_retries=3), engine)
    # round 1: all 7; rounds 2 and 3: only the two items whose replies did not parse
    assert [len(c) for c in engine.calls] == [7, 2, 2]
    assert set(engine.calls[1]) == set(engine.calls[2]) and set(engine.calls[1]) <= set(engine.calls[0])
    assert summary == summary | {"requests": 7, "ok": 7, "failed": 0, "rounds": 3, "generate_calls": 3}
    assert got.height == 7 and set(got["status"]) == {"ok"}
    assert sorted(got["attempts"].to_list()) == [1, 1, 1, 1, 1, 3, 3]
    assert got["score"].is_between(1, 5).all() and got["kind"].unique().to_list() == ["absolute"]
    assert got["feedback"].null_count() == 0 and got["raw_output"].str.contains(r"\[RESULT\]").all()
    assert set(got["template_hash"]) == {template_hash(_spec(max_parse_retries=3))}
    retried = got.filter(pl.col("attempts") == 3)
    assert (retried["input_tokens"] > 0).all() and (retried["output_tokens"] > 0).all()


def test_unparseable_after_all_rounds_is_failed_with_raw_output(tmp_path: Path) -> None:
    engine = StandInLLM(never_parse=lambda p: "Paris." in p)
    summary, _, got = _run(tmp_path, _spec(max_parse_retries=2), engine)
    assert [len(c) for c in engine.calls] == [7, 1, 1]
    assert summary["failed"] == 1 and summary["ok"] == 6
    failed = got.filter(pl.col("status") == "failed").row(0, named=True)
    assert failed["attempts"] == 3 and failed["score"] is None
    assert failed["error"].startswith("unparseable after 3 attempts")
    assert failed["raw_output"] == "Both responses have merits and I cannot decide which one is better."


def test_relative_grading_records_verdicts_per_shown_order(tmp_path: Path) -> None:
    engine = StandInLLM(bad=lambda p: "Lyon" in p)
    spec = _spec(kind="relative")
    summary, requests, got = _run(tmp_path, spec, engine)
    assert requests.height == 10 and summary["ok"] == 10
    assert [len(c) for c in engine.calls] == [10, 2]  # both orders of the Paris/Lyon pair
    assert set(got["verdict"]) <= {"A", "B"} and set(got["order"]) == {"AB", "BA"}
    for r in got.iter_rows(named=True):
        assert r["preferred"] == (r["candidate_a"] if r["verdict"] == "A" else r["candidate_b"])
    assert all("(A or B)" in p for p in engine.calls[0])


def test_oversized_prompts_fail_up_front(tmp_path: Path) -> None:
    class Tokenizer:
        def encode(self, text: str) -> list[int]:
            return list(range(len(text.split())))

    class Config:
        max_model_len = 1024 + 150  # room for ~150 words of prompt

    class Engine(StandInLLM):
        def get_tokenizer(self) -> Tokenizer:
            return Tokenizer()

        class llm_engine:  # noqa: N801 - the attribute path vllm.LLM has
            model_config = Config()

    engine = Engine()
    summary, requests, got = _run(tmp_path, _spec(), engine)
    too_long = got.filter(pl.col("error").str.starts_with("prompt too long"))
    assert too_long.height == summary["failed"] > 0
    assert (too_long["attempts"] == 0).all()
    assert sum(len(c) for c in engine.calls[:1]) == 7 - too_long.height


def test_empty_requests(tmp_path: Path) -> None:
    spec = _spec()
    rows = rows_frame()
    with JudgmentSink(tmp_path / "j") as sink:
        summary = judge_prometheus_vllm(spec, rows, expand_requests(rows, spec).head(0), sink, engine=StandInLLM())
    assert summary["requests"] == 0
