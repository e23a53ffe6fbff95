"""The GPU judge flows run for real (Prefect test harness) on CPU: stand-in vLLM, tiny PairRM."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from judgeflow.judging.records import read_judgments
from judgeflow.specs import JudgeSpec, expand_requests
from tests.stand_ins.rows import rows_frame

pytestmark = pytest.mark.prefect

FACTORY = "tests.stand_ins.vllm_engine:make_engine"


def _files(tmp_path: Path, spec: JudgeSpec) -> tuple[str, str, pl.DataFrame]:
    rows = rows_frame()
    requests = expand_requests(rows, spec)
    rows_path, requests_path = tmp_path / "rows.parquet", tmp_path / "requests.parquet"
    rows.write_parquet(rows_path)
    requests.write_parquet(requests_path)
    return str(rows_path), str(requests_path), requests


def test_prometheus_vllm_flow_chunks_retries_and_resumes(prefect_harness: Path, tmp_path: Path) -> None:
    from flows.gpu_judges import prometheus_vllm_judge
    from tasks.gpu import vllm_engine

    spec = JudgeSpec(name="prom-gpu", provider="vllm", mode="gpu", model="prometheus-eval/prometheus-7b-v2.0")
    rows_path, requests_path, requests = _files(tmp_path, spec)
    out_dir = str(tmp_path / "out")
    params = {"spec": spec.model_dump(mode="json"), "rows_path": rows_path, "requests_path": requests_path,
              "out_dir": out_dir, "chunk_size": 3, "engine": {"factory": FACTORY, "max_model_len": 4096}}
    summary = prometheus_vllm_judge(**params)
    assert summary | {"requests": 7, "ok": 7, "failed": 0, "skipped": 0, "chunks": 3} == summary
    got = read_judgments(out_dir).collect()
    assert sorted(got["request_id"]) == sorted(requests["request_id"])
    assert got["score"].is_between(1, 5).all()
    assert got.filter(pl.col("attempts") > 1).height == 1  # the "No idea" reply, re-generated once
    engine = vllm_engine(spec.model, {"factory": FACTORY, "max_model_len": 4096})  # the cached one
    assert engine.settings.max_model_len == 4096
    # slices of 3, 3 and 1 requests, one generate call each, plus one re-generation of one item
    assert sorted(len(c) for c in engine.calls) == [1, 1, 3, 3]
    # a second run finds everything judged: nothing is sent again
    calls_before = len(engine.calls)
    again = prometheus_vllm_judge(**params)
    assert again["skipped"] == 7 and again["requests"] == 0 and len(engine.calls) == calls_before
    assert read_judgments(out_dir).collect().height == 7


def test_engine_settings_in_the_spec_reach_the_engine_and_the_flow_overrides_them(
    prefect_harness: Path, tmp_path: Path
) -> None:
    """A build's judge spec says how its engine starts; the flow's ``engine`` parameter wins."""
    from flows.gpu_judges import prometheus_vllm_judge
    from tasks.gpu import _CACHE

    spec = JudgeSpec(name="prom-eng", provider="vllm", mode="gpu", model="tiny-engine-test",
                     engine={"dtype": "float32", "max_model_len": 2048, "enforce_eager": True,
                             "kv_cache_memory_bytes": 1 << 26, "extra": {"max_num_seqs": 4}})
    rows_path, requests_path, _ = _files(tmp_path, spec)
    summary = prometheus_vllm_judge(spec.model_dump(mode="json"), rows_path, requests_path, str(tmp_path / "o"),
                                    engine={"factory": FACTORY, "max_model_len": 1024, "extra": {"swap_space": 0}})
    assert summary["ok"] == 7
    started = [e for e in _CACHE.values() if getattr(e, "model", None) == "tiny-engine-test"]
    assert len(started) == 1  # the engine the chunk tasks started (and cached)
    settings = started[0].settings
    assert (settings.dtype, settings.max_model_len, settings.enforce_eager, settings.kv_cache_memory_bytes) == (
        "float32", 1024, True, 1 << 26)
    assert settings.extra == {"max_num_seqs": 4, "swap_space": 0}


def test_gpu_flow_refuses_the_api_default_model(prefect_harness: Path, tmp_path: Path) -> None:
    from flows.gpu_judges import prometheus_vllm_judge

    spec = JudgeSpec(name="prom-gpu", provider="vllm", mode="gpu")
    rows_path, requests_path, _ = _files(tmp_path, spec)
    with pytest.raises(ValueError, match="set model to a checkpoint"):
        prometheus_vllm_judge(spec.model_dump(mode="json"), rows_path, requests_path, str(tmp_path / "o"),
                              engine={"factory": FACTORY})


@pytest.mark.pairrm
def test_pairrm_flow_with_tiny_checkpoint(prefect_harness: Path, tmp_path: Path) -> None:
    pytest.importorskip("llm_blender")
    from flows.gpu_judges import pairrm_judge
    from judgeflow.gpu.pairrm_random import save_checkpoint

    checkpoint = save_checkpoint(tmp_path / "ckpt")
    spec = JudgeSpec(name="pairrm-gpu", kind="relative", provider="pairrm", mode="gpu", model=str(checkpoint))
    rows_path, requests_path, requests = _files(tmp_path, spec)
    out_dir = str(tmp_path / "out")
    summary = pairrm_judge(spec.model_dump(mode="json"), rows_path, requests_path, out_dir, chunk_size=4,
                           pairrm={"device": "cpu", "batch_size": 3})
    assert summary | {"requests": 10, "ok": 10, "failed": 0, "chunks": 3} == summary
    got = read_judgments(out_dir).collect()
    assert sorted(got["request_id"]) == sorted(requests["request_id"])
    assert set(got["verdict"]) <= {"A", "B"} and set(got["order"]) == {"AB", "BA"}
    assert ((got["verdict"] == "A") == (got["score"] > 0)).all()
