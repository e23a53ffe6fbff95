"""Prefect tasks around ``judgeflow.batch``: one task per judge to submit, one per batch to poll
and to collect, never one per row.

* ``submit_batches``  per judge: chunks, ledger, upload + create (re-attaches on a re-run);
* ``poll_batch``      per batch: sleeps inside the task with a growing interval until the batch
  ends; transient errors of the status call are retried inside, and the task's own retries
  (``exponential_backoff`` + ``retry_jitter_factor``) cover a status API that stays down longer;
* ``collect_batch``   per batch: results -> judgment records; submits the follow-up round and
  returns its entry ids;
* ``run_batch_judges_in_flow``: the wiring, to call inside a flow. All judges' batches are
  submitted and polled concurrently (``.submit`` futures); it returns once every lineage is done,
  so consensus can start on the returned judgments, with the anomalies its result files held
  (for the build report). It keeps a progress artifact and writes table artifacts with per-batch
  counts and, if any, the anomalies.

Why sleep inside a task rather than ``suspend_flow_run``: see docs/batch.md.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import polars as pl
from prefect import get_run_logger, task
from prefect.exceptions import TerminationSignal
from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact
from prefect.futures import PrefectFuture, wait
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from judgeflow.batch.ledger import LedgerEntry
from judgeflow.batch.runner import (
    CANCELLATION,
    BatchWorkspace,
    anomalies_of,
    cancel_open_batches,
    collect_entry,
    finalize_judge,
    follow_up,
    is_transient,
    log_anomalies,
    make_provider,
    submit_judge,
    wait_for_batch,
)
from judgeflow.batch.types import BatchProvider, BatchStatus
from judgeflow.specs import JudgeSpec
from tasks.secrets import resolve_api_key


def _provider(spec: JudgeSpec) -> BatchProvider:
    """The judge's batch provider, its key from the environment or a Prefect Secret block."""
    return make_provider(spec, api_key=resolve_api_key(spec))


def _retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry only what a later attempt can fix (429/5xx/connection), not bugs or bad input.

    ``is_transient`` imports nothing, so this cannot fail while an SDK is being imported."""
    try:
        state.result()
    except Exception as exc:  # noqa: BLE001 - we only classify it
        return is_transient(exc)
    return False


def _pending_ids(paths: Sequence[str] | None) -> set[str] | None:
    """The request ids in the plan's pending-request files (None: every request of the rows)."""
    if paths is None:
        return None
    return {rid for p in paths for rid in pl.read_parquet(p, columns=["request_id"])["request_id"].to_list()}


@task(
    name="submit-batches", task_run_name="submit-batches-{spec.name}",
    retries=3, retry_delay_seconds=exponential_backoff(backoff_factor=2), retry_jitter_factor=0.5,
    retry_condition_fn=_retry_transient, cache_policy=NO_CACHE,
)
def submit_batches(
    spec: JudgeSpec, rows_path: str, workdir: str, pending_paths: list[str] | None = None
) -> list[str]:
    """Write the judge's chunk files and submit them (ledger first); returns their entry ids.

    ``pending_paths``: Parquet files of the requests still to ask (the plan's); only those are
    sent, never a request of the same rows that is already answered.
    A retry after a transient error is safe: chunks already in the ledger are re-attached.
    """
    rows = pl.read_parquet(rows_path)
    entries = submit_judge(spec, rows, BatchWorkspace.at(workdir), _provider(spec), _pending_ids(pending_paths))
    get_run_logger().info("judge %s: %d batches submitted or re-attached", spec.name, len(entries))
    return [e.entry_id for e in entries]


@task(
    name="poll-batch", task_run_name="poll-batch-{entry_id}",
    retries=4, retry_delay_seconds=exponential_backoff(backoff_factor=5), retry_jitter_factor=0.5,
    retry_condition_fn=_retry_transient, cache_policy=NO_CACHE,
)
def poll_batch(spec: JudgeSpec, workdir: str, entry_id: str, deadline_at: float) -> BatchStatus:
    """Wait (sleeping in this task's thread, no CPU) until the batch ends or the deadline passes."""
    ws = BatchWorkspace.at(workdir)
    logger = get_run_logger()

    def report(entry: LedgerEntry, status: BatchStatus) -> None:
        logger.info("%s %s: %s", entry.judge, status.batch_id, status.counts())

    return wait_for_batch(ws, _provider(spec), spec, entry_id, deadline_at=deadline_at, on_status=report)


@task(
    name="collect-batch", task_run_name="collect-batch-{entry_id}",
    retries=3, retry_delay_seconds=exponential_backoff(backoff_factor=2), retry_jitter_factor=0.5,
    retry_condition_fn=_retry_transient, cache_policy=NO_CACHE,
)
def collect_batch(
    spec: JudgeSpec, workdir: str, entry_id: str, status: BatchStatus | None, deadline_at: float,
    run_started_at: float = 0.0,
) -> list[str]:
    """Collect one ended batch into judgment records; submit its follow-up round if needed.

    Returns the follow-up entry ids (empty when every request is settled or no round is left).
    """
    ws = BatchWorkspace.at(workdir)
    provider = _provider(spec)
    collected = collect_entry(ws, provider, spec, entry_id, status)
    get_run_logger().info("%s: %d ok, %d not ok", entry_id, collected.ok, collected.failed)
    child = follow_up(ws, provider, spec, collected, deadline_at=deadline_at, run_started_at=run_started_at)
    return [child.entry_id] if child is not None else []


def _progress(ws: BatchWorkspace) -> tuple[float, str]:
    """Share of round-1 requests that have an outcome, from the ledger (no API calls)."""
    entries = [e for e in ws.ledger.entries().values() if e.round == 1]
    total = sum(int(e.chunk.get("count", 0)) for e in entries)
    done = sum(int(e.chunk.get("count", 0)) if e.status == "collected"
               else e.counts.get("succeeded", 0) + e.counts.get("errored", 0)
               + e.counts.get("expired", 0) + e.counts.get("cancelled", 0)
               for e in entries)
    pct = 100.0 * done / total if total else 100.0
    return pct, f"{done}/{total} requests ended in {len(entries)} batches"


def batch_table(ws: BatchWorkspace) -> list[dict[str, Any]]:
    """One row per batch: what the table artifact shows (ids, round, status, counts)."""
    return [
        {"judge": e.judge, "round": e.round, "batch_id": e.batch_id, "status": e.status,
         "provider_status": e.provider_status, "requests": e.chunk.get("count"),
         "succeeded": e.counts.get("succeeded", 0), "errored": e.counts.get("errored", 0),
         "expired": e.counts.get("expired", 0), "cancelled": e.counts.get("cancelled", 0),
         "retried": e.retry_ids if e.follow_ups else 0, "error": e.error}
        for e in sorted(ws.ledger.entries().values(), key=lambda e: (e.judge, e.round, e.chunk_key))
    ]


@dataclass
class BatchStageResult:
    """What the batch stage hands the build: each judge's judgments folder, and what its result
    files held that they should not have (one row per anomaly, counts by kind)."""

    out_dirs: dict[str, str]
    anomalies: list[dict[str, Any]] = field(default_factory=list)
    anomaly_counts: dict[str, int] = field(default_factory=dict)


def run_batch_judges_in_flow(
    specs: Sequence[JudgeSpec],
    rows_path: str | Path,
    workdir: str | Path,
    out_dir: str | Path,
    *,
    tick_s: float = 1.0,
    pending_requests: Mapping[str, Sequence[str]] | None = None,
) -> BatchStageResult:
    """Run every batch judge of ``specs`` from inside a flow; returns each judge's judgments
    folder and the anomalies of this run's batches.

    ``pending_requests`` maps a judge to the Parquet files of its requests still to ask (the
    plan's chunk request files); a judge not in it asks every request of the rows.
    Each chunk's lineage is poll -> collect -> (follow-up poll -> collect ...), chained by futures,
    so a slow batch never holds back another's follow-up. A re-run with the same ``workdir``
    re-attaches to every batch in its ledger. If the flow is cancelled or interrupted while
    waiting, open batches are cancelled where ``spec.batch.cancel_on_flow_cancel``.
    """
    ws = BatchWorkspace.at(workdir)
    by_name = {s.name: s for s in specs}
    started = time.time()
    deadline_at = started + max(s.batch.deadline_s for s in specs)
    progress_id: UUID = create_progress_artifact(0.0, key="batch-progress", description="batch judging")
    pending_paths = pending_requests or {}
    subs = {
        s.name: submit_batches.submit(
            s, str(rows_path), str(workdir),
            list(pending_paths[s.name]) if s.name in pending_paths else None,
        )
        for s in specs
    }
    pending: dict[PrefectFuture[list[str]], JudgeSpec] = {}
    driven: dict[str, list[str]] = {s.name: [] for s in specs}

    def start(spec: JudgeSpec, eid: str) -> None:
        driven[spec.name].append(eid)
        status = poll_batch.submit(spec, str(workdir), eid, deadline_at)
        pending[collect_batch.submit(spec, str(workdir), eid, status, deadline_at, started)] = spec

    try:
        for name, fut in subs.items():
            for eid in fut.result():
                start(by_name[name], eid)
        last = -1.0
        while pending:
            done = wait(list(pending), timeout=tick_s).done
            for fut in done:
                spec = pending.pop(fut)
                for child in fut.result():  # raises if the lineage failed: the flow fails too
                    start(spec, child)
            pct, text = _progress(ws)
            if pct != last:
                update_progress_artifact(progress_id, pct, description=text)
                last = pct
    except (*CANCELLATION, TerminationSignal):
        to_cancel = {n: _provider(s) for n, s in by_name.items() if s.batch.cancel_on_flow_cancel}
        if to_cancel:
            cancel_open_batches(ws, to_cancel)
        raise
    update_progress_artifact(progress_id, 100.0, description=_progress(ws)[1])
    create_table_artifact(batch_table(ws), key="batch-batches", description="batches per judge and round")
    entry_ids = [eid for ids in driven.values() for eid in ids]
    counts = log_anomalies(ws, entry_ids, since=started)
    anomalies = anomalies_of(ws, entry_ids, since=started)
    if anomalies:
        create_table_artifact(anomalies, key="batch-anomalies",
                              description="result-file anomalies and ledger recoveries of this run's batches")
    out: dict[str, str] = {}
    for spec in specs:
        path = Path(out_dir) / spec.name
        finalize_judge(ws, spec, path, driven[spec.name])
        out[spec.name] = str(path)
    return BatchStageResult(out, anomalies, counts)
