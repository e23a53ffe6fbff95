"""The Python API: judge rows from a notebook or a script, no Prefect, no deployment.

    import judgeflow
    judgments = judgeflow.judge(
        [{"instruction": "Name a prime.", "responses": ["7", "9"]}],
        judges=["prometheus-absolute"],
    )
    result = judgeflow.build(rows, judges=[...])   # consensus, agreement and pairs too

It runs the same core as the Prefect flow (rendering, clients, batch runner, GPU judges,
consensus, pairs) and the same judgment store, so results are cached between calls when a
``workdir`` is kept.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from judgeflow.config import BuildConfig, InputConfig
from judgeflow.finalize import Finalized, finalize
from judgeflow.judging.live import judge_live_sync
from judgeflow.judging.records import JudgmentSink, read_judgments
from judgeflow.loading import LoadResult, load_rows
from judgeflow.pipeline import plan_judges, run_judgments
from judgeflow.registry import JudgeRegistry
from judgeflow.schemas import ROWS_SCHEMA
from judgeflow.specs import JudgeSpec
from judgeflow.store import JudgmentStore

RowsLike = pl.DataFrame | Iterable[Mapping[str, Any]]
JudgesLike = Sequence[JudgeSpec | str | Mapping[str, Any]]


def resolve_judges(judges: JudgesLike, registry: JudgeRegistry | None = None) -> list[JudgeSpec]:
    """Judge specs from names (looked up in the registry), dicts or ``JudgeSpec`` objects."""
    registry = registry or JudgeRegistry()
    out = []
    for judge in judges:
        if isinstance(judge, JudgeSpec):
            out.append(judge)
        elif isinstance(judge, str):
            out.append(registry.get(judge))
        else:
            out.append(JudgeSpec.model_validate(dict(judge)))
    return out


def load(rows: RowsLike, *, max_text_chars: int = 100_000) -> LoadResult:
    """Validate in-memory rows exactly as files are validated (same mapping, same quarantine)."""
    frame = rows if isinstance(rows, pl.DataFrame) else pl.DataFrame(list(rows))
    with tempfile.TemporaryDirectory(prefix="judgeflow-api-") as tmp:
        path = Path(tmp) / "rows.jsonl"
        with path.open("wb") as handle:
            for record in frame.iter_rows(named=True):
                handle.write(orjson.dumps(record, default=str) + b"\n")
        return load_rows(path, max_text_chars=max_text_chars)


def _judge_on_gpu(spec: JudgeSpec, rows: pl.DataFrame, requests: pl.DataFrame, sink: JudgmentSink) -> None:
    """Prometheus 2 on a local vLLM engine, or PairRM through llm-blender, in this process."""
    if spec.provider == "vllm":
        from judgeflow.gpu.prometheus_vllm import judge_prometheus_vllm, load_engine

        judge_prometheus_vllm(spec, rows, requests, sink, engine=load_engine(spec.model))
    elif spec.provider == "pairrm":
        from judgeflow.gpu.pairrm import PairRM, judge_pairrm

        judge_pairrm(spec, rows, requests, sink, model=PairRM.load(spec.model))
    else:
        raise ValueError(f"judge {spec.name!r}: mode 'gpu' needs provider 'vllm' or 'pairrm'")


def _judge_into_store(
    specs: list[JudgeSpec], rows: pl.DataFrame, store: JudgmentStore, workdir: Path, *, retry_failed: bool = False
) -> None:
    plans = plan_judges(specs, rows, store, retry_failed=retry_failed)
    batch_specs = []
    for plan in plans:
        spec = plan.spec
        if plan.pending.is_empty():
            continue
        if spec.mode == "batch":
            batch_specs.append(plan)
        elif spec.mode == "live":
            with JudgmentSink(store.judge_dir(spec), prefix="api") as sink:
                judge_live_sync(spec, rows, plan.pending, sink)
        else:
            with JudgmentSink(store.judge_dir(spec), prefix="api-gpu") as sink:
                _judge_on_gpu(spec, rows, plan.pending, sink)
    if batch_specs:
        from judgeflow.batch.runner import run_batch_judges

        pending_ids = pl.concat([p.pending.select("row_id") for p in batch_specs]).unique()
        out_dir = workdir / "batch-out"
        run_batch_judges(
            rows.join(pending_ids, on="row_id", how="semi"),
            [p.spec for p in batch_specs], store.root / "batches", out_dir,
            pending={p.spec.name: p.pending["request_id"].to_list() for p in batch_specs},
        )
        for plan in batch_specs:
            produced = read_judgments(out_dir / plan.spec.name).collect()
            # only answers are never recorded twice; a newer failure record may replace an older one
            new = produced.join(store.answered_ids(plan.spec, retry_failed=True), on="request_id", how="anti")
            with JudgmentSink(store.judge_dir(plan.spec), prefix="api-batch") as sink:
                sink.extend(new.iter_rows(named=True))


def judge(
    rows: RowsLike,
    judges: JudgesLike,
    *,
    workdir: str | Path | None = None,
    registry: JudgeRegistry | None = None,
    retry_failed: bool = False,
) -> pl.DataFrame:
    """Judge ``rows`` with ``judges``; one judgment per (row, item, order, judge) as a DataFrame.

    ``rows``: a polars DataFrame or dicts in any layout ``judgeflow validate`` accepts. Invalid
    rows raise ``ValueError`` listing them (use ``load`` to inspect the quarantine instead).
    ``workdir`` keeps the judgment store: call again with the same one and nothing answered is
    re-sent; failures of the infrastructure (auth, connection, timeouts) are asked again, and
    with ``retry_failed`` the judges' own failures (unparseable, refused) too. A failed judgment
    has ``status`` ``failed``, ``error`` or ``not_sent`` and its reason in ``error``.
    """
    valid = _valid_rows(rows)
    specs = resolve_judges(judges, registry)
    with tempfile.TemporaryDirectory(prefix="judgeflow-") as scratch:
        root = Path(workdir) if workdir is not None else Path(scratch)
        store = JudgmentStore.at(root / "_store")
        _judge_into_store(specs, valid, store, root, retry_failed=retry_failed)
        return run_judgments(store, plan_judges(specs, valid, store))


def _valid_rows(rows: RowsLike) -> pl.DataFrame:
    """Rows in ``ROWS_SCHEMA``: already-validated frames pass through, anything else is loaded."""
    if isinstance(rows, pl.DataFrame) and rows.schema == pl.Schema(ROWS_SCHEMA):
        return rows
    loaded = load(rows)
    if loaded.quarantine.height:
        reasons = "; ".join(loaded.quarantine.get_column("reason").head(5).to_list())
        raise ValueError(f"{loaded.quarantine.height} invalid rows: {reasons}")
    return loaded.rows


def build(
    rows: RowsLike,
    judges: JudgesLike,
    *,
    workdir: str | Path | None = None,
    registry: JudgeRegistry | None = None,
    **config: Any,
) -> Finalized:
    """Judge, merge and draw preference pairs; ``config`` takes ``BuildConfig``'s other fields
    (``consensus={...}``, ``pairs={...}``). ``result.pairs`` is the TRL-ready DataFrame."""
    valid = _valid_rows(rows)
    specs = resolve_judges(judges, registry)
    build_config = BuildConfig(input=InputConfig(uri="<memory>"), judges=specs, **config)
    judgments = judge(valid, specs, workdir=workdir, registry=registry, retry_failed=build_config.retry_failed)
    return finalize(build_config, valid, judgments, run_id="api")
