"""Live-judging throughput: judgeflow vs the bare ``openai.AsyncOpenAI`` client.

Both talk to the same provider simulator running in its own process (so its CPU is not counted
against the client), at 0 ms and 200 ms simulated latency and concurrency 64 and 256.

* ``judgeflow``: ``judge_live`` end to end with the fast client: rendering, HTTP, parsing,
  judgment records streamed to Parquet, retries and limits armed (none fire here);
* ``openai-sdk``: pre-rendered prompts sent with ``AsyncOpenAI.chat.completions.create``, one
  task per row behind an ``asyncio.Semaphore(concurrency)``, reply text kept, nothing parsed
  or written (what a hand-written script does);
* ``fast-tasks`` (optional): judgeflow's fast client used the same way as the SDK baseline (a
  task per row + semaphore) to show what the fixed worker pool saves.

Each measurement runs in a fresh child process so that CPU time (``time.process_time``) and
peak RSS (``ru_maxrss``) belong to that run alone. Medians of ``--repeats`` runs are reported.

    python -m benchmarks.live_judging --rows 2000 --repeats 3 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CLIENTS = ("judgeflow", "openai-sdk", "fast-tasks")
KEY = "sk-bench"


def _rows(n: int) -> Any:
    import polars as pl

    from judgeflow.schemas import content_hash

    instructions = [f"Write one sentence about topic {i}." for i in range(n)]
    responses = [[f"Topic {i} is interesting because of reason {i % 97}."] for i in range(n)]
    return pl.DataFrame(
        {
            "row_id": [f"r{i}" for i in range(n)],
            "instruction": instructions,
            "responses": responses,
            "reference": [None] * n,
            "content_hash": [content_hash(x, r, None) for x, r in zip(instructions, responses, strict=True)],
        },
        schema_overrides={"reference": pl.String},
    )


async def _semaphore_run(client: Any, prompts: list[Any], concurrency: int, sdk: bool, sampling: Any) -> int:
    sem = asyncio.Semaphore(concurrency)

    async def one(p: Any) -> str:
        async with sem:
            if sdk:
                reply = await client.chat.completions.create(
                    model="gpt-4o-mini", messages=p.messages(), temperature=sampling.temperature,
                    top_p=sampling.top_p, max_completion_tokens=sampling.max_tokens,
                )
                return reply.choices[0].message.content or ""
            return (await client.complete(p.system, p.user, sampling=sampling)).text

    texts = await asyncio.gather(*(one(p) for p in prompts))
    return sum(1 for t in texts if t)


def run_one(client_name: str, base_url: str, rows_n: int, concurrency: int) -> dict[str, Any]:
    """One measurement in this process: rows/s, client CPU ms per row, peak RSS."""
    from judgeflow.judging.live import judge_live
    from judgeflow.judging.records import JudgmentSink
    from judgeflow.prompts import render_requests
    from judgeflow.specs import JudgeSpec, expand_requests

    spec = JudgeSpec(name="bench", kind="absolute", base_url=base_url, concurrency=concurrency)
    rows = _rows(rows_n)
    requests = expand_requests(rows, spec)

    if client_name == "judgeflow":
        with tempfile.TemporaryDirectory() as out:
            cpu0, t0 = time.process_time(), time.perf_counter()
            with JudgmentSink(out) as sink:
                stats = asyncio.run(judge_live(spec, rows, requests, sink, api_key=KEY))
            wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        ok = stats.ok
    else:
        prompts = render_requests(spec, rows, requests)

        async def go() -> int:
            if client_name == "openai-sdk":
                import openai

                client: Any = openai.AsyncOpenAI(base_url=base_url, api_key=KEY)
                try:
                    return await _semaphore_run(client, prompts, concurrency, True, spec.sampling)
                finally:
                    await client.close()
            from judgeflow.clients import FastOpenAIClient

            client = FastOpenAIClient(model=spec.model, api_key=KEY, base_url=base_url, concurrency=concurrency)
            try:
                return await _semaphore_run(client, prompts, concurrency, False, spec.sampling)
            finally:
                await client.aclose()

        cpu0, t0 = time.process_time(), time.perf_counter()
        ok = asyncio.run(go())
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {
        "client": client_name,
        "rows": rows_n,
        "ok": ok,
        "concurrency": concurrency,
        "wall_s": wall,
        "rows_per_s": rows_n / wall,
        "cpu_ms_per_row": cpu * 1000.0 / rows_n,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }


def _child(client: str, base_url: str, rows: int, concurrency: int) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.live_judging", "--one", client, "--base-url", base_url,
           "--rows", str(rows), "--concurrency", str(concurrency)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1], check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{client} run failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[0.0, 200.0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--clients", nargs="+", default=["judgeflow", "openai-sdk"], choices=CLIENTS)
    parser.add_argument("--json", type=Path, default=None, help="write the results here as JSON")
    parser.add_argument("--one", choices=CLIENTS, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.one:
        print(json.dumps(run_one(args.one, args.base_url, args.rows, args.concurrency[0])))
        return 0

    from judgeflow.simulator import Simulator, SimulatorConfig

    results: list[dict[str, Any]] = []
    with Simulator(SimulatorConfig(), process=True) as sim:
        for latency in args.latency_ms:
            sim.configure(latency_ms=latency)
            for concurrency in args.concurrency:
                for client in args.clients:
                    runs = [_child(client, sim.openai_base_url, args.rows, concurrency) for _ in range(args.repeats)]
                    med = {k: statistics.median(r[k] for r in runs) for k in ("rows_per_s", "cpu_ms_per_row", "peak_rss_mb", "wall_s")}
                    summary = {"client": client, "latency_ms": latency, "concurrency": concurrency,
                               "rows": args.rows, "repeats": args.repeats, "ok_min": min(r["ok"] for r in runs),
                               **med, "runs": runs}
                    results.append(summary)
                    print(f"  {client:<11} latency={latency:>5.0f} ms c={concurrency:<4} "
                          f"{med['rows_per_s']:>8.0f} rows/s  {med['cpu_ms_per_row']:.3f} ms CPU/row  "
                          f"{med['peak_rss_mb']:.0f} MB", file=sys.stderr, flush=True)

    print(f"\nLive judging, {args.rows} rows, medians of {args.repeats} runs (simulator in its own process)\n")
    print("| client | latency | concurrency | rows/s | limit (c/latency) | client CPU ms/row | peak RSS MB |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        limit = f"{r['concurrency'] / (r['latency_ms'] / 1000):.0f}" if r["latency_ms"] else "-"
        print(f"| {r['client']} | {r['latency_ms']:.0f} ms | {r['concurrency']} | {r['rows_per_s']:.0f} | {limit} "
              f"| {r['cpu_ms_per_row']:.3f} | {r['peak_rss_mb']:.0f} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": args.rows, "repeats": args.repeats, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
