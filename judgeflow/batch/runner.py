"""Batch judging without Prefect: submit, poll, collect, re-submit, resume.

The pieces are plain functions over a ``BatchWorkspace`` (a directory with the ledger, the chunk
files and the collected results), so the Prefect tasks in ``tasks/batch.py`` and the standalone
``run_batch_judges`` share every line of logic:

* ``prepare_chunks``  rows x spec -> chunk files (deterministic, so a re-run gets the same keys);
* ``submit_chunk``    ledger intent -> upload -> create -> ledger ``submitted`` (or re-attach);
* ``wait_for_batch``  poll with a growing interval, backoff+jitter on 429/5xx, overall deadline;
* ``collect_entry``   stream results, parse, record judgments; failures become retry candidates;
* ``follow_up``       re-submit errored/expired/cancelled/unparseable requests (next round);
* ``drive_entry``     the above for one chunk's lineage until no round is left;
* ``finalize_judge``  one judgment per request (the last round's), written with ``JudgmentSink``.

Each lineage runs in its own thread: a sleeping thread costs no CPU, and the SDK clients are
synchronous. ``python -m judgeflow.batch.runner`` runs a build from files (used by the crash test).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import shutil
import signal
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from judgeflow.batch.ledger import Ledger, LedgerEntry, entry_id
from judgeflow.batch.requests import Chunk, follow_up_chunks, write_chunks
from judgeflow.batch.reconcile import BatchMismatchError as BatchMismatchError  # re-exported
from judgeflow.batch.reconcile import Reconciler
from judgeflow.batch.types import BatchProvider, BatchStatus
from judgeflow.clients.base import TransientError
from judgeflow.cost import cost_of
from judgeflow.judging.records import JudgmentSink, judgment_record, read_judgments
from judgeflow.parsing import ParseError, parse_reply
from judgeflow.prompts import render_requests
from judgeflow.schemas import JUDGMENTS_SCHEMA
from judgeflow.specs import JudgeSpec, expand_requests

log = logging.getLogger(__name__)

StatusCallback = Callable[[LedgerEntry, BatchStatus], None]

#: Consecutive transient errors of the status call tolerated before ``wait_for_batch`` gives up
#: (the Prefect task retries on top; the SDK already retried each call twice).
MAX_TRANSIENT_ERRORS = 8
#: What counts as "the build was cancelled" (Ctrl-C, SIGTERM via SystemExit, task cancellation).
#: Prefect's own ``TerminationSignal`` is added by ``tasks/batch.py``; other errors fail the
#: build without cancelling anything, so a re-run can re-attach.
CANCELLATION: tuple[type[BaseException], ...] = (KeyboardInterrupt, SystemExit, asyncio.CancelledError)

#: After the deadline a cancel is sent; this long is then allowed for the batch to wind down so
#: its finished requests can still be collected.
CANCEL_GRACE_S = 60.0
#: How far back a build with no ledger entry for a chunk looks for an OpenAI batch of that chunk
#: (a batch lives at most 24 h plus finalizing).
LEDGERLESS_LOOKBACK_S = 26 * 3600.0


class TransientPollError(RuntimeError):
    """The status call kept failing with transient errors (429/5xx/connection)."""


@dataclass(frozen=True)
class BatchWorkspace:
    """Where a build's batch state lives: ``<root>/ledger.json``, chunks, collected results.

    Put it next to the build's output (e.g. ``<out>/batch``) so a re-run of the same build finds it.
    """

    root: Path

    @classmethod
    def at(cls, root: str | Path) -> BatchWorkspace:
        path = Path(root)
        path.mkdir(parents=True, exist_ok=True)
        return cls(path)

    @property
    def ledger(self) -> Ledger:
        return Ledger(self.root / "ledger.json")

    def chunk_dir(self, judge: str, round_: int, parent_key: str | None = None) -> Path:
        base = self.root / "chunks" / judge / f"r{round_}"
        return base / f"from-{parent_key}" if parent_key else base

    def collected_dir(self, eid: str) -> Path:
        return self.root / "collected" / eid.replace(":", "_")


# ---------------------------------------------------------------------------------------------
# providers
# ---------------------------------------------------------------------------------------------


def make_provider(spec: JudgeSpec, api_key: str | None = None) -> BatchProvider:
    """The SDK-backed provider for ``spec.provider`` (``api_key``, else read from the environment).

    Imported lazily: each SDK takes seconds to import, and a build needs only its judges' SDKs.
    """
    if spec.provider == "openai":
        from judgeflow.batch.openai_batch import OpenAIBatchProvider

        return OpenAIBatchProvider(spec, api_key=api_key)
    if spec.provider == "anthropic":
        from judgeflow.batch.anthropic_batch import AnthropicBatchProvider

        return AnthropicBatchProvider(spec, api_key=api_key)
    raise ValueError(f"judge {spec.name!r}: provider {spec.provider!r} has no Batch API")


#: The SDKs' error classes a later identical call may not meet (``APITimeoutError`` is an
#: ``APIConnectionError``). Matched by class name and top-level module along the exception's MRO:
#: no SDK module is touched, so the check cannot fail while an SDK is still being imported
#: (another thread's first ``import anthropic`` leaves a partially initialised module in
#: ``sys.modules``, and reading an attribute of it inside Prefect's retry condition raised and
#: skipped the retry).
_TRANSIENT_SDK_ERRORS = frozenset({"APIConnectionError", "RateLimitError", "InternalServerError"})
_SDKS = frozenset({"openai", "anthropic"})


def _is_transient_sdk_error(exc: BaseException) -> bool:
    return any(
        cls.__name__ in _TRANSIENT_SDK_ERRORS and cls.__module__.partition(".")[0] in _SDKS
        for cls in type(exc).__mro__
    )


def is_transient(exc: BaseException) -> bool:
    """True for errors a later identical call may not get: 408/409/429/5xx/529, connection.

    Import-safe: it reads only the exception itself (see ``_TRANSIENT_SDK_ERRORS``).
    """
    if isinstance(exc, TransientError | TransientPollError):  # the providers raise judgeflow's
        return True
    if _is_transient_sdk_error(exc):
        return True
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and (status in (408, 409, 429) or status >= 500)


def _metadata(chunk: Chunk) -> dict[str, str]:
    """OpenAI batch metadata: how a lost create is found again (<= 16 pairs, short values)."""
    return {"judgeflow_judge": chunk.judge, "judgeflow_round": str(chunk.round),
            "judgeflow_chunk": chunk.chunk_key}


# ---------------------------------------------------------------------------------------------
# prepare + submit
# ---------------------------------------------------------------------------------------------


def prepare_chunks(
    spec: JudgeSpec, rows: pl.DataFrame, ws: BatchWorkspace, pending: Collection[str] | None = None
) -> list[Chunk]:
    """Expand, render and write the round-1 chunk files of ``spec`` (same build -> same keys).

    ``pending`` (request ids) keeps only the requests still to ask: after a deadline or budget
    stop, or with rows shared by other judges, ``rows`` holds requests that are already answered,
    and sending them again would pay for them twice. None sends every request of ``rows``.
    """
    requests = expand_requests(rows, spec)
    if pending is not None:
        requests = requests.filter(pl.col("request_id").is_in(list(pending)))
    prompts = render_requests(spec, rows, requests)
    directory = ws.chunk_dir(spec.name, 1)
    if directory.exists():
        shutil.rmtree(directory)  # files of the same build are rewritten identically
    if requests.is_empty():
        return []
    return write_chunks(spec, requests, prompts, directory, round_=1)


def submit_chunk(
    ws: BatchWorkspace, provider: BatchProvider, chunk: Chunk, *, parent: str | None = None
) -> LedgerEntry:
    """Submit ``chunk`` once, ever: re-attach when the ledger (or the provider) already has it.

    The ledger entry is durable before ``create`` (intent) and right after it (batch id), so
    polling always starts from a ledger that names the batch.
    """
    ledger = ws.ledger
    eid = entry_id(chunk.judge, chunk.round, chunk.chunk_key)
    entry = ledger.get(eid)
    if entry is not None and entry.status not in ("intent", "uploaded"):
        return entry  # already submitted: re-attach
    metadata = _metadata(chunk)
    if entry is None and provider.name == "openai":
        # No ledger entry at all (a fresh disk, e.g. a pod without a persistent volume): OpenAI
        # batches carry the chunk key in their metadata, so look before paying twice.
        lost = provider.find_lost(chunk, metadata, time.time() - LEDGERLESS_LOOKBACK_S, ledger.claimed_batch_ids())
        if lost is not None:
            log.warning("re-attached batch %s for %s, found by its metadata (no ledger entry): "
                        "not paid again", lost, eid)
            return ledger.put(LedgerEntry(
                entry_id=eid, provider=provider.name, judge=chunk.judge, round=chunk.round,
                chunk_key=chunk.chunk_key, chunk=chunk.as_dict(), parent=parent,
                status="submitted", batch_id=lost, submitted_at=time.time(), found_by="metadata",
            ))
    if entry is None and _was_lost(ledger, eid):
        log.warning("%s was lost with the damaged ledger and cannot be found at %s: its %d requests "
                    "are asked again", eid, provider.name, chunk.count)
    if entry is None:
        entry = ledger.put(LedgerEntry(
            entry_id=eid, provider=provider.name, judge=chunk.judge, round=chunk.round,
            chunk_key=chunk.chunk_key, chunk=chunk.as_dict(), parent=parent,
        ))
    else:  # an earlier run crashed around create: was the batch created after all?
        lost = provider.find_lost(chunk, metadata, entry.intent_at, ledger.claimed_batch_ids())
        if lost is not None:
            log.info("re-attached batch %s for %s after a lost create", lost, eid)
            return ledger.update(eid, status="submitted", batch_id=lost, submitted_at=time.time())
    input_file_id = entry.input_file_id
    if input_file_id is None:
        input_file_id = provider.upload(chunk)
        if input_file_id is not None:
            ledger.update(eid, status="uploaded", input_file_id=input_file_id)
    submission = provider.create(chunk, input_file_id, metadata)
    entry = ledger.update(
        eid, status="submitted", batch_id=submission.batch_id,
        input_file_id=submission.input_file_id, submitted_at=time.time(),
    )
    log.info("submitted %s as batch %s (%d requests)", eid, submission.batch_id, chunk.count)
    return entry


def _was_lost(ledger: Ledger, eid: str) -> bool:
    """True when a damaged ledger named ``eid`` but it could not be recovered."""
    return any(eid in r.get("lost", ()) for r in ledger.recoveries())


def submit_judge(
    spec: JudgeSpec, rows: pl.DataFrame, ws: BatchWorkspace, provider: BatchProvider | None = None,
    pending: Collection[str] | None = None,
) -> list[LedgerEntry]:
    """All round-1 chunks of one judge (only its ``pending`` requests when given), submitted (or
    re-attached) one after another."""
    provider = provider or make_provider(spec)
    return [submit_chunk(ws, provider, chunk) for chunk in prepare_chunks(spec, rows, ws, pending)]


# ---------------------------------------------------------------------------------------------
# poll
# ---------------------------------------------------------------------------------------------


def poll_intervals(spec: JudgeSpec) -> Any:
    """poll_initial_s * poll_backoff**k, capped at poll_max_s: quick for small batches, cheap
    for 24 h ones."""
    k = 0
    b = spec.batch
    while True:
        yield min(b.poll_max_s, b.poll_initial_s * b.poll_backoff**k)
        k += 1


def _backoff(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with full jitter (AWS style): spreads retries of many pollers."""
    return random.uniform(0, min(cap, base * 2**attempt))


def wait_for_batch(
    ws: BatchWorkspace,
    provider: BatchProvider,
    spec: JudgeSpec,
    eid: str,
    *,
    deadline_at: float,
    stop: threading.Event | None = None,
    on_status: StatusCallback | None = None,
) -> BatchStatus:
    """Poll entry ``eid``'s batch until it ends (or the deadline passes); returns the last status.

    At the deadline the batch is cancelled and given ``CANCEL_GRACE_S`` to wind down; a batch
    that still has not ended then comes back as is (not terminal) and is abandoned by the caller.
    ``stop`` (set on cancellation) ends the wait at once with ``InterruptedError``.
    """
    stop = stop or threading.Event()
    ledger = ws.ledger
    entry = ledger.get(eid)
    assert entry is not None and entry.batch_id is not None, f"{eid} was never submitted"
    intervals = poll_intervals(spec)
    errors = 0
    cancelled_for_deadline = False
    last: BatchStatus | None = None
    while True:
        if stop.is_set():
            raise InterruptedError(f"stopped while waiting for {entry.batch_id}")
        try:
            status = provider.poll_once(entry.batch_id)
            errors = 0
        except Exception as exc:
            if not is_transient(exc):
                raise
            errors += 1
            if errors > MAX_TRANSIENT_ERRORS:
                raise TransientPollError(f"status of {entry.batch_id}: {type(exc).__name__}") from exc
            delay = _backoff(errors, spec.batch.poll_initial_s, spec.batch.poll_max_s)
            log.warning("transient error polling %s (%s); retry in %.2fs", entry.batch_id,
                        type(exc).__name__, delay)
            stop.wait(delay)
            continue
        if last is None or (status.provider_status, status.counts()) != (last.provider_status, last.counts()):
            entry = ledger.update(eid, provider_status=status.provider_status, counts=status.counts(),
                                  output_file_id=status.output_file_id,
                                  error_file_id=status.error_file_id, error=status.error)
            if on_status is not None:
                on_status(entry, status)
        last = status
        if status.terminal:
            ledger.update(eid, status="ended")
            return status
        now = time.time()
        if now >= deadline_at:
            if not cancelled_for_deadline:
                log.warning("deadline passed: cancelling batch %s", entry.batch_id)
                _safe_cancel(provider, entry.batch_id)
                ledger.update(eid, error="deadline exceeded: cancelled")
                cancelled_for_deadline = True
            elif now >= deadline_at + CANCEL_GRACE_S:
                return status
        wait = next(intervals)
        if cancelled_for_deadline:
            wait = min(wait, 1.0)
        stop.wait(wait)


def _safe_cancel(provider: BatchProvider, batch_id: str) -> None:
    try:
        provider.cancel(batch_id)
    except Exception as exc:  # noqa: BLE001 - a batch that ended meanwhile cannot be cancelled
        log.warning("cancel of %s failed: %s", batch_id, type(exc).__name__)


# ---------------------------------------------------------------------------------------------
# collect
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Collected:
    """What one batch gave: how many requests ended ok, failed, and which to try again."""

    entry_id: str
    ok: int
    failed: int
    retry_ids: frozenset[str]


def _requests_by_id(chunk: Chunk) -> dict[str, dict[str, Any]]:
    meta = pl.read_parquet(chunk.meta_path)
    return {row["request_id"]: row for row in meta.iter_rows(named=True)}


def collect_entry(
    ws: BatchWorkspace, provider: BatchProvider, spec: JudgeSpec, eid: str, status: BatchStatus | None
) -> Collected:
    """Stream the batch's results into judgment records (``collected/<entry>/part-*.parquet``).

    Every request of the chunk gets exactly one record, with an explicit status: parsed replies
    are ``ok``; unparseable ones and requests the provider refused as invalid are ``failed``
    (the judge's own final failure); 5xx/429/auth errors, unreadable result lines, conflicting
    duplicates, missing results and a batch that failed validation are ``error``; cancelled,
    expired and deadline-abandoned ones are ``not_sent``. Every non-ok record is a candidate of
    the next round. The result file's anomalies (``reconcile.Reconciler``) are kept on the
    ledger entry. ``status`` None (or not terminal) abandons the batch (deadline). Idempotent:
    a collected entry is read back.
    """
    ledger = ws.ledger
    entry = ledger.get(eid)
    assert entry is not None
    final_dir = ws.collected_dir(eid)
    if entry.status == "collected" and final_dir.exists():
        try:
            return _read_collected(eid, final_dir)
        except Exception as exc:  # noqa: BLE001 - an unreadable copy is collected again (free)
            log.warning("collected results of %s in %s are unreadable (%s): collecting them again",
                        eid, final_dir, type(exc).__name__)
    if status is None and entry.status == "collected" and entry.batch_id:
        status = provider.poll_once(entry.batch_id)  # its copy is gone: download the results again
    chunk = Chunk.from_dict(entry.chunk)
    requests = _requests_by_id(chunk)
    tmp_dir = final_dir.with_name(final_dir.name + ".tmp")
    if tmp_dir.exists():
        shutil.rmtree(tmp_dir)
    spec_hash = spec.spec_hash()

    def fail(request: Mapping[str, Any], reason: str, kind: str, raw: str | None = None,
             tin: int = 0, tout: int = 0) -> dict[str, Any]:
        return judgment_record(
            spec, request, error=reason, status=kind, raw_output=raw, attempts=entry.round,
            input_tokens=tin, output_tokens=tout, cost_usd=cost_of(spec, tin, tout, batch=True),
            template_hash=request.get("template_hash"), spec_hash=spec_hash,
        )

    tally = Reconciler(entry.batch_id or eid, requests.keys())
    with JudgmentSink(tmp_dir) as sink:
        if status is None or not status.terminal or status.state == "failed":
            if status is not None and status.state == "failed":
                reason, kind = f"batch {status.batch_id} failed: {status.error}", "error"
            else:
                reason, kind = entry.error or "batch did not end", "not_sent"
            for request in requests.values():
                sink.add(fail(request, reason, kind))
        else:
            for line in provider.collect(status):
                item = tally.add(line)
                if item is None:
                    continue
                request = requests[item.custom_id]
                if item.error is not None:
                    sink.add(fail(request, item.error, item.error_status, None,
                                  item.input_tokens, item.output_tokens))
                    continue
                text = item.text or ""
                try:
                    parsed = parse_reply(spec, text)
                except ParseError as exc:
                    sink.add(fail(request, f"unparseable: {exc}"[:500], "failed", text,
                                  item.input_tokens, item.output_tokens))
                    continue
                sink.add(judgment_record(
                    spec, request, score=parsed.score, verdict=parsed.verdict,
                    feedback=parsed.feedback, raw_output=text, attempts=entry.round,
                    input_tokens=item.input_tokens, output_tokens=item.output_tokens,
                    cost_usd=cost_of(spec, item.input_tokens, item.output_tokens, batch=True),
                    template_hash=request.get("template_hash"), spec_hash=spec_hash,
                ))
            tally.check_ours(eid)
            for cid, request in requests.items():
                if not tally.answered(cid):
                    sink.add(fail(request, tally.missing_reason(cid), "error"))
    if tally.conflicts:
        _replace_records(tmp_dir, {cid: fail(requests[cid], why, "error") for cid, why in tally.conflicts.items()})
    if final_dir.exists():
        shutil.rmtree(final_dir)
    tmp_dir.rename(final_dir)  # atomic: a collected directory is always complete
    result = _read_collected(eid, final_dir)
    for anomaly in tally.anomalies:
        anomaly["judge"], anomaly["entry_id"] = spec.name, eid
        log.warning("batch %s (%s): %s at %s: %s", anomaly["batch_id"], eid, anomaly["kind"],
                    anomaly["where"], anomaly["detail"])
    ledger.update(eid, status="collected", collected_path=str(final_dir), retry_ids=len(result.retry_ids),
                  anomalies=tally.anomalies, anomaly_counts=dict(tally.counts))
    return result


def _replace_records(directory: Path, replacements: Mapping[str, dict[str, Any]]) -> None:
    """Swap the records of ``replacements``' request ids in a (not yet published) collected
    directory for the given ones: how a custom_id answered twice differently ends failed."""
    frame = read_judgments(directory).collect()
    kept = frame.filter(~pl.col("request_id").is_in(list(replacements)))
    for part in directory.glob("*.parquet"):
        part.unlink()
    with JudgmentSink(directory) as sink:
        sink.extend(kept.iter_rows(named=True))
        sink.extend(replacements.values())


def _read_collected(eid: str, directory: Path) -> Collected:
    frame = read_judgments(directory).select("request_id", "status").collect()
    failed = frame.filter(pl.col("status") != "ok")["request_id"]
    return Collected(eid, frame.height - failed.len(), failed.len(), frozenset(failed.to_list()))


def anomalies_of(
    ws: BatchWorkspace, entry_ids: Iterable[str] | None = None, since: float = 0.0
) -> list[dict[str, Any]]:
    """The result-file anomalies of ``entry_ids`` (every entry when None), plus the ledger
    recoveries since ``since``, as rows for the build report (kind, judge, batch id, where,
    custom_id, detail)."""
    entries = ws.ledger.entries()
    wanted = entries.keys() if entry_ids is None else set(entry_ids)
    out = [a for eid in wanted if eid in entries for a in entries[eid].anomalies]
    for r in ws.ledger.recoveries():
        if r["at"] < since:
            continue
        detail = (f"{r['reason']}: {r['salvaged'] + r['from_previous_version']} entries recovered, "
                  f"{len(r['lost'])} lost" + (f" (set aside as {r['set_aside_as']})" if r["set_aside_as"] else ""))
        out.append({"kind": "ledger_recovered", "judge": None, "batch_id": None, "entry_id": None,
                    "where": r["ledger"], "custom_id": None, "detail": detail})
    return out


def anomaly_counts(
    ws: BatchWorkspace, entry_ids: Iterable[str] | None = None, since: float = 0.0
) -> dict[str, int]:
    """How many anomalies of each kind ``entry_ids`` met (all counted, not only those kept),
    and how many ledger recoveries there were since ``since``."""
    entries = ws.ledger.entries()
    wanted = entries.keys() if entry_ids is None else set(entry_ids)
    total: Counter[str] = Counter()
    for eid in wanted:
        if eid in entries:
            total.update(entries[eid].anomaly_counts)
    recoveries = sum(1 for r in ws.ledger.recoveries() if r["at"] >= since)
    if recoveries:
        total["ledger_recovered"] += recoveries
    return dict(total)


# ---------------------------------------------------------------------------------------------
# rounds and lineages
# ---------------------------------------------------------------------------------------------


def _rounds_this_run(ws: BatchWorkspace, entry: LedgerEntry, run_started_at: float) -> int:
    """How many rounds of ``entry``'s lineage (it and its parents) this run submitted."""
    entries = ws.ledger.entries()
    n = 0
    current: LedgerEntry | None = entry
    while current is not None and (current.submitted_at or 0.0) >= run_started_at:
        n += 1
        current = entries.get(current.parent) if current.parent else None
    return n


def follow_up(
    ws: BatchWorkspace, provider: BatchProvider, spec: JudgeSpec, collected: Collected,
    *, deadline_at: float, run_started_at: float = 0.0,
) -> LedgerEntry | None:
    """Submit the failed requests of a collected entry as the next round, if rounds are left.

    The follow-up chunk is derived byte for byte from the parent, so on a re-run the same
    failures give the same chunk key and the ledger re-attaches instead of re-submitting.
    ``spec.batch.max_rounds`` counts the rounds this run submitted (since ``run_started_at``):
    a later run that needs a lineage's failures again (asked again after a deadline, or after
    errors) continues the lineage instead of finding the same failures forever.
    """
    entry = ws.ledger.get(collected.entry_id)
    assert entry is not None
    if not collected.retry_ids or time.time() >= deadline_at:
        return None
    if _rounds_this_run(ws, entry, run_started_at) >= spec.batch.max_rounds:
        return None
    parent = Chunk.from_dict(entry.chunk)
    directory = ws.chunk_dir(spec.name, entry.round + 1, parent.chunk_key)
    chunks = follow_up_chunks(spec, [parent], set(collected.retry_ids), directory, round_=entry.round + 1)
    children = [submit_chunk(ws, provider, c, parent=entry.entry_id) for c in chunks]
    ids = [c.entry_id for c in children]
    ws.ledger.update(entry.entry_id, follow_ups=ids)
    return children[0] if children else None


def drive_entry(
    ws: BatchWorkspace,
    provider: BatchProvider,
    spec: JudgeSpec,
    eid: str,
    *,
    deadline_at: float,
    stop: threading.Event | None = None,
    on_status: StatusCallback | None = None,
    run_started_at: float = 0.0,
) -> list[Collected]:
    """Poll, collect and follow up one chunk's lineage until it has no round left."""
    out: list[Collected] = []
    current: str | None = eid
    while current is not None:
        entry = ws.ledger.get(current)
        assert entry is not None
        if entry.status == "collected":
            collected = collect_entry(ws, provider, spec, current, None)
        else:
            status = wait_for_batch(ws, provider, spec, current, deadline_at=deadline_at,
                                    stop=stop, on_status=on_status)
            collected = collect_entry(ws, provider, spec, current, status)
        out.append(collected)
        child = follow_up(ws, provider, spec, collected, deadline_at=deadline_at,
                          run_started_at=run_started_at)
        current = child.entry_id if child is not None else None
    return out


def finalize_judge(
    ws: BatchWorkspace, spec: JudgeSpec, out_dir: str | Path, entry_ids: Iterable[str] | None = None
) -> pl.DataFrame:
    """One record per request of ``spec``: the one from its last round (the highest
    ``attempts``), written to ``out_dir`` with ``JudgmentSink`` and returned.

    ``entry_ids`` limits it to the lineages this run drove (so an older lineage's failure of a
    request this run asked again cannot shadow the new answer); None takes every entry.
    """
    wanted = None if entry_ids is None else set(entry_ids)
    dirs = [Path(e.collected_path) for e in ws.ledger.entries().values()
            if e.judge == spec.name and e.status == "collected" and e.collected_path
            and (wanted is None or e.entry_id in wanted)]
    if not dirs:
        frame = pl.DataFrame(schema=JUDGMENTS_SCHEMA)
    else:
        frame = (
            pl.concat([read_judgments(d) for d in dirs])
            .sort("request_id", "attempts")
            .unique("request_id", keep="last", maintain_order=True)
            .collect()
        )
    out = Path(out_dir)
    if out.exists():
        shutil.rmtree(out)
    with JudgmentSink(out) as sink:
        sink.extend(frame.iter_rows(named=True))
    return frame


def cancel_open_batches(ws: BatchWorkspace, providers: Mapping[str, BatchProvider]) -> list[str]:
    """Cancel every submitted batch that has not ended (on flow cancel / Ctrl-C)."""
    cancelled = []
    for entry in ws.ledger.entries().values():
        if entry.status == "submitted" and entry.batch_id and entry.judge in providers:
            _safe_cancel(providers[entry.judge], entry.batch_id)
            cancelled.append(entry.batch_id)
    return cancelled


# ---------------------------------------------------------------------------------------------
# the whole thing, without Prefect
# ---------------------------------------------------------------------------------------------


def run_batch_judges(
    rows: pl.DataFrame,
    specs: Sequence[JudgeSpec],
    workdir: str | Path,
    out_dir: str | Path,
    *,
    providers: Mapping[str, BatchProvider] | None = None,
    max_workers: int = 32,
    on_status: StatusCallback | None = None,
    pending: Mapping[str, Collection[str]] | None = None,
) -> dict[str, pl.DataFrame]:
    """Judge ``rows`` with every batch judge in ``specs``; resumable through ``workdir``'s ledger.

    ``pending`` maps a judge to the request ids still to ask (the store's view); a judge not in
    it asks every request of ``rows``. Returns each judge's judgments of this run (also written
    to ``out_dir/<judge>/``); the result files' anomalies are logged and kept in the ledger
    (``anomalies_of``). On KeyboardInterrupt (or any interruption) the open batches are
    cancelled when ``spec.batch.cancel_on_flow_cancel`` says so, and the interruption is
    re-raised.
    """
    ws = BatchWorkspace.at(workdir)
    provs: dict[str, BatchProvider] = dict(providers or {})
    for spec in specs:
        provs.setdefault(spec.name, make_provider(spec))
    by_name = {s.name: s for s in specs}
    started = time.time()
    deadline_at = started + max(s.batch.deadline_s for s in specs)
    stop = threading.Event()
    pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="jf-batch")
    driven: dict[str, list[str]] = {s.name: [] for s in specs}
    try:
        submitted = list(pool.map(
            lambda s: (s, submit_judge(s, rows, ws, provs[s.name], (pending or {}).get(s.name))), specs))
        futures = [
            (spec.name, pool.submit(drive_entry, ws, provs[spec.name], spec, e.entry_id,
                                    deadline_at=deadline_at, stop=stop, on_status=on_status,
                                    run_started_at=started))
            for spec, entries in submitted for e in entries
        ]
        for name, future in futures:
            while True:  # short waits keep the main thread responsive to Ctrl-C
                try:
                    driven[name] += [c.entry_id for c in future.result(timeout=0.5)]
                    break
                except TimeoutError:
                    continue
    except CANCELLATION:
        stop.set()
        to_cancel = {n: p for n, p in provs.items() if by_name[n].batch.cancel_on_flow_cancel}
        if to_cancel:
            cancelled = cancel_open_batches(ws, to_cancel)
            log.warning("interrupted: cancelled %d open batches", len(cancelled))
        raise
    except BaseException:
        stop.set()  # a failure: leave the batches running, a re-run re-attaches
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    log_anomalies(ws, [eid for ids in driven.values() for eid in ids], since=started)
    return {s.name: finalize_judge(ws, s, Path(out_dir) / s.name, driven[s.name]) for s in specs}


def log_anomalies(ws: BatchWorkspace, entry_ids: Iterable[str], since: float = 0.0) -> dict[str, int]:
    """One warning line with the anomalies of this run's batches (each was logged when found)."""
    counts = anomaly_counts(ws, entry_ids, since)
    if counts:
        log.warning("batch anomalies: %s", ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())))
    return counts


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m judgeflow.batch.runner --rows R.parquet --specs S.json --workdir W --out O``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", required=True, help="Parquet file with ROWS_SCHEMA columns")
    parser.add_argument("--specs", required=True, help="JSON list of JudgeSpec objects")
    parser.add_argument("--workdir", required=True, help="batch workspace (ledger) directory")
    parser.add_argument("--out", required=True, help="judgments output directory")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    signal.signal(signal.SIGTERM, _exit_on_sigterm)  # SIGTERM cancels like Ctrl-C does
    rows = pl.read_parquet(args.rows)
    specs = [JudgeSpec.model_validate(s) for s in orjson.loads(Path(args.specs).read_bytes())]
    results = run_batch_judges(rows, specs, args.workdir, args.out)
    for name, frame in results.items():
        ok = frame.filter(pl.col("status") == "ok").height
        print(f"{name}: {ok}/{frame.height} ok")  # noqa: T201 - CLI output
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
