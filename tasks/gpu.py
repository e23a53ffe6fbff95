"""Prefect tasks for the GPU judges: one task run per chunk of requests, never per row.

A chunk is a slice (``offset``, ``length``) of a requests Parquet file, so no scratch files are
written and a retried task finds the same slice. The task skips the request ids already
recorded in ``out_dir`` (a retry or a re-run never judges twice) and writes one Parquet part
per chunk through ``JudgmentSink``.

Models are loaded once per process and cached here: starting vLLM or loading PairRM takes
seconds to minutes, and every chunk of a flow run (and every flow run a worker process
executes in process) reuses the same engine. Chunks run one after another: one GPU, one
engine, and ``vllm.LLM`` is not thread-safe.

Engine choice for Prometheus: ``engine["factory"]`` or the ``JUDGEFLOW_VLLM_ENGINE_FACTORY``
environment variable names a ``"module:callable"`` called as ``factory(model, EngineSettings)``;
the default starts ``vllm.LLM``. Tests and the CPU demo point it at the stand-in engine.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import threading
from pathlib import Path
from typing import Any

import orjson
import polars as pl
from prefect import task
from prefect.client.schemas.objects import TaskRun
from prefect.logging import get_run_logger
from prefect.states import State

from judgeflow.judging.records import JudgmentSink, read_judgments
from judgeflow.specs import JudgeSpec

ENGINE_FACTORY_ENV = "JUDGEFLOW_VLLM_ENGINE_FACTORY"
INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (OSError, MemoryError, ConnectionError)

_CACHE: dict[str, Any] = {}
_CACHE_LOCK = threading.Lock()


def _retry_on_infrastructure(task: Any, task_run: TaskRun, state: State[Any]) -> bool:
    """Retry a chunk only when it died of an infrastructure error, not of bad input or a bug."""
    try:
        state.result(raise_on_failure=True)
    except INFRASTRUCTURE_ERRORS:
        return True
    except BaseException:  # noqa: BLE001 - anything else is a bug or bad input: do not retry
        return False
    return False


def _cached(key: Any, build: Any) -> Any:
    """One model per (kind, model, settings) per process."""
    digest = hashlib.sha1(orjson.dumps(key, option=orjson.OPT_SORT_KEYS)).hexdigest()
    with _CACHE_LOCK:
        if digest not in _CACHE:
            _CACHE[digest] = build()
        return _CACHE[digest]


def _import(path: str) -> Any:
    module, _, name = path.partition(":")
    if not module or not name:
        raise ValueError(f"engine factory must be 'module:callable', got {path!r}")
    return getattr(importlib.import_module(module), name)


def vllm_engine(model: str, options: dict[str, Any] | None) -> Any:
    """The (cached) engine for ``model``: ``vllm.LLM`` or the configured factory's."""
    from judgeflow.gpu.prometheus_vllm import EngineSettings, load_engine

    opts = dict(options or {})
    factory_path = opts.pop("factory", None) or os.environ.get(ENGINE_FACTORY_ENV)
    settings = EngineSettings(**opts)
    factory = _import(factory_path) if factory_path else load_engine
    return _cached(["vllm", factory_path, model, opts], lambda: factory(model, settings))


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


def scan_table(path: str) -> pl.LazyFrame:
    """Rows or requests from Parquet (the pipeline's chunk files) or JSON Lines."""
    suffix = Path(path).suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return pl.scan_ndjson(path)
    return pl.scan_parquet(path)


def load_chunk(rows_path: str, requests_path: str, offset: int, length: int, out_dir: str) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """(rows the chunk needs, the chunk's requests not yet in ``out_dir``, how many were skipped)."""
    requests = scan_table(requests_path).slice(offset, length).collect()
    done = read_judgments(out_dir).select("request_id").collect()
    pending = requests.join(done, on="request_id", how="anti") if done.height else requests
    rows = scan_table(rows_path).join(
        pending.lazy().select("row_id").unique(), on="row_id", how="semi"
    ).collect()
    return rows, pending, requests.height - pending.height


def require_model(judge: JudgeSpec, example: str) -> str:
    """The checkpoint the spec names; JudgeSpec's API default (an OpenAI model) is a mistake here."""
    if judge.model == JudgeSpec.model_fields["model"].default:
        raise ValueError(
            f"judge {judge.name!r} (provider {judge.provider}): set model to a checkpoint, "
            f"e.g. {example!r} or a local directory"
        )
    return judge.model


def chunk_prefix(kind: str, spec: JudgeSpec, requests_path: str, offset: int) -> str:
    """Part-file prefix unique to (judge, requests file, slice): parallel runs never collide."""
    digest = hashlib.sha1(f"{Path(requests_path).resolve()}|{offset}".encode()).hexdigest()[:10]
    return f"{kind}-{spec.name}-{digest}"


@task(
    name="judge-chunk-prometheus-vllm",
    task_run_name="prometheus-vllm-{offset}",
    retries=1,
    retry_delay_seconds=30,
    retry_condition_fn=_retry_on_infrastructure,
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
    """Grade one slice of requests with Prometheus 2 on vLLM into ``out_dir``."""
    from judgeflow.gpu.prometheus_vllm import judge_prometheus_vllm

    judge = JudgeSpec.model_validate(spec)
    rows, pending, skipped = load_chunk(rows_path, requests_path, offset, length, out_dir)
    summary: dict[str, Any] = {"judge": judge.name, "requests": 0, "ok": 0, "failed": 0}
    if pending.height:
        llm = vllm_engine(require_model(judge, "prometheus-eval/prometheus-7b-v2.0"), engine)
        with JudgmentSink(out_dir, prefix=chunk_prefix("vllm", judge, requests_path, offset)) as sink:
            summary = judge_prometheus_vllm(judge, rows, pending, sink, engine=llm)
    summary["skipped"] = skipped
    get_run_logger().info(
        "%s: %d graded (%d failed), %d already done", judge.name, summary["requests"], summary["failed"], skipped
    )
    return summary


@task(
    name="judge-chunk-pairrm",
    task_run_name="pairrm-{offset}",
    retries=1,
    retry_delay_seconds=30,
    retry_condition_fn=_retry_on_infrastructure,
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
