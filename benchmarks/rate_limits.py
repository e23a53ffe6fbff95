"""Provider rate limits: how much of an account's limit judgeflow uses, and the 429s it provokes.

The simulator runs in its own process in its ``rate_limits`` mode (token buckets per key, as
OpenAI enforces them: a minute's limit saved up at most, refilled continuously; 429 with
``retry-after`` beyond them; the ``x-ratelimit-*`` headers on every reply). Three clients, each
against its own simulator process (run side by side: they share nothing but the CPU, and each
is paced by its limit, not by CPU):

* ``judgeflow``: ``judge_live`` end to end in one worker process, paced by the reply headers
  alone (no ``requests_per_minute`` configured);
* ``judgeflow-2-workers``: two worker processes on the same key, half the requests each, each
  with its own pacer (they share the key's budget only through what the headers say);
* ``openai-sdk``: the bare ``openai.AsyncOpenAI`` with its default retries (2, honouring
  ``retry-after-ms``), one task per request behind a semaphore of the same concurrency.

Measured at the simulator: requests admitted per minute in the steady state (after the
account's saved-up minute is spent and before the last requests drain) as a fraction of the
binding limit (requests or tokens per minute, whichever the requests hit first), and the 429s
sent, as a share of the requests.

    python -m benchmarks.rate_limits --json out.json                   # 3,000 RPM, 30,000 requests
    python -m benchmarks.rate_limits --rpm 600 --requests 3000 --json out.json   # scaled down
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = ("judgeflow", "judgeflow-2-workers", "openai-sdk")
GOAL_FRACTION, GOAL_429_SHARE = 0.95, 0.005
MAX_TOKENS = 64  # short replies: RPM, not TPM, is the binding limit at 3,000 RPM / 1M TPM


def _rows(start: int, n: int) -> Any:
    from benchmarks.live_judging import _rows as rows

    frame = rows(start + n)
    return frame.slice(start, n)


def run_worker(client: str, base_url: str, key: str, start: int, n: int, concurrency: int) -> dict[str, Any]:
    """One worker process's share: ``n`` requests from row ``start``; what it saw."""
    from judgeflow.judging.live import judge_live
    from judgeflow.judging.records import JudgmentSink
    from judgeflow.prompts import render_requests
    from judgeflow.specs import JudgeSpec, Sampling, expand_requests

    spec = JudgeSpec(name="bench", kind="absolute", base_url=base_url, concurrency=concurrency,
                     sampling=Sampling(max_tokens=MAX_TOKENS), max_retries=10)
    rows = _rows(start, n)
    requests = expand_requests(rows, spec)
    t0 = time.perf_counter()
    if client == "judgeflow":
        with tempfile.TemporaryDirectory() as out, JudgmentSink(out) as sink:
            stats = asyncio.run(judge_live(spec, rows, requests, sink, api_key=key))
        return {"ok": stats.ok, "failed": stats.failed, "wall_s": time.perf_counter() - t0}
    prompts = render_requests(spec, rows, requests)

    async def go() -> tuple[int, int]:
        import openai

        client_ = openai.AsyncOpenAI(base_url=base_url, api_key=key)  # default retries (2)
        sem = asyncio.Semaphore(concurrency)
        ok = failed = 0

        async def one(p: Any) -> None:
            nonlocal ok, failed
            async with sem:
                try:
                    await client_.chat.completions.create(
                        model=spec.model, messages=p.messages(), max_completion_tokens=MAX_TOKENS)
                    ok += 1
                except openai.APIError:
                    failed += 1

        try:
            await asyncio.gather(*(one(p) for p in prompts))
        finally:
            await client_.close()
        return ok, failed

    ok, failed = asyncio.run(go())
    return {"ok": ok, "failed": failed, "wall_s": time.perf_counter() - t0}


def _spawn(client: str, base_url: str, key: str, start: int, n: int, concurrency: int) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "benchmarks.rate_limits", "--worker", client, "--base-url", base_url,
           "--key", key, "--start", str(start), "--requests", str(n), "--concurrency", str(concurrency)]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _steady_rate(samples: list[tuple[float, int, int]], capacity: float, total: int, concurrency: int,
                 index: int) -> float | None:
    """Per-minute rate of ``samples[.][index]`` (admitted requests or tokens) between the moment
    the saved-up minute is spent (plus 5 s) and the moment fewer than ``concurrency`` requests
    are left to send."""
    t_burst = next((t for t, req, _ in samples if req >= capacity), None)
    if t_burst is None:
        return None
    window = [s for s in samples if s[0] >= t_burst + 5.0 and s[1] <= total - concurrency]
    if len(window) < 2 or window[-1][0] - window[0][0] < 5.0:
        return None
    (t0, *a), (t1, *b) = window[0], window[-1]
    return (b[index - 1] - a[index - 1]) / (t1 - t0) * 60.0


def run_scenario(client: str, requests: int, rpm: int, tpm: int, concurrency: int, latency_ms: float) -> dict[str, Any]:
    """One client against a fresh simulator process; the simulator's counts, sampled each 0.5 s."""
    from judgeflow.simulator import Simulator

    key = f"sk-bench-{client}"
    with Simulator(process=True, latency_ms=latency_ms, rate_limits={"rpm": rpm, "tpm": tpm}) as sim:
        base_url = sim.openai_base_url
        if client == "judgeflow-2-workers":
            half = requests // 2
            procs = [_spawn("judgeflow", base_url, key, 0, half, concurrency),
                     _spawn("judgeflow", base_url, key, half, requests - half, concurrency)]
        else:
            procs = [_spawn(client, base_url, key, 0, requests, concurrency)]
        t0 = time.perf_counter()
        samples: list[tuple[float, int, int]] = []
        while any(p.poll() is None for p in procs):
            stats = sim.stats()
            samples.append((time.perf_counter() - t0, stats.get("rate_admitted", 0),
                            stats.get("rate_admitted_tokens", 0)))
            time.sleep(0.5)
        wall = time.perf_counter() - t0
        stats = sim.stats()
    workers = []
    for p in procs:
        out, err = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"{client} worker failed:\n{err[-3000:]}")
        workers.append(json.loads(out.strip().splitlines()[-1]))
    admitted, tokens = stats.get("rate_admitted", 0), stats.get("rate_admitted_tokens", 0)
    rpm_steady = _steady_rate(samples, rpm, requests, concurrency, 1)
    tpm_steady = _steady_rate(samples, rpm, requests, concurrency, 2)
    fraction = None if rpm_steady is None or tpm_steady is None else max(rpm_steady / rpm, tpm_steady / tpm)
    limited = stats.get("rate_limited", 0)
    ok = sum(w["ok"] for w in workers)
    return {
        "client": client, "workers": len(procs), "requests": requests, "ok": ok,
        "failed": sum(w["failed"] for w in workers), "wall_s": round(wall, 1),
        "admitted": admitted, "tokens_per_request": round(tokens / admitted, 1) if admitted else None,
        "rpm_overall": round(ok / wall * 60.0, 1), "rpm_steady": None if rpm_steady is None else round(rpm_steady, 1),
        "tpm_steady": None if tpm_steady is None else round(tpm_steady),
        "fraction_of_limit": None if fraction is None else round(fraction, 4),
        "binding": None if rpm_steady is None or tpm_steady is None else
        ("requests" if rpm_steady / rpm >= tpm_steady / tpm else "tokens"),
        "http_429": limited, "share_429": round(limited / requests, 5),
    }


def render(data: dict[str, Any]) -> str:
    """The BENCHMARKS.md section body."""
    lines = [
        f"A simulated account of {data['rpm']:,} RPM and {data['tpm']:,} TPM (token buckets per key as OpenAI "
        f"enforces them), {data['requests']:,} requests per client, concurrency {data['concurrency']}, "
        f"{data['latency_ms']:g} ms latency; load average at start {data['loadavg_1m']}. "
        f"Goal: at least {GOAL_FRACTION:.0%} of the limit in the steady state with 429s under "
        f"{GOAL_429_SHARE:.1%} of requests.", "",
        "| client | workers | answered | failed | steady RPM | fraction of limit | 429s | 429 share | wall | goal |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in data["results"]:
        frac = "n/a" if r["fraction_of_limit"] is None else f"{r['fraction_of_limit']:.3f}"
        goal = "n/a (baseline)" if r["client"] == "openai-sdk" else ("met" if r.get("meets_goal") else "missed")
        lines.append(
            f"| {r['client']} | {r['workers']} | {r['ok']:,} | {r['failed']:,} | {r['rpm_steady'] or 'n/a'} | "
            f"{frac} | {r['http_429']:,} | {r['share_429']:.3%} | {r['wall_s']:.0f} s | {goal} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rpm", type=int, default=3000)
    parser.add_argument("--tpm", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=30_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--clients", nargs="+", choices=CLIENTS, default=list(CLIENTS))
    parser.add_argument("--sequential", action="store_true", help="one client after another, not side by side")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--worker", choices=("judgeflow", "openai-sdk"), help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    parser.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(run_worker(args.worker, args.base_url, args.key, args.start, args.requests, args.concurrency)))
        return 0
    load = os.getloadavg()[0]
    params = (args.requests, args.rpm, args.tpm, args.concurrency, args.latency_ms)
    if args.sequential:
        results = [run_scenario(c, *params) for c in args.clients]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(len(args.clients)) as pool:
            results = list(pool.map(lambda c: run_scenario(c, *params), args.clients))
    for r in results:
        r["meets_goal"] = (r["fraction_of_limit"] or 0) >= GOAL_FRACTION and r["share_429"] < GOAL_429_SHARE \
            and r["failed"] == 0
    data = {"rpm": args.rpm, "tpm": args.tpm, "requests": args.requests, "concurrency": args.concurrency,
            "latency_ms": args.latency_ms, "loadavg_1m": round(load, 2), "results": results,
            "goal_fraction": GOAL_FRACTION, "goal_share_429": GOAL_429_SHARE,
            "pass": all(r["meets_goal"] for r in results if r["client"] != "openai-sdk")}
    print(render(data))
    if args.json:
        args.json.write_text(json.dumps(data, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
