"""The build's plumbing, free of Prefect: run ids, paths, what to judge, how to chunk, counts.

The Prefect flow (``flows/build.py``) and the Python API (``judgeflow.api``) both call these
functions, so a build does the same thing whether it runs as a deployment or in a notebook.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import orjson
import polars as pl

from judgeflow.config import BuildConfig
from judgeflow.names import check_name, ensure_folder
from judgeflow.specs import JudgeSpec, expand_requests
from judgeflow.store import JudgmentStore


@dataclass(frozen=True)
class RunPaths:
    """Where one run keeps its files.

    ``run_dir`` = ``{output.dir}/{dataset}/{date}/{run_id}``: what gets published.
    ``store_dir`` = ``{output.dir}/{dataset}/_store``: judgments and batch ledgers shared by every
    run of the dataset (the incremental cache), never published as part of a run.
    ``work_dir`` = scratch space (chunk files) under the run dir, not published.
    """

    run_id: str
    day: str
    run_dir: Path
    store_dir: Path
    work_dir: Path

    @property
    def sent_path(self) -> Path:
        """(judge, request_id) of the requests this run sends, written by the plan step."""
        return self.work_dir / "plan" / "sent.parquet"

    @property
    def prefix(self) -> str:
        """The run's key prefix in the publish target: ``{dataset}/{date}/{run_id}/``."""
        return f"{self.run_dir.parent.parent.name}/{self.day}/{self.run_id}/"


def config_fingerprint(config: BuildConfig) -> str:
    """Hash of what determines the dataset (not where it is written or how fast)."""
    relevant = config.model_dump(
        mode="json",
        exclude={"output", "run_id", "chunk_size", "budget_usd", "cache", "retry_failed", "max_failed_fraction"},
    )
    for judge in relevant["judges"]:
        for key in ("concurrency", "requests_per_minute", "tokens_per_minute", "timeout_s",
                    "max_retries", "base_url", "api_key_env", "transport", "batch", "engine"):
            judge.pop(key, None)
    return hashlib.sha256(orjson.dumps(relevant, option=orjson.OPT_SORT_KEYS)).hexdigest()[:12]


def derive_run_id(config: BuildConfig, rows: pl.DataFrame, day: date) -> str:
    """``config.run_id``, or a stable id: the same build of the same rows on the same day gets the
    same id, so a crashed or repeated run overwrites its own output instead of adding a twin."""
    if config.run_id:
        return config.run_id
    content = hashlib.sha256()
    for value in rows.get_column("content_hash").sort().to_list():
        content.update(value.encode())
    return f"{day:%Y%m%d}-{config_fingerprint(config)[:8]}-{content.hexdigest()[:8]}"


def run_paths(config: BuildConfig, run_id: str, day: date) -> RunPaths:
    """Lay out the run's folders (and create them); names and ``output.dir`` are checked first."""
    check_name(config.dataset, "dataset")
    check_name(run_id, "run_id")
    dataset_dir = ensure_folder(config.output.dir, "output.dir") / config.dataset
    run_dir = dataset_dir / f"{day:%Y-%m-%d}" / run_id
    paths = RunPaths(
        run_id=run_id,
        day=f"{day:%Y-%m-%d}",
        run_dir=run_dir,
        store_dir=dataset_dir / "_store",
        work_dir=run_dir.parent / f".{run_id}.work",
    )
    for folder in (paths.run_dir, paths.store_dir, paths.work_dir):
        folder.mkdir(parents=True, exist_ok=True)
    return paths


@dataclass(frozen=True)
class JudgePlan:
    """What one judge must answer in this run, and what the store already knows."""

    spec: JudgeSpec
    requests: pl.DataFrame  # every request of this run
    pending: pl.DataFrame  # the ones to send now

    @property
    def cached(self) -> int:
        return self.requests.height - self.pending.height


def plan_judges(
    specs: list[JudgeSpec], rows: pl.DataFrame, store: JudgmentStore, *, use_cache: bool = True,
    retry_failed: bool = False,
) -> list[JudgePlan]:
    """Expand every judge's requests and subtract what the store already answered.

    Failures of the infrastructure and requests never sent stay pending (see
    ``judgeflow.store``); ``retry_failed`` keeps the judge's own failures pending too.
    """
    plans = []
    for spec in specs:
        requests = expand_requests(rows, spec)
        pending = store.pending(spec, requests, retry_failed=retry_failed) if use_cache else requests
        plans.append(JudgePlan(spec=spec, requests=requests, pending=pending))
    return plans


def chunks(frame: pl.DataFrame, size: int) -> Iterator[pl.DataFrame]:
    """``frame`` in slices of ``size`` rows: the unit of one Prefect task."""
    for offset in range(0, frame.height, size):
        yield frame.slice(offset, size)


def write_chunk_files(plan: JudgePlan, rows: pl.DataFrame, work_dir: Path, size: int) -> list[tuple[Path, Path]]:
    """Write each chunk's requests and the rows they need as Parquet; tasks get paths, not frames."""
    folder = work_dir / "chunks" / plan.spec.name
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for index, chunk in enumerate(chunks(plan.pending, size)):
        requests_path = folder / f"requests-{index:05d}.parquet"
        rows_path = folder / f"rows-{index:05d}.parquet"
        chunk.write_parquet(requests_path)
        rows.join(chunk.select("row_id").unique(), on="row_id", how="semi").write_parquet(rows_path)
        out.append((rows_path, requests_path))
    return out


def sent_requests(plans: list[JudgePlan]) -> pl.DataFrame:
    """(judge, request_id) of every request the plans send: what "this run" paid for."""
    frames = [plan.pending.select(pl.lit(plan.spec.name).alias("judge"), "request_id") for plan in plans]
    if not frames:
        return pl.DataFrame(schema={"judge": pl.String, "request_id": pl.String})
    return pl.concat(frames)


def write_sent(paths: RunPaths, plans: list[JudgePlan]) -> None:
    """Keep what this run sends, so the merge step can tell it from what the store answered."""
    paths.sent_path.parent.mkdir(parents=True, exist_ok=True)
    sent_requests(plans).write_parquet(paths.sent_path)


def read_sent(paths: RunPaths) -> pl.DataFrame:
    """What ``write_sent`` kept (nothing when the plan step did not run)."""
    if not paths.sent_path.exists():
        return sent_requests([])
    return pl.read_parquet(paths.sent_path)


def run_judgments(store: JudgmentStore, plans: list[JudgePlan]) -> pl.DataFrame:
    """This run's judgments of every judge, read back from the store."""
    frames = [store.judgments_for(plan.spec, plan.requests) for plan in plans]
    return pl.concat(frames) if frames else pl.DataFrame()


def row_outcomes(rows: pl.DataFrame, judgments: pl.DataFrame) -> pl.DataFrame:
    """One line per valid row: judged (at least one usable judgment) or failed, with the reason.

    ``rows_in == rows_judged + rows_failed + rows_quarantined`` follows: each valid row lands in
    exactly one of the first two, and quarantined rows never reach this point.
    """
    per_row = judgments.group_by("row_id").agg(
        (pl.col("status") == "ok").sum().alias("ok"),
        pl.len().alias("judgments"),
        pl.col("error").drop_nulls().first().alias("first_error"),
    )
    return (
        rows.select("row_id")
        .join(per_row, on="row_id", how="left")
        .with_columns(pl.col("ok", "judgments").fill_null(0))
        .with_columns(
            pl.when(pl.col("ok") > 0).then(pl.lit("judged")).otherwise(pl.lit("failed")).alias("outcome"),
            pl.when(pl.col("ok") > 0)
            .then(pl.lit(None, dtype=pl.String))
            .when(pl.col("judgments") == 0)
            .then(pl.lit("no judgment was produced"))
            .otherwise(pl.col("first_error").fill_null("every judgment failed"))
            .alias("reason"),
        )
        .select("row_id", "outcome", "reason", "judgments", "ok")
    )
