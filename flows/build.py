"""The nightly build: rows in, preference dataset out.

load -> validate -> (generate) -> judge -> merge -> pairs -> report -> write -> publish

A build that is not a dataset (a judge failed more than ``max_failed_fraction`` of its requests,
no pair came out of the rows, or no row came in) writes its run folder with ``"status":
"failed"`` in the manifest, publishes nothing, and ends its flow run Failed with the reasons
(``judgeflow.health``).

Every step is a task or subflow named for what it does, so the Prefect UI reads like this page.
The one parameter is a typed ``BuildConfig``: the UI renders it as a form, `judgeflow run
CONFIG.yaml` and the demo pass the same model.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl
from prefect import flow, get_run_logger
from prefect.states import Failed, State

from judgeflow.batch.reconcile import describe as describe_anomalies
from judgeflow.config import BuildConfig
from judgeflow.health import JUDGE_TABLE_SCHEMA, BuildFailed, build_failures
from judgeflow.names import ensure_folder
from judgeflow.pipeline import derive_run_id, run_paths
from flows.judging import judge_rows
from tasks.build import (
    clean_work_dir,
    merge_and_build_pairs,
    plan_judging,
    summary_artifacts,
    write_report,
)
from tasks.io import load_and_validate
from tasks.publish import publish_outputs, write_outputs


def _build_day() -> date:
    """The schedule's date when run by a deployment (a late run keeps its night), else today."""
    try:
        from prefect.runtime import flow_run

        scheduled = flow_run.scheduled_start_time
        if scheduled is not None:
            return scheduled.date()
    except Exception:  # noqa: BLE001 - outside a deployment there is no schedule
        pass
    return datetime.now(UTC).date()


def _ensure(folder: Path) -> Path:
    """``output.dir``, created; one clear ``ValueError`` when it is (or runs through) a file."""
    return ensure_folder(folder, "output.dir")


@flow(name="build-preference-dataset", log_prints=False)
def build_preference_dataset(config: BuildConfig) -> dict[str, Any] | State:
    """Judge the input rows with every configured judge and publish a preference dataset.

    Returns the build's result; a failed build returns a Failed state holding ``BuildFailed``
    (calling the flow raises it; ``return_state=True`` gives the state).
    """
    logger = get_run_logger()
    started = datetime.now(UTC)
    staging = Path(tempfile.mkdtemp(prefix=".loading-", dir=_ensure(Path(config.output.dir))))
    loaded = load_and_validate(config.input, str(staging), config.output.s3)
    rows = pl.read_parquet(loaded["rows_path"])
    if config.input.limit:
        rows = rows.head(config.input.limit)

    paths = run_paths(config, derive_run_id(config, rows, _build_day()), _build_day())
    rows_path = str(paths.run_dir / "rows.parquet")
    rows.write_parquet(rows_path)
    pl.read_parquet(loaded["quarantine_path"]).write_parquet(paths.run_dir / "quarantine.parquet")
    shutil.rmtree(staging, ignore_errors=True)
    logger.info("run %s: %d rows in, %d valid, %d quarantined", paths.run_id,
                loaded["counts"]["rows_in"], rows.height, loaded["counts"]["rows_quarantined"])

    if config.generation.enabled:
        from flows.generate import generate_candidates

        rows_path = generate_candidates(config, rows_path, paths)

    plan = plan_judging(config, rows_path, paths)
    judged = judge_rows(config, plan, paths)
    merged = merge_and_build_pairs(config, rows_path, paths)

    not_selected = loaded["counts"]["rows_valid"] - rows.height  # input.limit
    counts = {
        # rows beyond input.limit are not part of this build: rows_in counts what it took in
        "rows_in": loaded["counts"]["rows_in"] - not_selected,
        "rows_quarantined": loaded["counts"]["rows_quarantined"],
        "rows_not_selected": not_selected,
        **merged["counts"],
        "requests_sent": sum(p["pending"] for p in plan.values()),
        "requests_cached": sum(p["cached"] for p in plan.values()),
    }
    summary = {
        "run_id": paths.run_id,
        **counts,
        "parse_failures": merged["parse_failures"],
        "cost_usd": round(merged["cost_usd"], 6),
        **{k: v for k, v in merged["agreement"].items() if v is not None},
    }
    if judged.get("batch_anomalies"):  # bad result lines, unknown or duplicate custom_ids, ledger repairs
        summary["batch_anomalies"] = describe_anomalies(judged["batch_anomalies"])
    judges = pl.DataFrame(merged["judges"], schema=JUDGE_TABLE_SCHEMA)
    failures = build_failures(judges, rows_in=counts["rows_in"], rows_valid=rows.height,
                              pairs=counts["pairs"], max_failed_fraction=config.max_failed_fraction)
    status = {"status": "failed", "failures": failures} if failures else {"status": "complete"}
    report_path = write_report(config, paths, summary)
    manifest_path = write_outputs(config, paths, counts, started, extra=status)
    published = None
    if config.output.publish_uri and failures:
        logger.warning("run %s failed: not publishing it to %s", paths.run_id, config.output.publish_uri)
    elif config.output.publish_uri:
        published = publish_outputs(config, paths)
    summary_artifacts(paths, summary)
    clean_work_dir(paths)
    logger.info("run %s done: %d pairs from %d judged rows (%s live chunks)", paths.run_id,
                counts["pairs"], counts["rows_judged"], judged["live_chunks"])
    result = {
        "summary": summary,
        "counts": counts,
        "judges": merged["judges"],
        "set_aside": [m for p in plan.values() for m in p.get("set_aside", [])],
        **status,
        "run_dir": str(paths.run_dir),
        "report": report_path,
        "manifest": manifest_path,
        "published": published,
    }
    if failures:
        message = "build failed: " + "; ".join(failures)
        logger.error("run %s: %s", paths.run_id, message)
        return Failed(message=message, data=BuildFailed(message, result))
    return result
