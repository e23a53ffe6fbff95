"""Prefect tasks of the build that wrap ``judgeflow.pipeline`` / ``judgeflow.finalize``.

Each task takes and returns paths and small dicts, never big frames (Prefect pickles task
results), and does one step a person would name in the UI: plan, merge, report, summarise.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import orjson
import polars as pl
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE

from judgeflow.config import BuildConfig
from judgeflow.finalize import agreement_summary, finalize, judge_summary, published_tables
from judgeflow.judging.records import JudgmentSink, read_judgments
from judgeflow.health import judge_table
from judgeflow.pipeline import RunPaths, plan_judges, read_sent, run_judgments, write_chunk_files, write_sent
from judgeflow.report import dataset_summary, render_report, win_rates
from judgeflow.specs import JudgeSpec
from judgeflow.store import JudgmentStore


@task(name="plan-judging", cache_policy=NONE)
def plan_judging(config: BuildConfig, rows_path: str, paths: RunPaths) -> dict[str, Any]:
    """Expand each judge's requests, drop what the store already answered, write chunk files.

    Returns, per judge: totals, how many are cached, the chunk files (live/GPU) and a rows file
    holding only the rows still to judge (batch).
    """
    logger = get_run_logger()
    rows = pl.read_parquet(rows_path)
    store = JudgmentStore.at(paths.store_dir)
    set_aside = {spec.name: [item.message() for item in store.check_parts(spec)] for spec in config.judges}
    for message in (m for messages in set_aside.values() for m in messages):
        logger.warning("%s", message)  # named here; its requests are pending again below
    plans = plan_judges(config.judges, rows, store, use_cache=config.cache, retry_failed=config.retry_failed)
    write_sent(paths, plans)
    out: dict[str, Any] = {}
    for plan in plans:
        spec = plan.spec
        pending_rows = rows.join(plan.pending.select("row_id").unique(), on="row_id", how="semi")
        pending_rows_path = paths.work_dir / "chunks" / spec.name / "pending-rows.parquet"
        pending_rows_path.parent.mkdir(parents=True, exist_ok=True)
        pending_rows.write_parquet(pending_rows_path)
        chunk_files = write_chunk_files(plan, rows, paths.work_dir, config.chunk_size)
        out[spec.name] = {
            "pending_rows_key": str(pending_rows.get_column("row_id").sort().hash().sum()),
            "requests": plan.requests.height,
            "cached": plan.cached,
            "pending": plan.pending.height,
            "pending_rows_path": str(pending_rows_path),
            "chunks": [(str(r), str(q)) for r, q in chunk_files],
            "set_aside": set_aside[spec.name],
        }
        logger.info(
            "judge %r (%s, %s): %d requests, %d already judged, %d to send in %d chunks",
            spec.name, spec.mode, spec.model, plan.requests.height, plan.cached,
            plan.pending.height, len(chunk_files),
        )
    return out


@task(name="absorb-judgments", cache_policy=NONE)
def absorb_judgments(spec: JudgeSpec, source_dir: str, paths: RunPaths) -> int:
    """Copy judgments produced outside the store (batch, GPU) into it; returns how many were new."""
    store = JudgmentStore.at(paths.store_dir)
    produced = read_judgments(source_dir).collect()
    if produced.is_empty():
        return 0
    # only answers are never recorded twice: a failure may be replaced by a newer try's record
    new = produced.join(store.answered_ids(spec, retry_failed=True), on="request_id", how="anti")
    with JudgmentSink(store.judge_dir(spec), prefix=f"{paths.run_id}-{spec.mode}") as sink:
        sink.extend(new.iter_rows(named=True))
    return new.height


@task(name="merge-judges-and-build-pairs", cache_policy=NONE)
def merge_and_build_pairs(config: BuildConfig, rows_path: str, paths: RunPaths) -> dict[str, Any]:
    """Consensus, agreement, pairs and row outcomes, written into the run dir."""
    logger = get_run_logger()
    rows = pl.read_parquet(rows_path)
    store = JudgmentStore.at(paths.store_dir)
    plans = plan_judges(config.judges, rows, store, use_cache=True)
    judgments = run_judgments(store, plans)
    result = finalize(config, rows, judgments, paths.run_id)
    run_dir = paths.run_dir
    for name, table in published_tables(result, judgments).items():  # sorted: byte-identical reruns
        table.write_parquet(run_dir / f"{name}.parquet")
    (run_dir / "agreement.json").write_bytes(
        orjson.dumps(result.agreement.model_dump(mode="json"), option=orjson.OPT_INDENT_2)
    )
    result.agreement.heatmap_frame().write_parquet(paths.work_dir / "agreement_heatmap.parquet")
    per_judge = judge_summary(judgments)
    judges = judge_table(judgments, read_sent(paths), [spec.name for spec in config.judges])
    per_judge.write_parquet(paths.work_dir / "judge_summary.parquet")
    counts = result.counts() | {
        "judgments": judgments.height,
        "judgments_failed": int((judgments["status"] != "ok").sum()) if judgments.height else 0,
    }
    logger.info(
        "merged %d judgments: %d rows judged, %d failed, %d pairs",
        judgments.height, counts["rows_judged"], counts["rows_failed"], counts["pairs"],
    )
    return {
        "counts": counts,
        "agreement": agreement_summary(result.agreement),
        "cost_usd": float(judgments["cost_usd"].sum()) if judgments.height else 0.0,
        "parse_failures": int(per_judge["parse_failures"].sum()) if per_judge.height else 0,
        "judges": judges.to_dicts(),
    }


@task(name="write-report", cache_policy=NONE)
def write_report(config: BuildConfig, paths: RunPaths, summary: dict[str, Any]) -> str:
    """The HTML report beside the dataset (``report.html``)."""
    html = render_report(
        title=f"judgeflow: {config.dataset} {paths.day} {paths.run_id}",
        summary=dataset_summary(summary),  # no run history: a rebuild gives the same bytes
        judgments=pl.read_parquet(paths.run_dir / "judgments.parquet"),
        pairs=pl.read_parquet(paths.run_dir / "pairs.parquet"),
        agreement=pl.read_parquet(paths.work_dir / "agreement_heatmap.parquet"),
    )
    path = paths.run_dir / "report.html"
    path.write_text(html, encoding="utf-8")
    return str(path)


@task(name="summary-artifacts", cache_policy=NONE)
def summary_artifacts(paths: RunPaths, summary: dict[str, Any]) -> None:
    """The run's summary table, per-judge table and win rates, as Prefect artifacts."""
    create_table_artifact(
        key="build-summary",
        table=[{"metric": k, "value": v} for k, v in summary.items()],
        description=f"Build {paths.run_id}: rows, judgments, agreement, cost",
    )
    per_judge = pl.read_parquet(paths.work_dir / "judge_summary.parquet")
    if per_judge.height:
        create_table_artifact(key="judges", table=per_judge.to_dicts(), description="Per judge")
    rates = win_rates(pl.read_parquet(paths.run_dir / "pairs.parquet"))
    if rates.height:
        create_table_artifact(
            key="win-rates", table=rates.to_dicts(), description="Win rate by candidate model"
        )
    create_markdown_artifact(
        key="build-report",
        markdown=f"Report: `{paths.run_dir / 'report.html'}`\n\nRun folder: `{paths.run_dir}`",
        description="Where this build's outputs are",
    )


def clean_work_dir(paths: RunPaths) -> None:
    """Drop the run's scratch folder (chunk files) once the outputs are written."""
    shutil.rmtree(paths.work_dir, ignore_errors=True)


def judgments_dir(paths: RunPaths, spec: JudgeSpec, kind: str) -> Path:
    """Where a batch or GPU judge writes before its results are absorbed into the store."""
    return paths.work_dir / f"{kind}-out" / spec.name
