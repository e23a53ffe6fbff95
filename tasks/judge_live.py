"""Prefect task: judge one CHUNK of requests live (thousands of requests per task run).

A task run costs ~5-10 ms and a thread, so the unit of work is a chunk file, never a row. The
task reads Parquet paths (never big frames as parameters, which Prefect would pickle), skips the
request_ids already recorded in ``out_dir`` (so a retried or re-run task never pays twice), and
streams records to ``out_dir`` as it goes.

Retries are for infrastructure errors only (disk, network file systems, a killed process): API
errors never reach Prefect, because the live path records them as failed-with-reason judgments.
Nothing secret is logged: the API key stays inside the client object.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import polars as pl
from prefect import task
from prefect.logging import get_run_logger

from judgeflow.cost import Budget
from judgeflow.judging.live import SlotBlocks, judge_live_sync
from judgeflow.judging.records import JudgmentSink
from judgeflow.specs import JudgeSpec
from judgeflow.store import answered, set_aside_corrupt
from tasks.retries import retry_on_infrastructure
from tasks.secrets import resolve_api_key

#: Global concurrency limits (created by infra/setup_pools.py) that keep every flow run together
#: under a hosted provider's requests-per-minute limit. Self-hosted servers have none.
PROVIDER_RATE_LIMITS = {"openai": "openai-rpm", "anthropic": "anthropic-rpm"}
SLOT_BLOCK = 50


def provider_slots(spec: JudgeSpec) -> SlotBlocks | None:
    """Request slots from the provider's Prefect rate limit, taken 50 at a time.

    Only for hosted providers reached at their own endpoint (no ``base_url``): a simulator or a
    private gateway is not bound by the provider's account limit. Only with a Prefect server
    (``PREFECT_API_URL``): the temporary API of ``judgeflow run`` without one lives and dies
    with the command, so no other run shares it and no limit exists there (asking for one only
    printed "Concurrency limits [...] do not exist" on every block). ``strict=False``: on a
    server without ``setup_pools.py`` Prefect warns that the limit is missing (a real
    misconfiguration) and judging proceeds unthrottled.
    """
    name = PROVIDER_RATE_LIMITS.get(spec.provider)
    if name is None or spec.base_url is not None or not has_prefect_server():
        return None
    from prefect.concurrency.asyncio import rate_limit

    return SlotBlocks(lambda n: rate_limit(name, occupy=n, strict=False), block=SLOT_BLOCK)


def has_prefect_server() -> bool:
    """True when flows talk to a Prefect server (``PREFECT_API_URL``), not a temporary local API."""
    from prefect.settings import get_current_settings

    return get_current_settings().api.url is not None


def run_tag(requests_path: str) -> str:
    """Tag shared by every chunk file of one build run (their common folder, hashed)."""
    folder = Path(requests_path).resolve().parent.parent
    return hashlib.sha1(str(folder).encode()).hexdigest()[:10]


def chunk_prefix(spec: JudgeSpec, requests_path: str) -> str:
    """Part-file prefix ``live-{run tag}-{judge}-{chunk}``: unique per (run, judge, chunk), so
    parallel chunks never share part numbers and a run finds its own parts by the run tag."""
    return f"live-{run_tag(requests_path)}-{spec.name}-{Path(requests_path).stem}"


def _parts(paths: list[Path]) -> pl.DataFrame:
    paths, _ = set_aside_corrupt(paths)  # a corrupt part is named, moved away, its requests asked again
    if not paths:
        return pl.DataFrame(schema={"request_id": pl.String, "status": pl.String, "cost_usd": pl.Float64})
    return pl.scan_parquet(paths).select("request_id", "status", "cost_usd").collect()


def pending_requests(
    requests: pl.DataFrame, out_dir: str, requests_path: str, *, retry_failed: bool = False
) -> tuple[pl.DataFrame, float]:
    """(requests this run has not answered yet in ``out_dir``, dollars this run spent so far).

    Only this run's part files are read (found by their run tag), never the whole judgment
    store: the plan step already removed what earlier runs answered, and a store of millions of
    judgments must not be re-read by every chunk. What counts as answered is the store's rule
    (``judgeflow.store.answered``): an infrastructure failure or a request not sent, recorded by
    an earlier try of the same run id (the key fixed since), is asked again. The spend adds up
    this run's live parts of every judge in the store, so ``budget_usd`` caps the build, not
    each judge.
    """
    tag = run_tag(requests_path)
    out = Path(out_dir)
    mine = _parts(sorted(out.glob(f"live-{tag}-*.parquet")))
    store_judgments = out.parent.parent
    every_judge = _parts(sorted(store_judgments.glob(f"*/*/live-{tag}-*.parquet")) or sorted(out.glob(f"live-{tag}-*.parquet")))
    spent = float(every_judge["cost_usd"].sum() or 0.0)
    done = mine.filter(answered(retry_failed=retry_failed))
    if done.height == 0:
        return requests, spent
    return requests.join(done.select("request_id"), on="request_id", how="anti"), spent


@task(
    name="judge-chunk-live",
    task_run_name="judge-live-{spec.name}",
    retries=2,
    retry_delay_seconds=[10, 60],
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_on_infrastructure,
)
def judge_chunk_live(
    spec: JudgeSpec,
    rows_path: str,
    requests_path: str,
    out_dir: str,
    budget_cap_usd: float | None = None,
    retry_failed: bool = False,
) -> dict[str, Any]:
    """Judge the requests in ``requests_path`` (rows in ``rows_path``) into ``out_dir``.

    ``budget_cap_usd`` caps what this build run's live judgments cost in all (this chunk's, its
    earlier tries', and every earlier chunk of every judge of the run): chunks run after one
    another therefore share the cap; judges running at the same time see each other's spending
    at chunk start, so the overshoot is bounded by one chunk per concurrent judge.
    ``retry_failed``: the judge's own failures recorded by an earlier try are asked again too.
    Returns ``LiveStats.as_dict()`` plus ``skipped`` (requests already recorded) and ``out_dir``.
    """
    logger = get_run_logger()
    requests = pl.read_parquet(requests_path)
    todo, spent_before = pending_requests(requests, out_dir, requests_path, retry_failed=retry_failed)
    skipped = requests.height - todo.height
    if skipped:
        logger.info("judge %r: %d of %d requests already recorded, skipping them", spec.name, skipped, requests.height)
    budget = None
    if budget_cap_usd is not None:
        budget = Budget(budget_cap_usd)
        budget.add(spent_before)
    if todo.height == 0:
        return {"total": 0, "ok": 0, "failed": 0, "skipped": skipped, "out_dir": out_dir}
    rows = pl.read_parquet(rows_path)
    last_logged = [0]

    def progress(done: int, total: int) -> None:
        if done - last_logged[0] >= max(1, total // 10) or done == total:
            last_logged[0] = done
            logger.info("judge %r: %d/%d requests done", spec.name, done, total)

    logger.info(
        "judge %r: judging %d requests live (%s, %s transport, concurrency %d)",
        spec.name, todo.height, spec.model, spec.transport, spec.concurrency,
    )
    with JudgmentSink(out_dir, prefix=chunk_prefix(spec, requests_path), flush_every=500) as sink:
        stats = judge_live_sync(
            spec, rows, todo, sink, budget=budget, on_progress=progress,
            api_key=resolve_api_key(spec), slots=provider_slots(spec),
        )
    result = stats.as_dict() | {"skipped": skipped, "out_dir": out_dir}
    logger.info(
        "judge %r: %d ok, %d failed, %d parse re-asks, %d transport retries, $%.4f, %.0f rows/s",
        spec.name, stats.ok, stats.failed, stats.parse_retries, stats.transport_retries,
        stats.cost_usd, stats.rows_per_s,
    )
    if stats.budget_stopped:
        logger.warning(
            "judge %r: budget cap of $%.2f reached: %d requests not sent (the next run asks them)",
            spec.name, budget_cap_usd, stats.budget_stopped,
        )
    return result
