"""Prefect tasks for the GPU judges: one task run per chunk of requests, never per row.

A chunk is a slice (``offset``, ``length``) of a requests Parquet file, so no scratch files are
written and a retried task finds the same slice. The task skips the request ids already
recorded in ``out_dir`` (a retry or a re-run never judges twice) and writes one Parquet part
per chunk through ``JudgmentSink``.

Models are loaded once per process and cached here: starting vLLM or loading PairRM takes
seconds to minutes, and every chunk of a flow run (and every flow run a worker process
executes in process) reuses the same engine. Chunks run one after another: one GPU, one
engine, and ``vllm.LLM`` is not thread-safe.

Engine settings for Prometheus: the judge spec's ``engine`` (dtype, max_model_len, KV-cache
size ...), with the flow's ``engine`` parameter on top. Engine choice: ``engine["factory"]`` or
the ``JUDGEFLOW_VLLM_ENGINE_FACTORY`` environment variable names a ``"module:callable"`` called
as ``factory(model, EngineSettings)``; the default starts ``vllm.LLM``. Tests and the CPU demo
point it at the stand-in engine.

Two environments: vLLM cannot share a Python environment with Prefect 3.8 (fastapi pins). When
``JUDGEFLOW_VLLM_PYTHON`` names the vLLM environment's interpreter, the Prometheus chunk runs
there as ``python -m judgeflow.gpu.vllm_runner`` (a subprocess per chunk: its log lines go to
the task's run logger, a non-zero exit fails the task with the runner's output tail); unset,
it runs in this process as before.
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Any

import orjson
from prefect import task
from prefect.logging import get_run_logger

from judgeflow.gpu.chunks import chunk_prefix, load_chunk, require_model, scan_table
from judgeflow.gpu.vllm_runner import (
    ENGINE_FACTORY_ENV,
    build_engine,
    engine_recipe,
    merged_engine_options,
    run_chunk,
    run_out_of_process,
)
from judgeflow.judging.records import JudgmentSink
from judgeflow.specs import JudgeSpec
from tasks.retries import retry_on_infrastructure

__all__ = [
    "ENGINE_FACTORY_ENV", "VLLM_PYTHON_ENV", "chunk_prefix", "judge_chunk_pairrm",
    "judge_chunk_prometheus_vllm", "load_chunk", "pairrm_model", "require_model",
    "scan_table", "vllm_engine",
]

VLLM_PYTHON_ENV = "JUDGEFLOW_VLLM_PYTHON"

_CACHE: dict[str, Any] = {}
_CACHE_LOCK = threading.Lock()



def _cached(key: Any, build: Any) -> Any:
    """One model per (kind, model, settings) per process."""
    digest = hashlib.sha1(orjson.dumps(key, option=orjson.OPT_SORT_KEYS)).hexdigest()
    with _CACHE_LOCK:
        if digest not in _CACHE:
            _CACHE[digest] = build()
        return _CACHE[digest]


def vllm_engine(model: str, options: dict[str, Any] | None) -> Any:
    """The (cached) engine for ``model``: ``vllm.LLM`` or the configured factory's."""
    from judgeflow.gpu.prometheus_vllm import EngineSettings

    factory_path, opts = engine_recipe(options)
    settings = EngineSettings.model_validate(opts).model_dump(mode="json")  # defaults spelt out or not: one key
    return _cached(["vllm", factory_path, model, settings], lambda: build_engine(model, options))


def pairrm_model(model: str, options: dict[str, Any] | None) -> Any:
    """The (cached) PairRM for ``model`` (hub id or local directory)."""
    from judgeflow.gpu.pairrm import PairRM, PairRMSettings

    opts = dict(options or {})
    load_kwargs = {k: opts.pop(k) for k in ("device", "backbone", "cache_dir") if k in opts}
    settings = PairRMSettings(**opts)
    return _cached(
        ["pairrm", model, load_kwargs, opts],
        lambda: PairRM.load(model, settings=settings, **load_kwargs),
    )


@task(
    name="judge-chunk-prometheus-vllm",
    task_run_name="prometheus-vllm-{offset}",
    retries=1,
    retry_delay_seconds=30,
    retry_condition_fn=retry_on_infrastructure,
)
def judge_chunk_prometheus_vllm(
    spec: dict[str, Any],
    rows_path: str,
    requests_path: str,
    offset: int,
    length: int,
    out_dir: str,
    engine: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Grade one slice of requests with Prometheus 2 on vLLM into ``out_dir``.

    With ``JUDGEFLOW_VLLM_PYTHON`` set, the slice is judged by ``judgeflow.gpu.vllm_runner``
    under that interpreter (the vLLM environment); otherwise here, with the cached engine.
    """
    judge = JudgeSpec.model_validate(spec)
    logger = get_run_logger()
    python = os.environ.get(VLLM_PYTHON_ENV)
    options = merged_engine_options(judge, engine)  # the spec's engine, the flow's on top
    if python:
        logger.info("%s: judging slice %d+%d in the vLLM environment (%s)", judge.name, offset, length, python)
        summary = run_out_of_process(
            python, judge, rows_path, requests_path, out_dir, offset=offset, length=length,
            engine_options=options, on_line=lambda level, line: logger.log(level, "[vllm] %s", line),
        )
    else:
        summary = run_chunk(
            judge, rows_path, requests_path, out_dir, offset=offset, length=length,
            engine=lambda: vllm_engine(judge.model, options),
        )
    logger.info(
        "%s: %d graded (%d failed), %d already done",
        judge.name, summary["requests"], summary["failed"], summary["skipped"],
    )
    return summary


@task(
    name="judge-chunk-pairrm",
    task_run_name="pairrm-{offset}",
    retries=1,
    retry_delay_seconds=30,
    retry_condition_fn=retry_on_infrastructure,
)
def judge_chunk_pairrm(
    spec: dict[str, Any],
    rows_path: str,
    requests_path: str,
    offset: int,
    length: int,
    out_dir: str,
    pairrm: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Compare one slice of candidate pairs with PairRM into ``out_dir``."""
    from judgeflow.gpu.pairrm import judge_pairrm

    judge = JudgeSpec.model_validate(spec)
    rows, pending, skipped = load_chunk(rows_path, requests_path, offset, length, out_dir)
    summary: dict[str, Any] = {"judge": judge.name, "requests": 0, "ok": 0, "failed": 0}
    if pending.height:
        model = pairrm_model(require_model(judge, "llm-blender/PairRM"), pairrm)
        with JudgmentSink(out_dir, prefix=chunk_prefix("pairrm", judge, requests_path, offset)) as sink:
            summary = judge_pairrm(judge, rows, pending, sink, model=model)
    summary["skipped"] = skipped
    get_run_logger().info(
        "%s: %d pairs scored (%d failed), %d already done", judge.name, summary["requests"], summary["failed"], skipped
    )
    return summary
