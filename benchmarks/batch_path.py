"""Batch path at scale: build, split and upload 200,000 requests; download and parse 200,000 results.

The OpenAI Batch path of ``judgeflow.batch.runner`` against the simulator's Files and Batches API
(the simulator in its own process, its CPU not counted against the client, though on 2 cores it
competes for the same CPU):

* ``submit`` phase (child process 1): ``prepare_chunks`` (expand, render, write the JSONL chunk
  files, split at 50,000 requests) then the upload of every chunk through the official SDK
  (``OpenAIBatchProvider.upload``), each timed; then, not timed, the batches are created through
  ``submit_chunk`` (which re-attaches to the uploaded files, as after a crash).
* ``collect`` phase (child process 2): the batches are waited for (not timed), then
  ``collect_entry`` streams every output file, parses each reply and writes judgment records
  (timed), then ``finalize_judge`` gathers one judgment per request (timed separately).

Each phase's peak RSS is its own child's ``ru_maxrss``. Targets: each phase under 20 s and 1 GB.

    python -m benchmarks.batch_path --requests 200000 --repeats 1 --json out.json
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    ROOT, bench_rows, md_table, median, peak_rss_mb, profile_top, python_module, run_json_child, verdict, write_json,
)

TARGET_S = 20.0
TARGET_MB = 1024.0
KEY = "sk-bench"


def _spec(base_url: str) -> Any:
    from judgeflow.specs import BatchSettings, JudgeSpec

    return JudgeSpec(
        name="bench-batch", kind="absolute", provider="openai", mode="batch", model="gpt-4o-mini",
        base_url=base_url, api_key_env="JUDGEFLOW_BENCH_KEY",
        batch=BatchSettings(poll_initial_s=0.2, poll_max_s=1.0, poll_backoff=1.5, deadline_s=1800, max_rounds=1),
    )


def phase_submit(base_url: str, workspace: Path, n: int) -> dict[str, Any]:
    """Build + split (``prepare_chunks``), then upload each chunk; create the batches untimed."""
    from judgeflow.batch.ledger import LedgerEntry, entry_id
    from judgeflow.batch.runner import BatchWorkspace, make_provider, prepare_chunks, submit_chunk

    spec = _spec(base_url)
    rows = bench_rows(n)
    ws = BatchWorkspace.at(workspace)
    provider = make_provider(spec)
    t0 = time.perf_counter()
    chunks = prepare_chunks(spec, rows, ws)
    t1 = time.perf_counter()
    ledger = ws.ledger
    for chunk in chunks:  # the first half of submit_chunk: intent, upload, "uploaded"
        eid = entry_id(chunk.judge, chunk.round, chunk.chunk_key)
        ledger.put(LedgerEntry(entry_id=eid, provider=provider.name, judge=chunk.judge, round=chunk.round,
                               chunk_key=chunk.chunk_key, chunk=chunk.as_dict()))
        file_id = provider.upload(chunk)
        ledger.update(eid, status="uploaded", input_file_id=file_id)
    t2 = time.perf_counter()
    rss = peak_rss_mb()
    t3 = time.perf_counter()
    entries = [submit_chunk(ws, provider, chunk) for chunk in chunks]  # re-attaches to the uploads
    create_s = time.perf_counter() - t3
    return {
        "requests": sum(c.count for c in chunks), "chunks": len(chunks), "bytes": sum(c.bytes for c in chunks),
        "build_split_s": t1 - t0, "upload_s": t2 - t1, "total_s": t2 - t0, "peak_rss_mb": rss,
        "create_s_untimed": create_s, "submitted": sum(1 for e in entries if e.batch_id),
    }


def phase_collect(base_url: str, workspace: Path) -> dict[str, Any]:
    """Wait for every batch (untimed), then collect (download + parse + records) and finalize."""
    from judgeflow.batch.runner import BatchWorkspace, collect_entry, finalize_judge, make_provider, wait_for_batch

    spec = _spec(base_url)
    ws = BatchWorkspace.at(workspace)
    provider = make_provider(spec)
    eids = sorted(ws.ledger.entries())
    tw = time.perf_counter()
    statuses = {eid: wait_for_batch(ws, provider, spec, eid, deadline_at=time.time() + 1800) for eid in eids}
    wait_s = time.perf_counter() - tw
    t0 = time.perf_counter()
    collected = [collect_entry(ws, provider, spec, eid, statuses[eid]) for eid in eids]
    t1 = time.perf_counter()
    frame = finalize_judge(ws, spec, workspace / "judgments")
    t2 = time.perf_counter()
    return {
        "batches": len(eids), "ok": sum(c.ok for c in collected), "failed": sum(c.failed for c in collected),
        "judgments": frame.height, "scored": int(frame["score"].is_not_null().sum()),
        "collect_s": t1 - t0, "finalize_s": t2 - t1, "total_s": t1 - t0, "peak_rss_mb": peak_rss_mb(),
        "wait_s_untimed": wait_s,
    }


def run(n: int, repeats: int, *, timeout: float = 900.0) -> dict[str, Any]:
    """``repeats`` submit + collect rounds against one simulator process; medians per phase."""
    from judgeflow.simulator import Simulator, SimulatorConfig

    config = SimulatorConfig().with_batch_seconds(1.0)
    submits: list[dict[str, Any]] = []
    collects: list[dict[str, Any]] = []
    env = dict(os.environ, JUDGEFLOW_BENCH_KEY=KEY)
    with Simulator(config, process=True) as sim:
        for _ in range(repeats):
            workspace = Path(tempfile.mkdtemp(prefix="jf-bench-batch-"))
            try:
                common = ["--base-url", sim.openai_base_url, "--workspace", str(workspace)]
                submits.append(run_json_child(python_module(
                    "benchmarks.batch_path", "--phase", "submit", "--requests", str(n), *common), env=env,
                    timeout=timeout))
                collects.append(run_json_child(python_module(
                    "benchmarks.batch_path", "--phase", "collect", *common), env=env, timeout=timeout))
            finally:
                shutil.rmtree(workspace, ignore_errors=True)
    keys_s = ("build_split_s", "upload_s", "total_s", "peak_rss_mb", "create_s_untimed")
    keys_c = ("collect_s", "finalize_s", "total_s", "peak_rss_mb", "wait_s_untimed")
    submit = {k: median(r[k] for r in submits) for k in keys_s} | {
        k: submits[-1][k] for k in ("requests", "chunks", "bytes", "submitted")}
    collect = {k: median(r[k] for r in collects) for k in keys_c} | {
        k: collects[-1][k] for k in ("batches", "ok", "failed", "judgments", "scored")}
    return {
        "requests": n, "repeats": repeats, "targets": {"seconds": TARGET_S, "peak_rss_mb": TARGET_MB},
        "submit": submit, "collect": collect, "runs": {"submit": submits, "collect": collects},
        "pass": {
            "submit": submit["total_s"] < TARGET_S and submit["peak_rss_mb"] < TARGET_MB,
            "collect": collect["total_s"] < TARGET_S and collect["peak_rss_mb"] < TARGET_MB,
        },
    }


def profile(n: int) -> str:
    """cProfile top entries of both phases at ``n`` requests (for a missed target)."""
    from judgeflow.simulator import Simulator, SimulatorConfig

    os.environ.setdefault("JUDGEFLOW_BENCH_KEY", KEY)
    with Simulator(SimulatorConfig().with_batch_seconds(1.0), process=True) as sim, \
            tempfile.TemporaryDirectory(prefix="jf-bench-batch-prof-") as tmp:
        submit = profile_top(lambda: phase_submit(sim.openai_base_url, Path(tmp), n))
        collect = profile_top(lambda: phase_collect(sim.openai_base_url, Path(tmp)))
    return f"submit phase ({n:,} requests):\n{submit}\n\ncollect phase (includes the untimed wait):\n{collect}"


def render(result: dict[str, Any]) -> str:
    """The BENCHMARKS.md section for this benchmark."""
    s, c = result["submit"], result["collect"]
    rows = [
        ["build + split + upload", f"{s['requests']:,} requests, {s['chunks']} files, {s['bytes'] / 2**20:,.0f} MiB",
         f"{s['total_s']:.1f} (build+split {s['build_split_s']:.1f}, upload {s['upload_s']:.1f})",
         f"{s['peak_rss_mb']:,.0f}", f"< {TARGET_S:g} s, < {TARGET_MB:,.0f} MB", verdict(result["pass"]["submit"])],
        ["download + parse -> judgments", f"{c['batches']} batches, {c['ok']:,} ok, {c['failed']:,} failed",
         f"{c['total_s']:.1f} (+ finalize {c['finalize_s']:.1f})", f"{c['peak_rss_mb']:,.0f}",
         f"< {TARGET_S:g} s, < {TARGET_MB:,.0f} MB", verdict(result["pass"]["collect"])],
    ]
    return "\n".join([
        f"{result['requests']:,} Prometheus absolute requests through the OpenAI Batch path (official SDK for "
        f"Files/Batches) against the simulator in its own process; medians of {result['repeats']} run(s); "
        "each phase in a child process of its own (its peak RSS is that phase's).", "",
        md_table(["phase", "work", "seconds", "peak RSS MB", "target", "verdict"], rows), "",
        f"Not timed: creating the batches ({s['create_s_untimed']:.1f} s, the simulator parses the input files) "
        f"and waiting for them ({c['wait_s_untimed']:.1f} s, the simulator writes the output files).",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--phase", choices=["submit", "collect"], help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--workspace", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase == "submit":
        import json

        print(json.dumps(phase_submit(args.base_url, args.workspace, args.requests)))
        return 0
    if args.phase == "collect":
        import json

        print(json.dumps(phase_collect(args.base_url, args.workspace)))
        return 0
    result = run(args.requests, args.repeats)
    print(render(result))
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    raise SystemExit(main())
