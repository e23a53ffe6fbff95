"""The judging stage: every judge of the build, each the way its spec says (live, batch, GPU).

Live judges run one task per chunk of requests, chained per judge (one judge's chunks share its
rate limit and budget) and concurrent across judges. Batch judges go through the providers'
Batch APIs with a ledger, so a re-run re-attaches instead of paying twice. GPU judges run as
subflows in process, or as their own deployments on the GPU pool. Everything lands in the
judgment store, which the merge step reads.
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger
from prefect.deployments import run_deployment
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.futures import PrefectFuture, wait

from judgeflow.config import BuildConfig
from judgeflow.pipeline import RunPaths
from judgeflow.specs import JudgeSpec
from judgeflow.store import JudgmentStore
from tasks.batch import run_batch_judges_in_flow
from tasks.build import absorb_judgments, judgments_dir
from tasks.judge_live import judge_chunk_live


def _remaining_budget(config: BuildConfig, spent: float) -> float | None:
    return None if config.budget_usd is None else max(config.budget_usd - spent, 0.0)


def _live(
    spec: JudgeSpec, plan: dict[str, Any], store: JudgmentStore, budget: float | None, retry_failed: bool
) -> list[PrefectFuture[Any]]:
    """Submit the judge's chunk tasks, each waiting for the previous one."""
    futures: list[PrefectFuture[Any]] = []
    out_dir = str(store.judge_dir(spec))
    for rows_path, requests_path in plan["chunks"]:
        futures.append(
            judge_chunk_live.submit(
                spec, rows_path, requests_path, out_dir, budget_cap_usd=budget,
                retry_failed=retry_failed, wait_for=futures[-1:],
            )
        )
    return futures


def _gpu(config: BuildConfig, spec: JudgeSpec, plan: dict[str, Any], paths: RunPaths) -> None:
    """Run a GPU judge on each chunk: a deployment on the GPU pool, or a subflow here."""
    out_dir = judgments_dir(paths, spec, "gpu")
    vllm = spec.provider == "vllm"
    for rows_path, requests_path in plan["chunks"]:
        params = {"spec": spec.model_dump(mode="json"), "rows_path": rows_path,
                  "requests_path": requests_path, "out_dir": str(out_dir)}
        if config.gpu.use_deployments:
            name = config.gpu.vllm_deployment if vllm else config.gpu.pairrm_deployment
            run = run_deployment(name, parameters=params, timeout=config.gpu.timeout_s)
            if not run.state or not run.state.is_completed():
                raise RuntimeError(f"GPU judge {spec.name!r}: deployment {name} ended {run.state}")
        else:
            from flows import gpu_judges

            judge_flow = gpu_judges.prometheus_vllm_judge if vllm else gpu_judges.pairrm_judge
            judge_flow(**params)
    absorb_judgments(spec, str(out_dir), paths)


def _await_live(futures: list[PrefectFuture[Any]], plan: dict[str, Any], specs: list[JudgeSpec]) -> list[dict[str, Any]]:
    """Wait for the live chunks, keeping a progress artifact (chunks done / all) up to date."""
    if not futures:
        return []
    total = sum(plan[s.name]["pending"] for s in specs)
    progress = create_progress_artifact(0.0, key="live-judging-progress",
                                        description=f"live judging: {total} requests")
    remaining = set(futures)
    while remaining:
        remaining = wait(list(remaining), timeout=2.0).not_done
        update_progress_artifact(progress, 100.0 * (len(futures) - len(remaining)) / len(futures))
    return [f.result() for f in futures]  # .result() so a failed chunk fails the flow


def judge_rows(config: BuildConfig, plan: dict[str, Any], paths: RunPaths) -> dict[str, Any]:
    """Send every pending request to its judge; results go to the judgment store.

    A plain function called from the build flow, not a subflow: its work is already one task per
    chunk or batch, and a subflow run would only add a flow run's fixed cost (about a second here)
    without showing anything the task runs do not.
    """
    logger = get_run_logger()
    store = JudgmentStore.at(paths.store_dir)
    budget = _remaining_budget(config, 0.0)
    by_mode: dict[str, list[JudgeSpec]] = {"live": [], "batch": [], "gpu": []}
    for spec in config.judges:
        if plan[spec.name]["pending"]:
            by_mode[spec.mode].append(spec)
        else:
            logger.info("judge %r: nothing to send (all %d requests answered by the store)",
                        spec.name, plan[spec.name]["requests"])

    live_futures = [f for spec in by_mode["live"]
                    for f in _live(spec, plan[spec.name], store, budget, config.retry_failed)]

    # Batch judges that need the same rows are submitted and polled together (concurrently).
    groups: dict[str, list[JudgeSpec]] = {}
    for spec in by_mode["batch"]:
        groups.setdefault(plan[spec.name]["pending_rows_key"], []).append(spec)
    batch_anomalies: dict[str, int] = {}  # kind -> how many, over every batch of this run
    for specs in groups.values():
        stage = run_batch_judges_in_flow(
            specs, plan[specs[0].name]["pending_rows_path"], paths.store_dir / "batches",
            paths.work_dir / "batch-out",
            # only the pending requests: the rows also hold requests answered already
            pending_requests={s.name: [q for _, q in plan[s.name]["chunks"]] for s in specs},
        )
        for kind, n in stage.anomaly_counts.items():
            batch_anomalies[kind] = batch_anomalies.get(kind, 0) + n
        for spec in specs:
            added = absorb_judgments(spec, stage.out_dirs[spec.name], paths)
            logger.info("judge %r: %d new batch judgments stored", spec.name, added)

    for spec in by_mode["gpu"]:
        _gpu(config, spec, plan[spec.name], paths)

    live = _await_live(live_futures, plan, by_mode["live"])
    return {
        "live_chunks": len(live),
        "live_ok": sum(r.get("ok", 0) for r in live),
        "live_failed": sum(r.get("failed", 0) for r in live),
        "batch_anomalies": batch_anomalies,
    }
