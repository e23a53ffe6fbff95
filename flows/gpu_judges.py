"""GPU judge flows: Prometheus 2 on vLLM and PairRM, one flow run per requests file.

Each runs in process (tests, the demo, a single GPU box: ``flows.judging`` calls them as
subflows) or as its own deployment on the GPU work pool (``prometheus-vllm-judge/...``,
``pairrm-judge/...``), since the two need different Python environments (vLLM wants
transformers 5, llm-blender 0.0.2 transformers 4). Parameters are JSON-friendly for that
reason: the spec as a dict, paths as strings, engine options as a dict.

vLLM cannot even share an environment with Prefect 3.8 (fastapi pins), so in the vLLM image the
flow runs in the Prefect environment and each Prometheus chunk runs
``judgeflow.gpu.vllm_runner`` in the vLLM environment (``JUDGEFLOW_VLLM_PYTHON``, see
``tasks.gpu``): then every chunk starts its own engine, so prefer a few large chunks there.

The requests file is cut into slices of ``chunk_size`` and each slice is one task run; the
slices run one after another on the one GPU, sharing one loaded model (``tasks.gpu`` caches
it). Judgments already in ``out_dir`` are skipped, so re-running a flow resumes it.
"""

from __future__ import annotations

import time
from typing import Any

from prefect import flow
from prefect.artifacts import create_table_artifact
from prefect.logging import get_run_logger

from judgeflow.specs import JudgeSpec
from tasks.gpu import judge_chunk_pairrm, judge_chunk_prometheus_vllm, scan_table

TOTAL_KEYS = ("requests", "ok", "failed", "skipped")


def _slices(requests_path: str, chunk_size: int) -> list[tuple[int, int]]:
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    total = scan_table(requests_path).select("request_id").collect().height
    return [(start, min(chunk_size, total - start)) for start in range(0, total, chunk_size)]


def _summarise(kind: str, spec: JudgeSpec, out_dir: str, parts: list[dict[str, Any]], started: float) -> dict[str, Any]:
    totals = {key: sum(int(p.get(key, 0)) for p in parts) for key in TOTAL_KEYS}
    summary = {"judge": spec.name, "kind": kind, "model": spec.model, "chunks": len(parts),
               "out_dir": out_dir, "seconds": round(time.perf_counter() - started, 3), **totals}
    create_table_artifact(
        key=f"gpu-judge-{kind}",
        table=[{k: p.get(k) for k in ("requests", "ok", "failed", "skipped", "seconds")} for p in parts],
        description=f"{spec.name} ({spec.model}): {totals['ok']} ok, {totals['failed']} failed, "
        f"{totals['skipped']} already judged",
    )
    get_run_logger().info("%s", summary)
    return summary


@flow(name="prometheus-vllm-judge")
def prometheus_vllm_judge(
    spec: dict[str, Any],
    rows_path: str,
    requests_path: str,
    out_dir: str,
    chunk_size: int = 5_000,
    engine: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Grade ``requests_path`` with Prometheus 2 on vLLM; judgments go to ``out_dir``.

    ``engine``: ``judgeflow.gpu.prometheus_vllm.EngineSettings`` fields (``tensor_parallel_size``
    for 8x7B, ``max_model_len`` ...) plus an optional ``factory`` ("module:callable").
    With ``JUDGEFLOW_VLLM_PYTHON`` set, each chunk runs under that interpreter and loads the
    model anew (no engine cache across processes): ``chunk_size`` should then be large enough
    that generation, not the engine start, dominates each chunk.
    """
    started = time.perf_counter()
    judge = JudgeSpec.model_validate(spec)
    parts = [
        judge_chunk_prometheus_vllm(judge.model_dump(mode="json"), rows_path, requests_path, offset, length, out_dir, engine)
        for offset, length in _slices(requests_path, chunk_size)
    ]
    return _summarise("prometheus-vllm", judge, out_dir, parts, started)


@flow(name="pairrm-judge")
def pairrm_judge(
    spec: dict[str, Any],
    rows_path: str,
    requests_path: str,
    out_dir: str,
    chunk_size: int = 20_000,
    pairrm: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Compare the candidate pairs of ``requests_path`` with PairRM; judgments go to ``out_dir``.

    ``pairrm``: ``PairRMSettings`` fields (``batch_size``, ``max_batch_tokens`` ...) plus
    ``device``, ``backbone`` (local DeBERTa-v3-large for offline nodes) and ``cache_dir``.
    """
    started = time.perf_counter()
    judge = JudgeSpec.model_validate(spec)
    parts = [
        judge_chunk_pairrm(judge.model_dump(mode="json"), rows_path, requests_path, offset, length, out_dir, pairrm)
        for offset, length in _slices(requests_path, chunk_size)
    ]
    return _summarise("pairrm", judge, out_dir, parts, started)
